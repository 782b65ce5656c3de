"""Typed parameters: one dataclass per ``params.yaml`` section (section name = stage name)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from labelcycle.errors import ConfigError

T = TypeVar("T")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no params file; run from the project folder (it holds params.yaml)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (ingest:, aggregate:, ...)")
    return data


def section(cls: type[T], params: dict[str, Any], name: str) -> T:
    """Build the dataclass ``cls`` from ``params[name]``, rejecting unknown keys and wrong types."""
    raw = params.get(name) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: section {name!r} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"params.yaml: unknown key(s) {unknown} in section {name!r}; known: {sorted(fields)}"
        )
    try:
        obj = cls(**raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params.yaml: section {name!r}: {exc}") from None
    return obj


@dataclass(frozen=True)
class IngestParams:
    labels: list[str] = field(default_factory=lambda: ["ok", "misleading", "prohibited"])

    def __post_init__(self) -> None:
        if len(self.labels) < 2 or len(set(map(str, self.labels))) != len(self.labels):
            raise ValueError("labels must list at least two distinct classes")
        object.__setattr__(self, "labels", [str(x) for x in self.labels])


@dataclass(frozen=True)
class SplitParams:
    eval_fraction: float = 0.6
    salt: str = "labelcycle-eval-v1"

    def __post_init__(self) -> None:
        if not 0 < self.eval_fraction <= 1:
            raise ValueError("eval_fraction must be in (0, 1]")


@dataclass(frozen=True)
class AggregateParams:
    method: str = "majority_vote"


@dataclass(frozen=True)
class AnnotatorsParams:
    """Section ``annotators``: thresholds of the annotator flags (see labelcycle.annotators.profiles)."""

    spammer_threshold: float = 0.85
    min_labels: int = 20
    fast_ratio: float = 0.35


@dataclass(frozen=True)
class TrainQualityParams:
    n_estimators: int = 500
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    feature_fraction: float = 0.9
    lambda_l2: float = 0.0
    valid_fraction: float = 0.1
    early_stopping_rounds: int = 30
    use_confidence_weights: bool = False
    use_tuned: bool = True  # take the tune stage's best params (reports/best_params.json) over these
    seed: int = 42
    n_jobs: int = 2
    registered_model: str = "labelcycle-quality"
    #: train on a Dask cluster: {enabled: bool, scheduler: address or null}; with enabled and no
    #: scheduler, LABELCYCLE_DASK_SCHEDULER or else a LocalCluster is used
    dask: dict = field(default_factory=lambda: {"enabled": False, "scheduler": None})

    def __post_init__(self) -> None:
        raw = dict(self.dask or {})
        unknown = sorted(set(raw) - {"enabled", "scheduler"})
        if unknown:
            raise ValueError(f"dask: unknown key(s) {unknown}; known: ['enabled', 'scheduler']")
        enabled, scheduler = raw.get("enabled", False), raw.get("scheduler")
        if not isinstance(enabled, bool):
            raise ValueError(f"dask.enabled must be true or false, not {enabled!r}")
        if scheduler is not None and not isinstance(scheduler, str):
            raise ValueError(
                f"dask.scheduler must be an address like tcp://host:8786 or null, not {scheduler!r}"
            )
        object.__setattr__(self, "dask", {"enabled": enabled, "scheduler": scheduler or None})

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


DEFAULT_SEARCH_SPACE = {
    "learning_rate": [0.01, 0.3, "log"],
    "num_leaves": [8, 128, "log_int"],
    "min_child_samples": [5, 100, "log_int"],
    "feature_fraction": [0.5, 1.0, "float"],
    "lambda_l2": [0.001, 10.0, "log"],
}


@dataclass(frozen=True)
class TuneParams:
    n_trials: int = 20
    timeout: float | None = 600
    seed: int = 0
    study: str = "quality"
    storage: str | None = None  # any RDB URL; default sqlite:///<project>/optuna.db
    pruning: bool = True
    n_estimators: int = 400
    early_stopping_rounds: int = 30
    valid_fraction: float = 0.1
    n_jobs: int = 2
    search_space: dict = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError("n_trials must be at least 1")


@dataclass(frozen=True)
class EvaluateParams:
    n_boot: int = 500
    seed: int = 0
    min_slice_size: int = 30


@dataclass(frozen=True)
class TrainErrorModelParams:
    """Section ``train_error_model``: the annotation-error model (see labelcycle.detection.model)."""

    n_folds: int = 5
    em_iterations: int = 10
    smoothing: float = 2.0
    quality_rounds: int = 150
    n_estimators: int = 60
    learning_rate: float = 0.03
    num_leaves: int = 15
    min_child_samples: int = 20
    lambda_l2: float = 1.0
    consensus_weight: float = 0.0
    consensus_threshold: float = 0.98
    min_gold_targets: int = 50
    threshold: float = 0.5
    n_jobs: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError("n_folds must be at least 2")
        if not 0 <= self.threshold <= 1 or not 0 <= self.consensus_threshold <= 1:
            raise ValueError("threshold and consensus_threshold must be in [0, 1]")
        if self.consensus_weight < 0:
            raise ValueError("consensus_weight must be >= 0")

    def model_params(self, aggregator: str):
        """The detection settings with the aggregator named by ``aggregate.method``."""
        from labelcycle.detection.features import FeatureParams
        from labelcycle.detection.model import ErrorModelParams

        feats = FeatureParams(
            n_folds=self.n_folds,
            aggregator=aggregator,
            em_iterations=self.em_iterations,
            smoothing=self.smoothing,
            quality_rounds=self.quality_rounds,
            seed=self.seed,
        )
        return ErrorModelParams(
            features=feats,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            lambda_l2=self.lambda_l2,
            n_folds=self.n_folds,
            consensus_weight=self.consensus_weight,
            consensus_threshold=self.consensus_threshold,
            min_gold_targets=self.min_gold_targets,
            threshold=self.threshold,
            n_jobs=self.n_jobs,
            seed=self.seed,
        )


@dataclass(frozen=True)
class CurateParams:
    """Section ``curate``: what the error scores do to the curated data set."""

    action: str = "relabel"  # none | drop | relabel | downweight
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.action not in ("none", "drop", "relabel", "downweight"):
            raise ValueError(f"action must be one of none, drop, relabel, downweight (got {self.action!r})")
        if not 0 <= self.threshold <= 1:
            raise ValueError("threshold must be in [0, 1]")


@dataclass(frozen=True)
class SampleParams:
    fraction: float = 1.0
    strategy: str = "uniform"  # uniform | stratified (same fraction of every label)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < float(self.fraction) <= 1:
            raise ValueError("fraction must be in (0, 1]")
        if self.strategy not in ("uniform", "stratified"):
            raise ValueError("strategy must be uniform or stratified")


@dataclass(frozen=True)
class PromoteParams:
    """Evidence gates of ``labelcycle promote`` (see :mod:`labelcycle.promotion`)."""

    primary_metric: str = "accuracy"
    margin: float = 0.01  # non-inferiority: lower end of the paired delta interval must be > -margin
    slice_margin: float = 0.05  # no slice may lose more than this on the primary metric (point delta)
    min_slice_size: int = 50  # slices with fewer eval items are not judged
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.margin < 0 or self.slice_margin < 0:
            raise ValueError("margin and slice_margin must be >= 0")
        if self.min_slice_size < 1:
            raise ValueError("min_slice_size must be at least 1")
        if self.n_boot < 1:
            raise ValueError("n_boot must be at least 1")
