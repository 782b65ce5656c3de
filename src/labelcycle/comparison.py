"""Compare two dataset versions by downstream impact (DataFrames in, a report out; no I/O).

Pieces: the row-level diff of the curated data and of the training data each version was actually fitted
on (the sample stage's output; :mod:`labelcycle.versioning.diff`), the metric change attributed to the
groups (labels, item columns) where training items were added, removed or relabelled, the paired
comparison of the saved per-item predictions on the same frozen gold eval items
(:mod:`labelcycle.evaluation.paired`, no retraining), per-slice deltas, and a verdict on the primary
metric. :func:`compare_data` does all of it for two loaded versions
(:func:`labelcycle.tracking.versions.load_version`), :func:`comparison_record` gives the tags and metrics
a comparison is logged with, and :func:`labelcycle.comparison_html.render_html` turns the report into one offline HTML page (plots
inlined as base64 PNG).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from labelcycle import catalog, schema
from labelcycle.errors import EvalSetMismatchError, SchemaError
from labelcycle.evaluation.paired import PairedComparison, PredictionSet, compare_paired, verdict
from labelcycle.evaluation.slices import slice_paired
from labelcycle.gold import comparison_notes
from labelcycle.params import EvaluateParams
from labelcycle.versioning.diff import DatasetDiff, changes_by_group, diff_datasets
from labelcycle.versioning.versions import Version, VersionData

GOLD = "gold_label"
PRIMARY_METRIC = EvaluateParams().primary_metric
SLICE_METRICS = ("accuracy", "macro_f1")


@dataclass(frozen=True)
class ComparisonReport:
    """Everything ``labelcycle compare`` reports."""

    base: dict[str, Any]
    candidate: dict[str, Any]
    paired: PairedComparison
    slices: pd.DataFrame
    verdict: str
    primary_metric: str
    dataset_diff: DatasetDiff | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    training_diff: DatasetDiff | None = None
    attribution: pd.DataFrame | None = None

    def metrics_dict(self) -> dict[str, dict[str, Any]]:
        out = {}
        for r in self.paired.table.itertuples(index=False):
            out[r.metric] = {
                k: _num(getattr(r, k)) for k in ("base", "candidate", "delta", "ci_low", "ci_high", "p_value")
            }
            out[r.metric]["p_method"] = r.p_method
            out[r.metric]["higher_is_better"] = bool(r.higher_is_better)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object: dataset_diff (curated set), training_diff (the data trained on), attribution,
        metrics.<name>.{base,candidate,delta,ci_low,ci_high,p_value}, slices, verdict and the two versions."""
        return {
            "base": self.base,
            "candidate": self.candidate,
            "dataset_diff": self.dataset_diff.to_dict() if self.dataset_diff is not None else None,
            "training_diff": self.training_diff.to_dict() if self.training_diff is not None else None,
            "attribution": _records(self.attribution),
            "eval": {
                "items": self.paired.n,
                "eval_digest": self.paired.eval_digest,
                "n_boot": self.paired.n_boot,
                "confidence": self.paired.confidence,
                "mcnemar": {
                    "base_only_correct": self.paired.mcnemar.base_only,
                    "candidate_only_correct": self.paired.mcnemar.candidate_only,
                    "p_exact": self.paired.mcnemar.p_exact,
                    "p_mid": self.paired.mcnemar.p_mid,
                },
            },
            "metrics": self.metrics_dict(),
            "slices": [
                {k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()}
                for row in self.slices.to_dict(orient="records")
            ],
            "primary_metric": self.primary_metric,
            "verdict": self.verdict,
            "notes": list(self.notes) + list(self.paired.notes),
        }


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]] | None:
    if df is None:
        return None
    return [
        {k: (_num(v) if isinstance(v, float) else v) for k, v in row.items()}
        for row in df.to_dict(orient="records")
    ]


def _num(v: Any) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def classes_of(predictions: pd.DataFrame) -> tuple[str, ...]:
    """The label set of a predictions table, from its ``proba_<class>`` columns (in column order)."""
    return tuple(
        c[len(schema.PROBA_PREFIX) :] for c in predictions.columns if c.startswith(schema.PROBA_PREFIX)
    )


