"""The streaming EM of :mod:`labelcycle.aggregation.streaming` on a Dask cluster.

Each part (all annotations of a range of items) is one Dask task per pass: its E-step runs on a
worker, which returns the part's expected confusion counts, posterior sums and log likelihood; the
client adds them up (the M-step is that sum, then a few ``annotators x classes^2`` operations) and sends
the next parameters. Parts on disk are read by the workers from their paths, so the part directory
must be on a filesystem the workers see (the project on a shared volume); parts held in memory are
shipped with the tasks. Results equal the local fit's up to the order of floating-point sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from labelcycle.dask_cluster import dask_client as cluster_client
from labelcycle.dask_cluster import scheduler_address


@contextmanager
def dask_client(address: str | None) -> Iterator[Any]:
    """A client for ``aggregate.dask``: on ``address``, else ``LABELCYCLE_DASK_SCHEDULER``, else a one-worker
    LocalCluster in-process (:func:`labelcycle.dask_cluster.dask_client`)."""
    with cluster_client(scheduler_address(address), "aggregate") as client:
        yield client


def client_mapper(client: Any) -> Callable:
    """``mapper(fn, refs)`` for :func:`labelcycle.aggregation.streaming.fit` that runs on ``client``."""

    def mapper(fn: Callable, refs: list) -> list:
        futures = client.map(fn, refs, pure=False)
        return client.gather(futures)

    return mapper
