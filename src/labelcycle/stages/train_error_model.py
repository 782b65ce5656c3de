"""Stage train_error_model: P(annotation is wrong) for every annotation; the model under models/error/."""

from __future__ import annotations

import dataclasses
import shutil

from labelcycle import catalog, schema
from labelcycle.detection.model import SCORE, detect_label_errors
from labelcycle.pipeline import stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "train_error_model"


def main() -> None:
    ctx = stage_context()
    method, classes = ctx.params.aggregate.method, ctx.params.classes
    annotations, items, gold_train, eval_split = ctx.read_all(
        catalog.ANNOTATIONS, catalog.ITEMS, catalog.GOLD_TRAIN, catalog.EVAL
    )
    # gold_train never holds eval items; exclude_items makes sure of it a second time
    result = detect_label_errors(
        annotations,
        classes,
        items,
        gold_train,
        exclude_items=eval_split[schema.ITEM_ID],
        params=ctx.params.error_model,
        item_features=ctx.params.features,
    )
    model_dir = ctx.path(catalog.ERROR_MODEL)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    if result.model is not None:
        result.model.save(model_dir)
    (model_dir / "README.txt").write_text(result.message + "\n")
    write_parquet(result.scores, ctx.path(catalog.ERROR_SCORES))
    summary = {
        "supervised": result.supervised,
        "message": result.message,
        "annotations": len(result.scores),
        "flagged": int(result.scores["is_label_error_issue"].sum()),
        "mean_score": float(result.scores[SCORE].mean()),
        **result.metrics,
    }
    write_json(summary, ctx.path(catalog.ERROR_MODEL_REPORT))
    with stage_run(
        ctx.root,
        STAGE,
        {
            STAGE: dataclasses.asdict(ctx.params.error_model),
            "aggregate": {"method": method},
            "ingest": {"labels": classes},
        },
    ) as run:
        run.log_dataset(gold_train, "gold_train", "training", table_digest(gold_train), catalog.GOLD_TRAIN)
        run.log_dataset(eval_split, "eval", "excluded", table_digest(eval_split), catalog.EVAL)
        run.log_metrics(
            {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        )
        run.set_tags({"error_model.supervised": result.supervised, "eval_digest": table_digest(eval_split)})
        if result.model is not None:
            run.log_table(
                result.model.importance().rename_axis("feature").reset_index(), "feature_importance.csv"
            )
            run.log_artifact(model_dir, "error_model")
        run.log_dvc_hashes([catalog.ANNOTATIONS, catalog.GOLD_TRAIN], [catalog.ERROR_SCORES])
    print(
        f"train_error_model: {result.message}; {summary['flagged']} of {len(result.scores)} annotations flagged"
    )
