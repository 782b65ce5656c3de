"""Stage evaluate: judge the quality model on the frozen gold eval split only."""

from __future__ import annotations

import json

import pandas as pd

from labelcycle import schema
from labelcycle.evaluation.metrics import compute_metrics
from labelcycle.evaluation.plots import confusion_matrix_figure
from labelcycle.params import EvaluateParams, IngestParams
from labelcycle.pipeline import (
    project_root, read_parquet, run_stage, save_figure, stage_params, write_json, write_parquet,
)
from labelcycle.quality.model import QualityModel
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "evaluate"
HEADLINE = ("accuracy", "macro_f1", "roc_auc_ovr", "log_loss")


def main() -> None:
    root = project_root()
    p = stage_params(EvaluateParams, STAGE, root)
    classes = stage_params(IngestParams, "ingest", root).labels
    eval_split = read_parquet(root / "data/split/eval.parquet")
    items = read_parquet(root / "data/interim/items.parquet")
    model = QualityModel.load(root / "models/quality")
    eval_items = eval_split[[schema.ITEM_ID]].merge(items, on=schema.ITEM_ID, how="inner")
    pred = model.predict(eval_items)
    pred = pred.merge(eval_split.rename(columns={schema.LABEL: "gold_label"}), on=schema.ITEM_ID)
    proba = pred[schema.proba_columns(classes)].to_numpy()
    eval_digest = table_digest(eval_split)
    metrics = compute_metrics(pred["gold_label"], proba, classes)
    train_info = json.loads((root / "reports/train_quality.json").read_text())
    headline = {k: metrics[k] for k in HEADLINE}
    write_json({**headline, "eval_items": len(pred), "eval_digest": eval_digest}, root / "reports/metrics.json")
    write_parquet(pred, root / "reports/predictions.parquet")
    fig = confusion_matrix_figure(pred["gold_label"], proba, classes)
    save_figure(fig, root / "reports/plots/confusion_matrix.png")
    with stage_run(root, STAGE, {"evaluate": vars(p)}) as run:
        run.log_dataset(eval_split, "eval", "evaluation", eval_digest, "data/split/eval.parquet")
        run.log_metrics({k: v for k, v in metrics.items() if pd.notna(v)})
        run.set_tags({"eval_digest": eval_digest, "quality_model.run_id": train_info.get("mlflow_run_id", ""),
                      "quality_model.uri": train_info.get("model_uri", "")})
        run.log_figure(fig, "plots/confusion_matrix.png")
        run.log_table(pred, "predictions.parquet")
        run.log_dvc_hashes(["data/split/eval.parquet", "data/interim/items.parquet"],
                           ["reports/predictions.parquet", "reports/metrics.json"])
    shown = ", ".join(f"{k} {v:.4f}" for k, v in headline.items())
    print(f"evaluate: {len(pred)} gold eval items (digest {eval_digest}): {shown}")


if __name__ == "__main__":
    run_stage(main)
