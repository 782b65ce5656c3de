"""Sections ``ingest``, ``split``, ``aggregate``, ``curate``, ``sample``: the data stages' params."""

from __future__ import annotations

from dataclasses import dataclass, field

from labelcycle.params._check import check as _check

DEFAULT_LABELS = ("ok", "misleading", "prohibited")
#: ``ingest.tie_break`` values: ties to the first or the last listed label (lenient/severe when ordinal)
TIE_BREAKS = ("first", "last", "lenient", "severe")


@dataclass(frozen=True)
class IngestParams:
    """Section ``ingest``: the allowed label set, in order (empty: discovered by the first
    ``labelcycle ingest``, which writes it into params.yaml)."""

    labels: list[str] = field(default_factory=lambda: list(DEFAULT_LABELS))
    #: gold equal to the annotators' majority vote on at least this share ...
    circular_min_agreement: float = 0.99
    #: ... of at least this many gold items (with annotations) is reported as circular
    circular_min_items: int = 50
    #: the labels are a severity scale, mildest first: reports follow the order, ties go to the more severe
    ordinal: bool = False
    #: majority ties: first | last listed label (lenient | severe on an ordinal scale); None: severe when
    #: ordinal, else first
    tie_break: str | None = None
    #: annotation sets larger than this are validated out of core, in parts of about this many rows
    #: (by item), so memory is bounded by a part, not by the annotations
    part_rows: int = 10_000_000
    #: processes that validate an annotation set out of core at once (files, then parts); the parts then
    #: hold about part_rows / workers rows each, so memory stays about the same; 1: in the stage's process
    workers: int = 2

    def __post_init__(self) -> None:
        _check(
            int(self.part_rows) >= 1,
            f"ingest.part_rows must be a positive number of rows (got {self.part_rows!r})",
        )
        _check(
            isinstance(self.workers, int) and self.workers >= 1,
            f"ingest.workers must be a whole number of processes, at least 1 (got {self.workers!r})",
        )
        _check(0 < float(self.circular_min_agreement) <= 1, "ingest.circular_min_agreement must be in (0, 1]")
        _check(int(self.circular_min_items) >= 1, "ingest.circular_min_items must be at least 1")
        labels = [str(x) for x in (self.labels or [])]
        _check(
            not labels or (len(labels) >= 2 and len(set(labels)) == len(labels)),
            "ingest.labels must list at least two distinct classes (or be empty, [], so that the first "
            "`labelcycle ingest` discovers them)",
        )
        object.__setattr__(self, "labels", labels)
        _check(isinstance(self.ordinal, bool), f"ingest.ordinal must be true or false (got {self.ordinal!r})")
        _check(
            self.tie_break in (None, *TIE_BREAKS),
            f"ingest.tie_break must be one of {', '.join(TIE_BREAKS)} or null (got {self.tie_break!r})",
        )
        _check(
            self.ordinal or self.tie_break not in ("lenient", "severe"),
            f"ingest.tie_break {self.tie_break} needs a severity scale: set ingest.ordinal: true (labels "
            "listed mildest first), or use first/last",
        )


@dataclass(frozen=True)
class SplitParams:
    """Section ``split``: the frozen gold eval split (hash-assigned per item)."""

    eval_fraction: float = 0.6
    salt: str = "labelcycle-eval-v1"

    def __post_init__(self) -> None:
        _check(0 < self.eval_fraction <= 1, "split.eval_fraction must be in (0, 1]")


@dataclass(frozen=True)
class DaskParams:
    """``aggregate.dask`` and ``train_quality.dask``: run the stage's fit on a Dask cluster (aggregate: the
    EM passes, parts as tasks; train_quality: lightgbm.dask); same outputs and logging."""

    enabled: bool = False
    scheduler: str | None = None  # tcp://host:8786; None: env LABELCYCLE_DASK_SCHEDULER, else a LocalCluster

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), f"dask.enabled must be true or false, not {self.enabled!r}")
        _check(
            self.scheduler is None or isinstance(self.scheduler, str),
            f"dask.scheduler must be an address like tcp://host:8786 or null, not {self.scheduler!r}",
        )
        object.__setattr__(self, "scheduler", self.scheduler or None)


@dataclass(frozen=True)
class AggregateParams:
    """Section ``aggregate``: the consensus method (see benchmarks/results/aggregation.md) and how it runs."""

    method: str = "hierarchical_dawid_skene"
    warm_start: bool = True  # start EM from the previous run's fitted parameters (false: a cold fit)
    dask: DaskParams = field(default_factory=DaskParams)

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
    #: annotators whose judgements the curated consensus leaves out (re-aggregated without them)
    exclude_annotators: list[str] = field(default_factory=list)
    #: annotator -> trust multiplier in [0, 1] on (1 - error score) in the curate action
    annotator_weights: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        excluded = self.exclude_annotators
        _check(
            isinstance(excluded, list | tuple) and all(isinstance(a, str | int) for a in excluded),
            f"curate.exclude_annotators must be a list of annotator ids (got {excluded!r})",
        )
        object.__setattr__(self, "exclude_annotators", [str(a) for a in excluded])
        weights = self.annotator_weights or {}
        _check(
            isinstance(weights, dict)
            and all(
                isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w <= 1
                for w in weights.values()
            ),
            f"curate.annotator_weights must map annotator ids to weights in [0, 1] (got {weights!r})",
        )
        object.__setattr__(self, "annotator_weights", {str(a): float(w) for a, w in weights.items()})
        _check(
            not (self.annotator_weights and self.action == "none"),
            "curate.annotator_weights act through curate.action; set it to relabel, drop or downweight",
        )
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
