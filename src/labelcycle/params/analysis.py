"""Section ``annotators``: annotator flags and the root-cause search."""

from __future__ import annotations

from dataclasses import dataclass, field

from labelcycle.errors import ConfigError
from labelcycle.params._check import check as _check


@dataclass(frozen=True)
class ProfileParams:
    """``annotators.profile``: thresholds of the annotator flags (see labelcycle.annotators.profiles).

    Attributes:
        spammer_threshold: ``spammer_score`` at or above which an annotator is flagged
            (0.85: labels nearly independent of the truth).
        min_labels: annotators with fewer labels are never flagged (too little evidence).
        fast_ratio: ``duration_ratio`` at or below which an annotator is a fast clicker.
        prior_strength: Dirichlet pseudo-labels per confusion row for the empirical confusion matrix.
    """

    spammer_threshold: float = 0.85
    min_labels: int = 20
    fast_ratio: float = 0.35
    prior_strength: float = 1.0

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.spammer_threshold <= 1.0,
            f"spammer_threshold must be in [0, 1], got {self.spammer_threshold}",
        )
        _check(self.min_labels >= 1, f"min_labels must be >= 1, got {self.min_labels}")
        _check(self.fast_ratio > 0, f"fast_ratio must be > 0, got {self.fast_ratio}")
        _check(self.prior_strength >= 0, f"prior_strength must be >= 0, got {self.prior_strength}")


@dataclass(frozen=True)
class RootCauseParams:
    """Settings of :func:`root_causes`.

    Attributes:
        max_order: largest number of factors combined in one group (1 to 3).
        min_support: smallest group (labels) considered.
        z: normal quantile of the Wilson intervals (1.96 = 95%).
        max_levels: categorical item features with more distinct values are skipped.
        numeric_bins: quantile bins for numeric item features (0 = skip numeric features).
        onset_alpha: significance level of the onset (change-point) test.
        fdr: false discovery rate of the reported findings (Benjamini-Hochberg over the groups tested);
            membership of cohorts only needs the per-group ``z`` interval.
        pattern_share: share of a group's disagreements its dominant given label must have for the group
            to join an annotator cohort.
        max_annotator_share: a cohort naming more than this share of all annotators (and more than
            three) is dropped: "most annotators label X as Y" describes the item slice (reported as a slice
            finding without an annotator condition when it stands out), not a group of annotators.
        top_k: rows returned (0 = all).
        max_candidates: candidates kept for de-duplication (the strongest by score; bounds memory).
        use_gold: compare against gold labels where available (else the consensus everywhere).
        exclude_annotators: annotators left out (e.g. flagged spammers, reported elsewhere).
    """

    max_order: int = 3
    min_support: int = 20
    z: float = 1.96
    max_levels: int = 30
    numeric_bins: int = 4
    onset_alpha: float = 0.001
    fdr: float = 0.05
    pattern_share: float = 0.5
    max_annotator_share: float = 0.25
    top_k: int = 20
    max_candidates: int = 2000
    use_gold: bool = True
    exclude_annotators: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_annotators", tuple(str(a) for a in self.exclude_annotators or ()))
        if not 1 <= self.max_order <= 3:
            raise ConfigError(f"annotators.root_cause.max_order must be 1, 2 or 3, got {self.max_order}")
        if self.min_support < 1:
            raise ConfigError(f"annotators.root_cause.min_support must be >= 1, got {self.min_support}")
        if self.z <= 0:
            raise ConfigError(f"annotators.root_cause.z must be > 0, got {self.z}")
        if not 0 < self.fdr < 1:
            raise ConfigError(f"annotators.root_cause.fdr must be in (0, 1), got {self.fdr}")
        if not 0 < self.max_annotator_share <= 1:
            raise ConfigError(
                f"annotators.root_cause.max_annotator_share must be in (0, 1], got {self.max_annotator_share}"
            )
        if not 0 < self.onset_alpha < 1:
            raise ConfigError(f"annotators.root_cause.onset_alpha must be in (0, 1), got {self.onset_alpha}")


@dataclass(frozen=True)
class AnalysisParams:
    """Section ``annotators``: settings of :func:`labelcycle.annotators.analyse_annotators`.

    Attributes:
        profile: thresholds of the annotator flags.
        root_cause: settings of the root-cause search.
        exclude_spammers: leave flagged spammers out of the root-cause search (they are reported in the
            annotator table; their random disagreement would otherwise drown systematic patterns and
            inflate the baseline).
    """

    profile: ProfileParams = field(default_factory=ProfileParams)
    root_cause: RootCauseParams = field(default_factory=RootCauseParams)
    exclude_spammers: bool = True
