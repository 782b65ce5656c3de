"""Sections ``ingest``, ``split``, ``aggregate``, ``curate``, ``sample``: the data stages' params."""

from __future__ import annotations

from dataclasses import dataclass, field

from labelcycle.params._check import check as _check

DEFAULT_LABELS = ("ok", "misleading", "prohibited")


@dataclass(frozen=True)
class IngestParams:
    """Section ``ingest``: the allowed label set, in order."""

    labels: list[str] = field(default_factory=lambda: list(DEFAULT_LABELS))

    def __post_init__(self) -> None:
        labels = [str(x) for x in (self.labels or [])]
        _check(
            len(labels) >= 2 and len(set(labels)) == len(labels),
            "ingest.labels must list at least two distinct classes",
        )
        object.__setattr__(self, "labels", labels)


@dataclass(frozen=True)
class SplitParams:
    """Section ``split``: the frozen gold eval split (hash-assigned per item)."""

    eval_fraction: float = 0.6
    salt: str = "labelcycle-eval-v1"

    def __post_init__(self) -> None:
        _check(0 < self.eval_fraction <= 1, "split.eval_fraction must be in (0, 1]")


@dataclass(frozen=True)
class AggregateDaskParams:
    """``aggregate.dask``: the EM passes on a Dask cluster (parts as tasks); same outputs."""

    enabled: bool = False
    scheduler: str | None = None  # tcp://host:8786; None: env LABELCYCLE_DASK_SCHEDULER, else a LocalCluster

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), f"dask.enabled must be true or false, not {self.enabled!r}")
        _check(
            self.scheduler is None or isinstance(self.scheduler, str),
            f"dask.scheduler must be an address like tcp://host:8786 or null, not {self.scheduler!r}",
        )


@dataclass(frozen=True)
class AggregateParams:
    """Section ``aggregate``: the consensus method (see benchmarks/results/aggregation.md) and how it runs."""

    method: str = "hierarchical_dawid_skene"
    warm_start: bool = True  # start EM from the previous run's fitted parameters (false: a cold fit)
    dask: AggregateDaskParams = field(default_factory=AggregateDaskParams)

    def __post_init__(self) -> None:
        _check(
            isinstance(self.warm_start, bool),
            f"aggregate.warm_start must be true or false, not {self.warm_start!r}",
        )


@dataclass(frozen=True)
class CurateParams:
    """Section ``curate``: what the error scores do to the curated data set."""

    action: str = "relabel"  # none | drop | relabel | downweight
    threshold: float = 0.5

    def __post_init__(self) -> None:
        _check(
            self.action in ("none", "drop", "relabel", "downweight"),
            f"curate.action must be one of none, drop, relabel, downweight (got {self.action!r})",
        )
        _check(0 <= self.threshold <= 1, "curate.threshold must be in [0, 1]")


@dataclass(frozen=True)
class SampleParams:
    """Section ``sample``: training-data sampling (read by tune and train_quality through the sample)."""

    fraction: float = 1.0
    strategy: str = "uniform"  # uniform | stratified (same fraction of every label)
    seed: int = 0

    def __post_init__(self) -> None:
        _check(0 < float(self.fraction) <= 1, "sample.fraction must be in (0, 1]")
        _check(self.strategy in ("uniform", "stratified"), "sample.strategy must be uniform or stratified")
