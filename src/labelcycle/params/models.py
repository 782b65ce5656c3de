"""Sections ``features``, ``train_error_model``, ``tune``, ``train_quality``: item features and the two models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from labelcycle import catalog
from labelcycle.params._check import check as _check
from labelcycle.params.data import DaskParams


@dataclass(frozen=True)
class FeatureParams:
    """How the error model's leakage-free context is estimated (labelcycle.detection.features).

    Attributes:
        n_folds: folds over items for cross-fitting (>= 2).
        aggregator: ``make_aggregator`` method fitted on the other folds; None: ``aggregate.method``.
        em_iterations: Dawid-Skene EM steps run on the other folds, started from the aggregator's
            posteriors (0 keeps the aggregator's posteriors as they are).
        smoothing: Dirichlet pseudo-counts pulling each annotator's confusion towards the pooled one.
        quality_model: train the cross-fitted quality model when items with features are given.
        quality_rounds: boosting rounds of that model.
        seed: seed for LightGBM.
    """

    n_folds: int = 5
    aggregator: str | None = None
    em_iterations: int = 10
    smoothing: float = 2.0
    quality_model: bool = True
    quality_rounds: int = 150
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.n_folds >= 2, "features.n_folds must be at least 2")
        _check(
            self.em_iterations >= 0 and self.smoothing >= 0 and self.quality_rounds >= 1,
            "features: em_iterations and smoothing must be >= 0 and quality_rounds >= 1",
        )


@dataclass(frozen=True)
class TfidfParams:
    """``features.tfidf``: the word and character (``char_wb``) n-gram TF-IDF of every text column, fitted
    on training items only; the model gets the ``max_features`` n-grams most associated with the training
    labels over all text columns (chi-squared; see labelcycle.features.text). ``min_df``: an n-gram must
    occur in this many training items; ``max_chars``: longer text values are refused, the item named.
    """

    word_ngram_max: int = 2
    char_ngram_min: int = 2
    char_ngram_max: int = 5
    max_features: int = 2000
    min_df: int = 2
    max_chars: int = 100_000

    def __post_init__(self) -> None:
        for name in (f.name for f in dataclasses.fields(self)):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            whole = number and float(value).is_integer()
            _check(whole and value >= 1, f"features.tfidf.{name} must be a whole number >= 1, not {value!r}")
            object.__setattr__(self, name, int(value))
        _check(
            self.word_ngram_max <= 5,
            f"features.tfidf.word_ngram_max must be at most 5, not {self.word_ngram_max}",
        )
        _check(
            self.char_ngram_min <= self.char_ngram_max <= 8,
            "features.tfidf: need char_ngram_min <= char_ngram_max <= 8, "
            f"got {self.char_ngram_min} and {self.char_ngram_max}",
        )


@dataclass(frozen=True)
class FeaturesParams:
    """Section ``features``: the role of every item column (``text``, ``categorical``, ``numeric``,
    ``embedding``: a list<float> column or a glob naming a group of numeric columns such as ``emb_*``,
    ``ignore``) and the text features' settings (``tfidf``). A column in no list gets an inferred role
    (labelcycle.features.roles), printed by the ingest and train_quality stages: free text is never
    treated as a category silently.
    """

    text: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    embedding: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    tfidf: TfidfParams = field(default_factory=TfidfParams)

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for role in ("text", "categorical", "numeric", "embedding", "ignore"):
            names = getattr(self, role)
            _check(
                isinstance(names, list | tuple) and all(isinstance(n, str) and n for n in names),
                f"features.{role} must be a list of column names, not {names!r}",
            )
            for name in names:
                _check(
                    name not in seen,
                    f"features: column {name!r} is listed under both {seen.get(name)} "
                    f"and {role}; give it one role",
                )
                seen[name] = role
            object.__setattr__(self, role, list(names))


@dataclass(frozen=True)
class ErrorModelParams:
    """Section ``train_error_model``: the annotation-error model and its targets.

    Attributes:
        features: how the leakage-free context is estimated.
        n_estimators, learning_rate, num_leaves, min_child_samples, lambda_l2: LightGBM settings.
        n_folds: folds over gold items for out-of-fold scores of the gold annotations.
        consensus_weight: weight of confident-consensus targets (0 = gold targets only).
        consensus_threshold: leave-one-out posterior a consensus target needs.
        min_gold_targets: below this many gold targets (or with a single target class) the supervised
            model is not trained and the unsupervised score is used.
        threshold: score at or above which ``is_label_error_issue`` is set.
        n_jobs: LightGBM threads.
        seed: LightGBM seed.
    """

    features: FeatureParams = field(default_factory=FeatureParams)
    n_estimators: int = 60
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 20
    lambda_l2: float = 1.0
    n_folds: int = 5
    consensus_weight: float = 0.0
    consensus_threshold: float = 0.98
    min_gold_targets: int = 50
    threshold: float = 0.5
    n_jobs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.n_folds >= 2, "train_error_model.n_folds must be at least 2")
        _check(
            0 <= self.threshold <= 1 and 0 <= self.consensus_threshold <= 1,
            "train_error_model: threshold and consensus_threshold must be in [0, 1]",
        )
        _check(self.consensus_weight >= 0, "train_error_model.consensus_weight must be >= 0")

    def for_method(self, method: str) -> ErrorModelParams:
        """These settings with the context aggregator set to ``method`` where params leave it to
        ``aggregate.method``."""
        if self.features.aggregator is not None:
            return self
        return dataclasses.replace(self, features=dataclasses.replace(self.features, aggregator=method))

    def lgb_params(self) -> dict:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "lambda_l2": self.lambda_l2,
            "num_threads": self.n_jobs,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }


DEFAULT_SEARCH_SPACE = {
    "learning_rate": [0.01, 0.3, "log"],
    "num_leaves": [8, 128, "log_int"],
    "min_child_samples": [5, 100, "log_int"],
    "feature_fraction": [0.5, 1.0, "float"],
    "lambda_l2": [0.001, 10.0, "log"],
}


#: the text settings tune searches when the items have text columns (keys: fields of TfidfParams)
DEFAULT_TEXT_SEARCH_SPACE = {
    "word_ngram_max": [1, 3, "int"],
    "char_ngram_max": [4, 6, "int"],
    "max_features": [300, 5000, "log_int"],
    "min_df": [1, 5, "int"],
}


@dataclass(frozen=True)
class TuneParams:
    """Section ``tune``: the Optuna study of the quality model."""

    n_trials: int = 15
    timeout: float | None = 120  # seconds; the study stops at whichever comes first
    seed: int = 0
    study: str = "quality"  # base name; one study per (training rows, search space, seed)
    storage: str | None = None  # any Optuna RDB URL; None: sqlite:///<project>/optuna.db
    pruning: bool = True
    n_estimators: int = 400
    early_stopping_rounds: int = 30
    valid_fraction: float = 0.1
    n_jobs: int = 2
    search_space: dict = field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_SEARCH_SPACE.items()})
    text_search_space: dict = field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_TEXT_SEARCH_SPACE.items()}
    )

    def __post_init__(self) -> None:
        _check(self.n_trials >= 1, "tune.n_trials must be at least 1")

    def storage_url(self, root: Path) -> str:
        """The Optuna storage: ``tune.storage``, else the project's SQLite file."""
        return self.storage or f"sqlite:///{root / catalog.OPTUNA_DB}"


@dataclass(frozen=True)
class TrainQualityParams:
    """Section ``train_quality``: the LightGBM quality classifier."""

    n_estimators: int = 400
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    feature_fraction: float = 0.9
    lambda_l2: float = 0.0
    valid_fraction: float = 0.1  # carved from the curated training data, never from the eval split
    early_stopping_rounds: int = 30
    use_confidence_weights: bool = False
    use_tuned: bool = True  # take the tune stage's best params over the ones above
    seed: int = 42
    n_jobs: int = 2
    registered_model: str = "labelcycle-quality"
    dask: DaskParams = field(default_factory=DaskParams)

    def lgb_params(self, tuned: dict | None = None) -> dict:
        """LightGBM parameters of the quality model: these params, overridden by tuned ones when given."""
        out = {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "lambda_l2": self.lambda_l2,
        }
        out.update(tuned or {})
        out["num_threads"] = self.n_jobs
        return out