def prediction_set(predictions: pd.DataFrame, eval_digest: str | None, name: str) -> PredictionSet:
    """A :class:`PredictionSet` from the evaluate stage's ``reports/predictions.parquet`` layout
    (``item_id, gold_label, label, proba_<class>...``; ``label`` is the prediction).

    Raises:
        SchemaError: the gold label or probability columns are missing.
    """
    if GOLD not in predictions.columns:
        raise SchemaError(
            f"{name} predictions lack the {GOLD!r} column; expected {catalog.PREDICTIONS} as the "
            "evaluate stage writes it (item_id, gold_label, label, proba_<class>...)"
        )
    classes = classes_of(predictions)
    if len(classes) < 2:
        raise SchemaError(f"{name} predictions have fewer than two {schema.PROBA_PREFIX}<class> columns")
    frame = predictions.drop(columns=[schema.LABEL], errors="ignore").rename(columns={GOLD: schema.LABEL})
    return PredictionSet.from_frame(frame, classes, eval_digest=eval_digest or None)


def compare_versions(
    base_predictions: pd.DataFrame,
    candidate_predictions: pd.DataFrame,
    *,
    base_eval_digest: str | None = None,
    candidate_eval_digest: str | None = None,
    dataset_diff: DatasetDiff | None = None,
    slices: pd.DataFrame | None = None,
    base: dict[str, Any] | None = None,
    candidate: dict[str, Any] | None = None,
    n_boot: int = 1000,
    n_boot_rank: int = 200,
    slice_n_boot: int = 200,
    min_slice_size: int = 30,
    seed: int = 0,
    primary_metric: str = PRIMARY_METRIC,
    positive_labels: Sequence[str] = (),
    flag_threshold: float | None = None,
) -> ComparisonReport:
    """Paired downstream impact of two versions on the same frozen eval items, plus the data diff.

    Args:
        base_predictions, candidate_predictions: per-item predictions (evaluate-stage layout).
        base_eval_digest, candidate_eval_digest: digest of the gold eval split each was made on.
        dataset_diff: the curated-data diff (see :func:`labelcycle.versioning.diff.diff_datasets`).
        slices: ``item_id`` plus categorical columns for per-slice deltas (None: by gold label).
        base, candidate: descriptions of the two versions (carried into the report).
        n_boot: paired bootstrap resamples for the overall metrics; ``slice_n_boot`` per slice.
        n_boot_rank: resamples for ROC-AUC / PR-AUC (the first ``n_boot_rank`` of the same stream):
            they cost most, and 200 resamples put a 95% interval within a few thousandths.
        min_slice_size: slices with fewer eval items are skipped.
        seed: the only source of randomness.
        primary_metric: the metric the verdict is made on.
        positive_labels, flag_threshold: ``evaluate``'s; with positive labels the binary moderation
            metrics are compared too (a ``binary_*`` primary metric needs them).

    Raises:
        EvalSetMismatchError: the versions were evaluated on different eval sets.
        SchemaError: a predictions table is not in the evaluate-stage layout.
    """
    b = prediction_set(base_predictions, base_eval_digest, "base")
    c = prediction_set(candidate_predictions, candidate_eval_digest, "candidate")
    if b.classes != c.classes:
        raise EvalSetMismatchError(
            f"the two versions predict different label sets: base {list(b.classes)!r}, candidate "
            f"{list(c.classes)!r}; compare versions made with the same ingest.labels"
        )
    root = np.random.SeedSequence(seed)
    overall_seed, slice_seed = root.spawn(2)
    if slices is None:
        slices = pd.DataFrame({schema.ITEM_ID: b.item_ids, GOLD: b.y_true})
    # the slices' bootstrap (its own seed) runs on a second thread beside the overall one: numpy's
    # sampling, products and sums release the GIL, so a second core shortens the wait, same numbers
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labelcycle-slices") as pool:
        sliced = pool.submit(
            slice_paired,
            b,
            c,
            slices,
            metrics=list(SLICE_METRICS),
            n_boot=slice_n_boot,
            random_state=slice_seed,
            min_n=min_slice_size,
        )
        paired = compare_paired(
            b,
            c,
            n_boot=n_boot,
            random_state=np.random.default_rng(overall_seed),
            n_boot_rank=n_boot_rank,
            positive_labels=positive_labels,
            flag_threshold=flag_threshold,
        )
        slice_table = sliced.result()
    return ComparisonReport(
        base=base or {},
        candidate=candidate or {},
        paired=paired,
        slices=slice_table,
        verdict=verdict(paired, primary_metric),
        primary_metric=primary_metric,
        dataset_diff=dataset_diff,
    )


