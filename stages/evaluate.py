"""Stage evaluate: judge the quality model on the frozen gold eval split only, with 95% intervals."""

from __future__ import annotations

import dataclasses

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.catalog import Catalog, ModelReport
from labelcycle.evaluation.bootstrap import bootstrap_metrics
from labelcycle.evaluation.plots import (
    plot_confusion_matrix,
    plot_pr_curves,
    plot_reliability_diagram,
    plot_slice_metric,
)
from labelcycle.evaluation.slices import slice_metrics
from labelcycle.pipeline import (
    project_root,
    read_parquet,
    run_stage,
    save_figure,
    stage_params,
    write_json,
    write_parquet,
)
from labelcycle.quality.model import QualityModel
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "evaluate"
HEADLINE = catalog.HEADLINE
SLICE_METRICS = ("accuracy", "macro_f1")
GOLD = "gold_label"


def main() -> None:
    root = project_root()
    cat = Catalog(root)
    params = stage_params(root)
    p = params.evaluate
    classes = params.classes
    eval_split = read_parquet(cat.path(catalog.EVAL))
    items = read_parquet(cat.path(catalog.ITEMS))
    model = QualityModel.load(cat.path(catalog.QUALITY_MODEL))
    eval_items = eval_split[[schema.ITEM_ID]].merge(items, on=schema.ITEM_ID, how="inner")
    pred = model.predict(eval_items).merge(eval_split.rename(columns={schema.LABEL: GOLD}), on=schema.ITEM_ID)
    pred = pred[[schema.ITEM_ID, GOLD, schema.LABEL, *schema.proba_columns(classes)]]
    proba = pred[schema.proba_columns(classes)].to_numpy()
    y = pred[GOLD]
    eval_digest = table_digest(eval_split)

    table = bootstrap_metrics(y, proba, classes, n_boot=p.n_boot, random_state=p.seed)
    slice_cols = [
        c for c in items.columns if c != schema.ITEM_ID and not pd.api.types.is_numeric_dtype(items[c])
    ]
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
    write_json(
        {**metrics, "ci95": intervals, "eval_items": len(pred), "eval_digest": eval_digest},
        cat.path(catalog.METRICS),
    )
    write_parquet(pred, cat.path(catalog.PREDICTIONS))
    table.to_csv(cat.path(catalog.EVAL_METRICS_CSV), index=False)
    slices.to_csv(cat.path(catalog.EVAL_SLICES_CSV), index=False)
    figures = {
        "confusion_matrix.png": plot_confusion_matrix(y, proba, classes),
        "pr_curves.png": plot_pr_curves(y, proba, classes),
        "calibration.png": plot_reliability_diagram(y, proba, classes),
    }
    if len(slices):
        figures["slices_accuracy.png"] = plot_slice_metric(slices, "accuracy")
    for name, fig in figures.items():
        save_figure(fig, cat.path(catalog.PLOTS) / name)
    train_info = cat.report(ModelReport, required=True)
    with stage_run(root, STAGE, {"evaluate": dataclasses.asdict(p)}) as run:
        run.log_dataset(eval_split, "eval", "evaluation", eval_digest, catalog.EVAL)
        run.log_metrics(metrics)
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


if __name__ == "__main__":
    run_stage(main)
