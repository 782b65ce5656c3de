"""The streaming EM of :mod:`labelcycle.aggregation.streaming` on a Dask cluster.

Each part (all annotations of a range of items) is one Dask task per pass: its E-step runs on a
worker, which returns the part's expected confusion counts, posterior sums and log likelihood; the
client adds them up (the M-step is that sum, then a few ``annotators x classes^2`` operations) and sends
the next parameters. Parts on disk are read by the workers from their paths, so the part directory
must be on a filesystem the workers see (the project on a shared volume); parts held in memory are
shipped with the tasks. Results equal the local fit's up to the order of floating-point sums.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from labelcycle.errors import ConfigError

#: the scheduler address when ``aggregate.dask.scheduler`` is null (as for ``train_quality.dask``)
SCHEDULER_ENV = "LABELCYCLE_DASK_SCHEDULER"


@contextmanager
def dask_client(address: str | None) -> Iterator[Any]:
    """A client on ``address`` (else ``LABELCYCLE_DASK_SCHEDULER``, else a one-worker LocalCluster in-process).

    Raises:
        ConfigError: dask[distributed] is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "aggregate.dask.enabled is true but dask[distributed] is not installed; "
            "`pip install 'labelcycle[team]'` or set aggregate.dask.enabled: false"
        ) from None
    address = address or os.environ.get(SCHEDULER_ENV) or None
    if address is None:
        with (
            LocalCluster(
                n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address} ({exc}); start it (`dask scheduler` and "
            f"`dask worker {address}`) or fix aggregate.dask.scheduler / {SCHEDULER_ENV}"
        ) from None
    try:
        yield client
    finally:
        client.close()


def client_mapper(client: Any) -> Callable:
    """``mapper(fn, refs)`` for :func:`labelcycle.aggregation.streaming.fit` that runs on ``client``."""

    def mapper(fn: Callable, refs: list) -> list:
        futures = client.map(fn, refs, pure=False)
        return client.gather(futures)

    return mapper
