"""Stage train_error_model: P(annotation is wrong) for every annotation; the model under models/error/."""

from __future__ import annotations

import shutil

from labelcycle import schema
from labelcycle.detection.model import SCORE, detect_label_errors
from labelcycle.params import AggregateParams, IngestParams, TrainErrorModelParams
from labelcycle.pipeline import project_root, read_parquet, run_stage, stage_params, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "train_error_model"
MODEL_DIR = "models/error"
SCORES = "data/curated/error_scores.parquet"


def main() -> None:
    root = project_root()
    p = stage_params(TrainErrorModelParams, STAGE, root)
    method = stage_params(AggregateParams, "aggregate", root).method
    classes = stage_params(IngestParams, "ingest", root).labels
    annotations = read_parquet(root / "data/interim/annotations.parquet")
    items = read_parquet(root / "data/interim/items.parquet")
    gold_train = read_parquet(root / "data/split/gold_train.parquet")
    eval_split = read_parquet(root / "data/split/eval.parquet")
    # gold_train never holds eval items; exclude_items makes sure of it a second time
    result = detect_label_errors(annotations, classes, items, gold_train, exclude_items=eval_split[schema.ITEM_ID],
                                 params=p.model_params(method))
    model_dir = root / MODEL_DIR
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    if result.model is not None:
        result.model.save(model_dir)
    (model_dir / "README.txt").write_text(result.message + "\n")
    write_parquet(result.scores, root / SCORES)
    summary = {"supervised": result.supervised, "message": result.message, "annotations": len(result.scores),
               "flagged": int(result.scores["is_label_error_issue"].sum()),
               "mean_score": float(result.scores[SCORE].mean()), **result.metrics}
    write_json(summary, root / "reports/train_error_model.json")
    with stage_run(root, STAGE, {STAGE: vars(p), "aggregate": {"method": method}, "ingest": {"labels": classes}}) as run:
        run.log_dataset(gold_train, "gold_train", "training", table_digest(gold_train), "data/split/gold_train.parquet")
        run.log_dataset(eval_split, "eval", "excluded", table_digest(eval_split), "data/split/eval.parquet")
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)})
        run.set_tags({"error_model.supervised": result.supervised, "eval_digest": table_digest(eval_split)})
        if result.model is not None:
            run.log_table(result.model.importance().rename_axis("feature").reset_index(), "feature_importance.csv")
            run.log_artifact(model_dir, "error_model")
        run.log_dvc_hashes(["data/interim/annotations.parquet", "data/split/gold_train.parquet"], [SCORES])
    print(f"train_error_model: {result.message}; {summary['flagged']} of {len(result.scores)} annotations flagged")


if __name__ == "__main__":
    run_stage(main)