def version_slices(base: VersionData, candidate: VersionData, eval_ids: Sequence[str]) -> pd.DataFrame | None:
    """``item_id`` plus the categorical item columns (2 to 50 values) of the eval items, for per-slice
    deltas; None when neither version has items or some eval item has none."""
    items = base.items if base.items is not None else candidate.items
    if items is None:
        return None
    cols = [
        c
        for c in items.columns
        if c != schema.ITEM_ID
        and not pd.api.types.is_numeric_dtype(items[c])
        and 1 < items[c].nunique() <= 50
    ]
    if not cols:
        return None
    frame = items[[schema.ITEM_ID, *cols]].assign(**{schema.ITEM_ID: items[schema.ITEM_ID].astype(str)})
    wanted = pa.array(pd.Index(eval_ids).astype(str).unique(), type=pa.string())
    # membership in Arrow (pandas' isin walks a large set of Arrow strings in Python)
    hit = pc.is_in(pa.array(frame[schema.ITEM_ID], type=pa.string()), value_set=wanted)
    frame = frame[pc.fill_null(hit, False).to_numpy(zero_copy_only=False)]
    return frame if len(frame) == len(wanted) else None


def compare_data(base: VersionData, candidate: VersionData, **options: Any) -> ComparisonReport:
    """:func:`compare_versions` on two loaded versions, with their curated-data diff and item slices.

    ``options`` are :func:`compare_versions`' own (``n_boot``, ``n_boot_rank``, ``seed``, ``primary_metric``).

    Raises:
        MissingPredictionsError: a version has no saved predictions.
        EvalSetMismatchError: the versions were evaluated on different eval sets.
    """
    base_predictions = base.require_predictions("base")
    candidate_predictions = candidate.require_predictions("candidate")
    eval_ids = base_predictions[schema.ITEM_ID].astype(str)
    slices = version_slices(base, candidate, eval_ids)
    # the data diffs (pandas and Arrow work) run on a thread beside the bootstrap: they are not on its
    # path, and fill a core the bootstrap's numpy work leaves idle; same numbers either way
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="labelcycle-diff") as pool:
        diffs = pool.submit(_data_diffs, base, candidate)
        try:
            report = compare_versions(
                base_predictions,
                candidate_predictions,
                base_eval_digest=base.metrics.get("eval_digest"),
                candidate_eval_digest=candidate.metrics.get("eval_digest"),
                slices=slices,
                base=base.version.describe(),
                candidate=candidate.version.describe(),
                **options,
            )
        except BaseException:
            diffs.result()  # a diff's own error (bad data) is the one to report, as when it ran first
            raise
        diff, training = diffs.result()
    report = dataclasses.replace(report, dataset_diff=diff)
    notes = [] if diff is not None else ["curated labels missing for a version: no dataset diff"]
    notes += comparison_notes(base.metrics, candidate.metrics)  # circular gold, said wherever it is judged
    if training is None:
        notes.append("training sample missing for a version: no training-data diff")
    else:
        label_slices = None
        if GOLD not in set(report.slices.get("slice_column", pd.Series(dtype=str))):
            b = prediction_set(base_predictions, None, "base")
            c = prediction_set(candidate_predictions, None, "candidate")
            label_slices = slice_paired(
                b,
                c,
                pd.DataFrame({schema.ITEM_ID: b.item_ids, GOLD: b.y_true}),
                metrics=["accuracy"],
                n_boot=200,
                random_state=np.random.SeedSequence(options.get("seed", 0) + 1),
                min_n=1,
            )
        attribution = attribute_change(
            base.train_sample, candidate.train_sample, training, report.slices, label_slices
        )
        report = dataclasses.replace(report, training_diff=training, attribution=attribution)
    return dataclasses.replace(report, notes=tuple(notes)) if notes else report


