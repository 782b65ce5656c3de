"""The catalog: every path of a project, and typed readers of the stage reports.

Paths are POSIX strings relative to the project root, because that is how ``dvc.yaml``,
``dvc.lock`` and ``git show REV:PATH`` name them. Code that needs a file asks this module (``catalog.X``
for the relative name, :class:`Catalog` for the absolute path under a root); no other module writes a
``data/``, ``reports/`` or ``models/`` literal.

The report readers turn a stage's ``reports/<stage>.json`` into a frozen dataclass whose fields are the
keys other code reads. :func:`parse_report` does the same for bytes read at a git revision or from an
MLflow artifact, so the workspace, git revisions and runs all go through one parser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from labelcycle.errors import InputFileError, StateError

# -- project files -----------------------------------------------------------------------------------
PARAMS = "params.yaml"
DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"
MLFLOW_DB = "mlflow.db"
MLARTIFACTS = "mlartifacts"
OPTUNA_DB = "optuna.db"
STAGES_DIR = "stages"
SRC_DIR = "src"

# -- data ----------------------------------------------------------------------------------------------
RAW = "data/raw"
RAW_DVC = "data/raw.dvc"
ANNOTATIONS = "data/interim/annotations.parquet"
ITEMS = "data/interim/items.parquet"
GOLD = "data/interim/gold.parquet"
QUARANTINE = "data/interim/quarantine.parquet"
#: further judgements of an (item, annotator) pair: not in the consensus, the annotators' self-agreement
REPEATS = "data/interim/repeats.parquet"
#: the validated annotations as integer codes in Parquet parts by item range (streamed by aggregate)
ANNOTATION_CODES = "data/interim/annotation_codes"
EVAL = "data/split/eval.parquet"
GOLD_TRAIN = "data/split/gold_train.parquet"
LABELS_RAW = "data/curated/labels_raw.parquet"
ERROR_SCORES = "data/curated/error_scores.parquet"
LABELS = "data/curated/labels.parquet"
DATASET = "data/curated/dataset.parquet"
TRAIN_SAMPLE = "data/curated/train_sample.parquet"
DEMO_DIR = "data/demo"

# -- models ----------------------------------------------------------------------------------------------
ERROR_MODEL = "models/error"
QUALITY_MODEL = "models/quality"
#: the aggregation's fitted parameters (annotator confusions, class priors): the next run's warm start
AGGREGATE_FIT = "models/aggregate_fit.parquet"
#: the last fit's E-step statistics, covered raw batches and per-item result: the next incremental run
AGGREGATE_STATE = "models/aggregate_state"

# -- reports -------------------------------------------------------------------------------------------
REPORTS = "reports"
PREDICTIONS = "reports/predictions.parquet"
EVAL_METRICS_CSV = "reports/eval_metrics.csv"
EVAL_SLICES_CSV = "reports/eval_slices.csv"
PLOTS = "reports/plots"
ANNOTATORS_TABLE = "reports/annotators.parquet"
ROOT_CAUSES = "reports/root_causes.parquet"
ANNOTATORS_HTML = "reports/annotators.html"
REVIEW_SIMULATION = "reports/review_simulation"


def state_dir(root: Path) -> Path:
    """The folder of labelcycle's working state under ``root`` (lock, promotion intent, run journal, batch
    staging; not created here): ``.dvc/tmp`` in a DVC project (DVC git-ignores it), else ``.labelcycle/``."""
    return root / ".dvc" / "tmp" if (root / ".dvc").is_dir() else root / ".labelcycle"


def report_path(stage: str) -> str:
    """``reports/<stage>.json``: the metrics file each stage writes (``metrics`` for evaluate)."""
    return f"{REPORTS}/{stage}.json"


INGEST_REPORT = report_path("ingest")
SPLIT_REPORT = report_path("split")
AGGREGATE_REPORT = report_path("aggregate")
ANNOTATORS_REPORT = report_path("annotators")
ERROR_MODEL_REPORT = report_path("train_error_model")
CURATE_REPORT = report_path("curate")
SAMPLE_REPORT = report_path("sample")
BEST_PARAMS = report_path("best_params")
TRAIN_QUALITY_REPORT = report_path("train_quality")
METRICS = report_path("metrics")

#: the DVC-tracked paths a release records (their md5s are tagged on the registered model versions)
RELEASE_PATHS = (RAW, DATASET, EVAL)
#: the headline metrics of every evaluation (on the label set), in display order
MULTICLASS_HEADLINE = ("accuracy", "macro_f1", "roc_auc_ovr", "pr_auc_ovr", "log_loss", "ece", "brier")
#: the binary moderation metrics, reported with ``evaluate.positive_labels`` (names as in metrics.json)
BINARY_HEADLINE = ("binary_macro_f1", "binary_f1", "binary_precision", "binary_recall", "binary_pr_auc")
#: the headline metrics of an evaluation, in display order (the binary ones only with positive labels)
HEADLINE = MULTICLASS_HEADLINE + BINARY_HEADLINE


@dataclass(frozen=True)
class Catalog:
    """The catalog bound to one project root: ``Catalog(root).path(catalog.EVAL)``."""

    root: Path

    def path(self, rel: str) -> Path:
        return self.root / rel

    def exists(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def read_json(self, rel: str) -> dict[str, Any] | None:
        """A report's JSON object, or None when the file does not exist."""
        path = self.root / rel
        if not path.exists():
            return None
        return _json_object(path.read_bytes(), str(path))

    def report(self, cls: type[R], required: bool = False) -> R | None:
        """The typed report ``cls`` (e.g. :class:`MetricsReport`), or None when the stage never ran."""
        data = self.read_json(cls.PATH)
        if data is None:
            if required:
                raise StateError(
                    f"{self.root / cls.PATH}: missing; run the stage that writes it first (`dvc repro`)"
                )
            return None
        return cls.from_dict(data)


