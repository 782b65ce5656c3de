"""Stage evaluate: judge the quality model on the frozen gold eval split only, with 95% intervals.

Beside every headline metric, reports/metrics.json holds the majority-class baseline on the same split
(``baseline``), the recall of every class (``per_class_recall``) and, with ``evaluate.positive_labels``, the
binary moderation metrics (``binary_*``, ``recall_at_precision``; the settings and the threshold items were
flagged at under ``moderation``).
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.catalog import ModelReport
from labelcycle.evaluation import baseline, moderation
from labelcycle.evaluation.bootstrap import bootstrap_metrics
from labelcycle.evaluation.plots import (
    plot_confusion_matrix,
    plot_note,
    plot_pr_curves,
    plot_reliability_diagram,
    plot_slice_metric,
)
from labelcycle.evaluation.slices import slice_metrics
from labelcycle.gold import WARNING_KEY, split_warning
from labelcycle.pipeline import (
    StageContext,
    save_figure,
    stage_context,
    write_json,
    write_parquet,
)
from labelcycle.quality.model import QualityModel
from labelcycle.split import no_evaluation
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "evaluate"
HEADLINE = catalog.MULTICLASS_HEADLINE  # the binary ones come from moderation.binary_metrics
SLICE_METRICS = ("accuracy", "macro_f1")
GOLD = "gold_label"
#: the figures evaluate writes (dvc.yaml plots)
FIGURES = ("confusion_matrix.png", "pr_curves.png", "calibration.png", "slices_accuracy.png")


def main() -> None:
    ctx = stage_context()
    root = ctx.root
    params = ctx.params
    p = params.evaluate
    classes = params.classes
    eval_split = ctx.read(catalog.EVAL)
    if eval_split.empty:
        _no_evaluation(ctx, eval_split)
        return
    items = ctx.read(catalog.ITEMS)
    model = QualityModel.load(ctx.path(catalog.QUALITY_MODEL))
    eval_items = eval_split[[schema.ITEM_ID]].merge(items, on=schema.ITEM_ID, how="inner")
    pred = model.predict(eval_items).merge(eval_split.rename(columns={schema.LABEL: GOLD}), on=schema.ITEM_ID)
    pred = pred[[schema.ITEM_ID, GOLD, schema.LABEL, *schema.proba_columns(classes)]]
    proba = pred[schema.proba_columns(classes)].to_numpy()
    y = pred[GOLD]
    eval_digest = table_digest(eval_split)
    gold_warning = split_warning(eval_split)  # circular gold: metrics measure agreement with the crowd

    table = bootstrap_metrics(y, proba, classes, n_boot=p.n_boot, random_state=p.seed)
    slice_cols = list(model.pipeline.roles_.categorical)  # categories only: never free text or ids
    slice_frame = (
        eval_items.set_index(schema.ITEM_ID).loc[pred[schema.ITEM_ID], slice_cols].reset_index(drop=True)
    )
    slices = (
        slice_metrics(
            y,
            proba,
            classes,
            slice_frame,
            metrics=list(SLICE_METRICS),
            n_boot=p.n_boot,
            random_state=p.seed,
            min_n=p.min_slice_size,
        )
        if slice_cols
        else pd.DataFrame()
    )
    by_metric = table.set_index("metric")
    metrics = {m: float(by_metric.loc[m, "value"]) for m in HEADLINE}
    intervals = {
        m: {"ci_low": float(by_metric.loc[m, "ci_low"]), "ci_high": float(by_metric.loc[m, "ci_high"])}
        for m in HEADLINE
    }
    moderation_metrics: dict[str, float] = {}
    flagged_at = None
    if p.positive_labels:
        moderation_metrics = moderation.binary_metrics(
            y, proba, classes, p.positive_labels, p.target_precision, p.flag_threshold
        )
        flagged_at = moderation_metrics.pop(moderation.THRESHOLD)
        intervals.update(
            moderation.binary_intervals(
                y,
                proba,
                classes,
                p.positive_labels,
                n_boot=p.n_boot,
                random_state=p.seed,
                threshold=p.flag_threshold,
            )
        )
    recalls = moderation.per_class_recall(y, proba, classes)
    base = baseline.baseline_metrics(y, classes, HEADLINE, p.positive_labels, p.target_precision)
    base.pop(moderation.THRESHOLD, None)
    write_json(
        {
            **metrics,
            **_json_safe(moderation_metrics),
            "ci95": _json_safe(intervals),
            "eval_items": len(pred),
            "eval_digest": eval_digest,
            "per_class_recall": _json_safe(recalls),
            "baseline": _json_safe(base),
            "baseline_kind": f"{baseline.NAME}: always {baseline.majority_label(y, classes)!r}, "
            "eval class frequencies as probabilities",
            **({WARNING_KEY: gold_warning} if gold_warning else {}),
            "moderation": {
                "positive_labels": p.positive_labels,
                "target_precision": p.target_precision,
                "flag_threshold": p.flag_threshold,  # null: the expected-macro-F1-optimal one
                "flagged_at": flagged_at,
            },
        },
        ctx.path(catalog.METRICS),
    )
    write_parquet(pred, ctx.path(catalog.PREDICTIONS))
    table.to_csv(ctx.path(catalog.EVAL_METRICS_CSV), index=False)
    slices.to_csv(ctx.path(catalog.EVAL_SLICES_CSV), index=False)
    figures = {
        "confusion_matrix.png": plot_confusion_matrix(y, proba, classes),
        "pr_curves.png": plot_pr_curves(y, proba, classes),
        "calibration.png": plot_reliability_diagram(y, proba, classes),
    }
    # dvc.yaml declares the figure: without slices it says why there are none
    figures["slices_accuracy.png"] = (
        plot_slice_metric(slices, "accuracy")
        if len(slices)
        else plot_note(
            "no slices",
            f"no categorical item feature value has {p.min_slice_size} or more eval items "
            "(evaluate.min_slice_size)"
            if slice_cols
            else "the items have no categorical features to slice by",
        )
    )
    for name, fig in figures.items():
        save_figure(fig, ctx.path(catalog.PLOTS) / name)
    train_info = ctx.catalog.report(ModelReport, required=True)
    with stage_run(root, STAGE, {"evaluate": dataclasses.asdict(p)}) as run:
        run.log_dataset(eval_split, "eval", "evaluation", eval_digest, catalog.EVAL)
        run.log_metrics(metrics)
        run.log_metrics({**moderation_metrics, "binary_threshold": flagged_at})
        run.log_metrics({f"baseline.{m}": v for m, v in base.items()})
        run.log_metrics({f"{m}_ci_low": v["ci_low"] for m, v in intervals.items()})
        run.log_metrics({f"{m}_ci_high": v["ci_high"] for m, v in intervals.items()})
        run.log_metrics({f"{r.metric}": r.value for r in table.itertuples() if r.metric not in metrics})
        run.set_tags(
            {
                "eval_digest": eval_digest,
                "quality_model.run_id": train_info.mlflow_run_id or "",
                "quality_model.uri": train_info.model_uri or "",
                "quality_model.version": train_info.model_version or "",
            }
        )
        for name, fig in figures.items():
            run.log_figure(fig, f"plots/{name}")
        run.log_table(pred, "predictions.parquet")
        run.log_table(table, "eval_metrics.csv")
        if len(slices):
            run.log_table(slices, "eval_slices.csv")
        run.log_dvc_hashes(
            [catalog.EVAL, catalog.ITEMS, catalog.QUALITY_MODEL],
            [catalog.PREDICTIONS, catalog.METRICS],
        )
    shown = ", ".join(
        f"{k} {metrics[k]:.4f} [{intervals[k]['ci_low']:.4f}, {intervals[k]['ci_high']:.4f}]"
        for k in ("accuracy", "macro_f1")
    )
    print(f"evaluate: {len(pred)} gold eval items (digest {eval_digest}): {shown}")
    if gold_warning:
        print(f"evaluate: warning: {gold_warning}")
    print(
        f"evaluate: majority-class baseline ({baseline.majority_label(y, classes)!r} always): "
        f"accuracy {base['accuracy']:.4f}, macro_f1 {base['macro_f1']:.4f}"
    )
    print("evaluate: recall per class: " + ", ".join(f"{c} {v:.3f}" for c, v in recalls.items()))
    if moderation_metrics:
        m = moderation_metrics
        print(
            f"evaluate: binary {p.positive_labels} (flagged at P >= {flagged_at:.3f}): precision "
            f"{m['binary_precision']:.4f}, recall "
            f"{m['binary_recall']:.4f}, F1 {m['binary_f1']:.4f}, PR-AUC {m['binary_pr_auc']:.4f}, recall at "
            f"precision {p.target_precision:.2f} {m['recall_at_precision']:.4f}"
        )


def _no_evaluation(ctx: StageContext, eval_split: pd.DataFrame) -> None:
    """No gold eval items: every output says so (metrics.json ``evaluated: false`` and the reason)."""
    reason = no_evaluation()
    eval_digest = table_digest(eval_split)
    classes = ctx.params.classes
    write_json(
        {"evaluated": False, "reason": reason, "eval_items": 0, "eval_digest": eval_digest, "ci95": {}},
        ctx.path(catalog.METRICS),
    )
    columns = [schema.ITEM_ID, GOLD, schema.LABEL, *schema.proba_columns(classes)]
    write_parquet(pd.DataFrame({c: pd.Series(dtype=object) for c in columns}), ctx.path(catalog.PREDICTIONS))
    for rel in (catalog.EVAL_METRICS_CSV, catalog.EVAL_SLICES_CSV):
        pd.DataFrame({"note": [reason]}).to_csv(ctx.path(rel), index=False)
    for name in FIGURES:
        save_figure(plot_note("no evaluation", reason), ctx.path(catalog.PLOTS) / name)
    with stage_run(ctx.root, STAGE, {"evaluate": dataclasses.asdict(ctx.params.evaluate)}) as run:
        run.log_dataset(eval_split, "eval", "evaluation", eval_digest, catalog.EVAL)
        run.set_tags({"eval_digest": eval_digest, "evaluation": "none", "evaluation.reason": reason})
        run.log_dvc_hashes([catalog.EVAL], [catalog.PREDICTIONS, catalog.METRICS])
    print(f"evaluate: {reason}")


def _json_safe(values: dict) -> dict:
    """NaN (an undefined metric) as null, nested mappings alike."""
    return {
        k: _json_safe(v) if isinstance(v, dict) else (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in values.items()
    }