def _data_diffs(base: VersionData, candidate: VersionData) -> tuple[DatasetDiff | None, DatasetDiff | None]:
    """The curated-data diff and the training-data diff of two versions (None where a version lacks it)."""
    methods = {"base_method": base.aggregation_method, "candidate_method": candidate.aggregation_method}
    diff = training = None
    if base.labels is not None and candidate.labels is not None:
        annotations = {"base_annotations": base.annotations, "candidate_annotations": candidate.annotations}
        diff = diff_datasets(base.labels, candidate.labels, **annotations, **methods)
    if base.train_sample is not None and candidate.train_sample is not None:
        training = diff_datasets(base.train_sample, candidate.train_sample, **methods)
    return diff, training


#: the eval metric the change is attributed with (in a gold-label group: that class's recall)
ATTRIBUTION_METRIC = "accuracy"


def attribute_change(
    base_train: pd.DataFrame,
    candidate_train: pd.DataFrame,
    training: DatasetDiff,
    slices: pd.DataFrame,
    label_slices: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The metric change per group beside what changed in the training data of that group.

    Args:
        base_train, candidate_train: the training data of each version (``item_id, label``, item columns).
        training: their :func:`~labelcycle.versioning.diff.diff_datasets`.
        slices: the paired per-slice deltas (:func:`~labelcycle.evaluation.slices.slice_paired`).
        label_slices: per-gold-label deltas, when ``slices`` has none.

    Returns:
        One row per group (``label`` values, then each sliced item column's values): the training changes
        (:func:`~labelcycle.versioning.diff.changes_by_group`) and, where the eval split has items of the
        group, ``eval_items, metric, base, candidate, delta, ci_low, ci_high`` of :data:`ATTRIBUTION_METRIC`
        on them (empty where it has none).
    """
    frames = [f for f in (slices, label_slices) if f is not None and len(f)]
    evals = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            columns=[
                "slice_column",
                "slice_value",
                "n",
                "metric",
                "base",
                "candidate",
                "delta",
                "ci_low",
                "ci_high",
            ]
        )
    )
    evals = evals[evals["metric"] == ATTRIBUTION_METRIC]
    columns = [c for c in dict.fromkeys(evals["slice_column"]) if c != GOLD]
    groups = changes_by_group(base_train, candidate_train, training, columns)
    keys = evals.assign(
        group_column=evals["slice_column"].replace({GOLD: schema.LABEL}).astype(str),
        group_value=evals["slice_value"].astype(str),
    )[["group_column", "group_value", "n", "metric", "base", "candidate", "delta", "ci_low", "ci_high"]]
    out = groups.merge(
        keys.rename(columns={"n": "eval_items"}), on=["group_column", "group_value"], how="left"
    )
    return out.reset_index(drop=True)


def comparison_record(
    report: ComparisonReport, versions: tuple[Version, Version]
) -> tuple[dict[str, str], dict[str, float | None]]:
    """The tags and metrics a comparison is logged with: both versions (with the runs that made them),
    the verdict, the dataset diff's counts and every metric's base/candidate/delta/interval/p-value."""
    tags = {"labelcycle.verdict": report.verdict, "labelcycle.primary_metric": report.primary_metric}
    for role, v in zip(("base", "candidate"), versions, strict=True):
        tags.update(
            {
                f"compare.{role}": v.spec,
                f"compare.{role}.kind": v.kind,
                f"compare.{role}.rev": v.rev or "",
                f"compare.{role}.dvc_exp": v.exp_name or "",
                f"compare.{role}.pipeline_run": v.pipeline_run or "",
                f"compare.{role}.run_ids": json.dumps(dict(v.run_ids)),
            }
        )
        for stage, run_id in v.run_ids.items():
            tags[f"compare.{role}.run.{stage}"] = run_id
    for prefix, diff in (("dataset_diff", report.dataset_diff), ("training_diff", report.training_diff)):
        if diff is not None:
            tags.update(
                {
                    f"{prefix}.items_added": str(diff.items_added),
                    f"{prefix}.items_removed": str(diff.items_removed),
                    f"{prefix}.labels_changed": str(diff.labels_changed),
                }
            )
    metrics = {}
    for name, m in report.metrics_dict().items():
        if "__" in name:
            continue
        for k in ("base", "candidate", "delta", "ci_low", "ci_high", "p_value"):
            metrics[f"{name}.{k}"] = m[k]
    return tags, metrics


# --- HTML ----------------------------------------------------------------------------------------
