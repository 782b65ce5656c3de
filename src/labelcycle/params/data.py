"""Sections ``ingest``, ``split``, ``aggregate``, ``curate``, ``sample``: the data stages' params."""

from __future__ import annotations

from dataclasses import dataclass, field

from labelcycle.params._check import check as _check

DEFAULT_LABELS = ("ok", "misleading", "prohibited")


@dataclass(frozen=True)
class IngestParams:
    """Section ``ingest``: the allowed label set, in order (empty: discovered by the first
    ``labelcycle ingest``, which writes it into params.yaml)."""

    labels: list[str] = field(default_factory=lambda: list(DEFAULT_LABELS))
    #: gold equal to the annotators' majority vote on at least this share ...
    circular_min_agreement: float = 0.99
    #: ... of at least this many gold items (with annotations) is reported as circular
    circular_min_items: int = 50

    def __post_init__(self) -> None:
        _check(0 < float(self.circular_min_agreement) <= 1, "ingest.circular_min_agreement must be in (0, 1]")
        _check(int(self.circular_min_items) >= 1, "ingest.circular_min_items must be at least 1")
        labels = [str(x) for x in (self.labels or [])]
        _check(
            not labels or (len(labels) >= 2 and len(set(labels)) == len(labels)),
            "ingest.labels must list at least two distinct classes (or be empty, [], so that the first "
            "`labelcycle ingest` discovers them)",
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
class AggregateParams:
    """Section ``aggregate``: the consensus method (see benchmarks/results/aggregation.md)."""

    method: str = "hierarchical_dawid_skene"


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
