"""A Dask client for the stages that can run on a cluster (``aggregate.dask``, ``train_quality.dask``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from labelcycle.errors import ConfigError

#: the scheduler address when the stage's ``dask.scheduler`` is null
SCHEDULER_ENV = "LABELCYCLE_DASK_SCHEDULER"


def scheduler_address(configured: str | None) -> str | None:
    """The scheduler address: params first, then ``LABELCYCLE_DASK_SCHEDULER``; None means a LocalCluster."""
    return configured or os.environ.get(SCHEDULER_ENV) or None


@contextmanager
def dask_client(
    address: str | None, section: str, n_workers: int = 1, threads_per_worker: int = 1
) -> Iterator[Any]:
    """A ``distributed.Client`` on ``address``, or on a throw-away in-process LocalCluster when it is None.

    Args:
        section: the params section whose ``dask`` settings asked for it (named in the messages).

    Raises:
        ConfigError: dask[distributed] is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            f"{section}.dask.enabled is true but dask[distributed] is not installed; "
            f"`pip install 'labelcycle[team]'` or set {section}.dask.enabled: false"
        ) from None
    if address is None:
        with (
            LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=False,
                dashboard_address=None,
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
            f"`dask worker {address}`) or fix {section}.dask.scheduler / {SCHEDULER_ENV}"
        ) from None
    try:
        yield client
    finally:
        client.close()