def _json_object(raw: bytes | str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{where}: not valid JSON ({exc}); re-run the stage that writes it") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{where}: expected a JSON object; re-run the stage that writes it")
    return data


def _coerce(annotation: str, value: Any) -> Any:
    """A report value as its field's annotation wants it: missing or empty text is None, a missing count 0."""
    if annotation == "str | None":
        return None if value in (None, "") else str(value)
    if annotation == "int":
        return int(value or 0)
    if annotation.startswith("dict"):
        return dict(value or {})
    if annotation.startswith("list"):
        return list(value or [])
    return value


# -- typed reports ---------------------------------------------------------------------------------


class _Report:
    """The one ``from_dict`` of the typed reports: each field read from its key and coerced by its type.

    ``REST`` names the field (a dict) that gathers every key no other field reads.
    """

    PATH: ClassVar[str]
    REST: ClassVar[str | None] = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **given: Any) -> Any:
        """The report from its JSON object; ``given`` fields are taken as they are (a subclass computed them)."""
        own = [f for f in fields(cls) if f.name != cls.REST and f.name not in given]  # type: ignore[arg-type]
        values = {f.name: _coerce(str(f.type), d.get(f.name)) for f in own}
        if cls.REST is not None:
            read = {f.name for f in fields(cls)}  # type: ignore[arg-type]
            values[cls.REST] = {k: v for k, v in d.items() if k not in read}
        return cls(**values, **given)


@dataclass(frozen=True)
class IngestReport(_Report):
    PATH = INGEST_REPORT
    validation_passed: bool | None
    reconciles: bool | None
    tables: dict[str, Any] = field(default_factory=dict)
    batches: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class SplitReport(_Report):
    PATH = SPLIT_REPORT
    eval_digest: str | None
    eval_items: int
    gold_train_items: int
    eval_label_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class AggregateReport(_Report):
    """``reports/aggregate.json``: the method and the raw consensus (not the curated set: see curate)."""

    PATH = AGGREGATE_REPORT
    REST = "summary"
    method: str | None
    labels_raw_digest: str | None
    summary: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CurateReport(_Report):
    """``reports/curate.json``: the curated data set's digest and what curation changed."""

    PATH = CURATE_REPORT
    REST = "summary"
    curated_digest: str | None
    action: str | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleReport(_Report):
    PATH = SAMPLE_REPORT
    curated_digest: str | None
    sample_digest: str | None
    items_in: int
    items_out: int


@dataclass(frozen=True)
class BestParamsReport(_Report):
    PATH = BEST_PARAMS
    study: str | None
    params: dict[str, Any]
    best_value: float | None
    curated_train_digest: str | None


@dataclass(frozen=True)
class ModelReport(_Report):
    """A training stage's report naming the model it registered (``train_quality``, ``train_error_model``)."""

    PATH = TRAIN_QUALITY_REPORT
    REST = "metrics"
    mlflow_run_id: str | None
    model_uri: str | None
    registered_model: str | None
    model_version: str | None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorModelReport(ModelReport):
    PATH = ERROR_MODEL_REPORT


@dataclass(frozen=True)
class MetricsReport(_Report):
    """``reports/metrics.json``: headline metrics on the frozen eval split, with 95% intervals."""

    PATH = METRICS
    values: dict[str, float]
    ci95: dict[str, dict[str, float]]
    eval_items: int
    eval_digest: str | None
    baseline: dict[str, Any] = field(default_factory=dict)  # the majority-class baseline's metrics

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **given: Any) -> MetricsReport:
        """The report; ``values`` are the top-level numbers (bar ``eval_items``), not a key of their own."""
        values = {
            k: float(v)
            for k, v in d.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "eval_items"
        }
        return super().from_dict(d, values=values, **given)

    def interval(self, metric: str) -> tuple[float, float] | None:
        ci = self.ci95.get(metric)
        return (float(ci["ci_low"]), float(ci["ci_high"])) if ci else None


#: a typed stage report (what :meth:`Catalog.report` returns for the class it is given)
R = TypeVar("R", bound=_Report)

REPORTS_BY_PATH: dict[str, type[_Report]] = {
    cls.PATH: cls
    for cls in (
        IngestReport,
        SplitReport,
        AggregateReport,
        CurateReport,
        SampleReport,
        BestParamsReport,
        ModelReport,
        ErrorModelReport,
        MetricsReport,
    )
}


def parse_report(path: str, raw: bytes | str, where: str | None = None) -> Any:
    """The typed report at catalog path ``path`` from its bytes (read at a git revision or a run)."""
    return REPORTS_BY_PATH[path].from_dict(_json_object(raw, where or path))
