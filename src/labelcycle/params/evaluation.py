"""Sections ``evaluate`` and ``promote``: the frozen eval split's metrics and the promotion gates."""

from __future__ import annotations

from dataclasses import dataclass, field

from labelcycle import catalog
from labelcycle.params._check import check as _check


@dataclass(frozen=True)
class EvaluateParams:
    """Section ``evaluate``: the frozen eval split's metrics and the one metric verdicts are called on."""

    n_boot: int = 500
    seed: int = 0
    min_slice_size: int = 30
    primary_metric: str = "macro_f1"  # what `compare` calls its verdict on and `promote` gates on
    positive_labels: list[str] = field(default_factory=list)  # non-empty: binary moderation metrics too
    target_precision: float = 0.9  # the binary recall reported at this precision
    flag_threshold: float | None = None  # binary decision P(positive) >= this; None: expected-F1-optimal

    def __post_init__(self) -> None:
        _check(
            self.primary_metric in catalog.HEADLINE,
            f"evaluate.primary_metric must be one of {list(catalog.HEADLINE)}, not {self.primary_metric!r}",
        )
        _check(
            isinstance(self.positive_labels, list | tuple),
            f"evaluate.positive_labels must be a list of labels, not {self.positive_labels!r}",
        )
        object.__setattr__(self, "positive_labels", [str(x) for x in self.positive_labels])
        _check(
            self.primary_metric not in catalog.BINARY_HEADLINE or bool(self.positive_labels),
            f"evaluate.primary_metric is {self.primary_metric!r}, a binary moderation metric, but "
            "evaluate.positive_labels is empty; list the labels that count as positive in "
            "evaluate.positive_labels (e.g. [mild, strong, very_strong]) or choose a primary_metric of "
            f"{list(catalog.MULTICLASS_HEADLINE)}",
        )
        _check(
            0 < self.target_precision <= 1,
            f"evaluate.target_precision must be in (0, 1], not {self.target_precision!r}",
        )
        _check(
            self.flag_threshold is None or 0 <= self.flag_threshold <= 1,
            f"evaluate.flag_threshold must be in [0, 1] or null, not {self.flag_threshold!r}",
        )


@dataclass(frozen=True)
class PromoteParams:
    """Section ``promote``: evidence gates of ``labelcycle promote`` (the metric is evaluate.primary_metric)."""

    margin: float = 0.01  # non-inferiority: lower end of the paired 95% interval of the delta > -margin
    slice_margin: float = 0.05  # no slice may lose more than this on the primary metric (point delta)
    min_slice_size: int = 50  # slices with fewer eval items are not judged
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.margin >= 0 and self.slice_margin >= 0, "promote: margin and slice_margin must be >= 0")
        _check(self.min_slice_size >= 1, "promote.min_slice_size must be at least 1")
        _check(self.n_boot >= 1, "promote.n_boot must be at least 1")
