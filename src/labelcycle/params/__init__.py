"""Typed parameters: every default of the project, one dataclass per ``params.yaml`` section.

Section name = stage name = ``stages/<name>.py`` (``promote`` is read by ``labelcycle promote`` only;
``features``, the item columns' roles, by every stage that builds item features).
The dataclasses here are the only place a default is written: ``params.yaml`` ships exactly these
values (a test holds the two together), the core takes the same types (the annotator flags are
:class:`ProfileParams`, the error model is :class:`ErrorModelParams` nesting :class:`FeatureParams`), and
CLI commands that mirror a stage read the project's params inside a project and these defaults outside
one (:func:`project_params`).

:func:`load` builds a :class:`Params` from a ``params.yaml`` mapping, nested sections included, and
rejects unknown keys and wrong values with the section and key named.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from labelcycle import catalog
from labelcycle.errors import ConfigError
from labelcycle.params._check import check as _check
from labelcycle.params.analysis import AnalysisParams, ProfileParams, RootCauseParams
from labelcycle.params.data import (
    DEFAULT_LABELS,
    AggregateParams,
    CurateParams,
    DaskParams,
    IngestParams,
    SampleParams,
    SplitParams,
)
from labelcycle.params.evaluation import EvaluateParams, PromoteParams
from labelcycle.params.models import (
    DEFAULT_SEARCH_SPACE,
    DEFAULT_TEXT_SEARCH_SPACE,
    ErrorModelParams,
    FeatureParams,
    FeaturesParams,
    TfidfParams,
    TrainQualityParams,
    TuneParams,
)

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_SEARCH_SPACE",
    "DEFAULT_TEXT_SEARCH_SPACE",
    "AggregateParams",
    "AnalysisParams",
    "CurateParams",
    "DaskParams",
    "ErrorModelParams",
    "EvaluateParams",
    "FeatureParams",
    "FeaturesParams",
    "IngestParams",
    "Params",
    "ProfileParams",
    "PromoteParams",
    "RootCauseParams",
    "SampleParams",
    "SplitParams",
    "TfidfParams",
    "TrainQualityParams",
    "TuneParams",
    "build",
    "from_mapping",
    "load",
    "project_params",
    "read_yaml",
    "to_dict",
]
T = TypeVar("T")


@dataclass(frozen=True)
class Params:
    """The whole ``params.yaml``: one field per section, in pipeline order."""

    ingest: IngestParams = field(default_factory=IngestParams)
    split: SplitParams = field(default_factory=SplitParams)
    aggregate: AggregateParams = field(default_factory=AggregateParams)
    annotators: AnalysisParams = field(default_factory=AnalysisParams)
    features: FeaturesParams = field(default_factory=FeaturesParams)
    train_error_model: ErrorModelParams = field(default_factory=ErrorModelParams)
    curate: CurateParams = field(default_factory=CurateParams)
    sample: SampleParams = field(default_factory=SampleParams)
    tune: TuneParams = field(default_factory=TuneParams)
    train_quality: TrainQualityParams = field(default_factory=TrainQualityParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    promote: PromoteParams = field(default_factory=PromoteParams)

    def __post_init__(self) -> None:
        unknown = [x for x in self.evaluate.positive_labels if x not in self.ingest.labels]
        _check(
            not unknown, f"evaluate.positive_labels {unknown} are not in ingest.labels {self.ingest.labels}"
        )

    @property
    def classes(self) -> list[str]:
        return self.ingest.labels

    @property
    def error_model(self) -> ErrorModelParams:
        """``train_error_model`` with its context aggregator resolved to ``aggregate.method``."""
        return self.train_error_model.for_method(self.aggregate.method)


def build(cls: type[T], raw: Any, where: str) -> T:
    """The dataclass ``cls`` from the mapping ``raw`` (nested dataclass fields from nested mappings)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"params.yaml: {where} must be a mapping of keys, not {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"params.yaml: unknown key(s) {unknown} in {where!r}; known: {sorted(fields)}")
    kwargs = {}
    for key, value in raw.items():
        kind = hints[key]
        inner = key if where == "params" else f"{where}.{key}"
        kwargs[key] = build(kind, value, inner) if dataclasses.is_dataclass(kind) else value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"params.yaml: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params.yaml: section {where!r}: {exc}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    """A params dataclass as the plain mapping params.yaml holds (nested sections as mappings, lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(obj))


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no params file; run from the project folder (it holds {catalog.PARAMS})"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: is not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (ingest:, aggregate:, ...)")
    return data


def from_mapping(data: dict[str, Any]) -> Params:
    """:class:`Params` from a parsed ``params.yaml`` (missing sections take their defaults)."""
    return build(Params, data, "params")


def load(root: Path) -> Params:
    """The project's params (``<root>/params.yaml``)."""
    return from_mapping(read_yaml(Path(root) / catalog.PARAMS))


def project_params(root: Path | None) -> Params:
    """The project's params inside a project, the defaults outside one (for commands mirroring a stage)."""
    if root is not None and (Path(root) / catalog.PARAMS).exists():
        return load(root)
    return Params()
