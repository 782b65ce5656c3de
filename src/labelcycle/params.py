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
        raise ConfigError(f"{path}: no params file; run from the project folder (it holds params.yaml)") from None
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
        raise ConfigError(f"params.yaml: unknown key(s) {unknown} in section {name!r}; known: {sorted(fields)}")
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
            raise ValueError(f"dask.scheduler must be an address like tcp://host:8786 or null, not {scheduler!r}")
        object.__setattr__(self, "dask", {"enabled": enabled, "scheduler": scheduler or None})


@dataclass(frozen=True)
class EvaluateParams:
    n_boot: int = 500
    seed: int = 0
    min_slice_size: int = 30
