"""Stage train_quality: LightGBM quality classifier on the curated labels (gold eval items excluded)."""

from __future__ import annotations

import json
import shutil

from labelcycle import schema
from labelcycle.curation import N_ANNOTATIONS
from labelcycle.params import IngestParams, TrainQualityParams
from labelcycle.pipeline import (
    project_root,
    read_parquet,
    register_output,
    run_stage,
    stage_params,
    write_json,
)
from labelcycle.quality.model import train
from labelcycle.tracking.models import log_quality_model
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "train_quality"
MODEL_DIR = "models/quality"
BEST_PARAMS = "reports/best_params.json"
NOT_FEATURES = {schema.LABEL, schema.CONFIDENCE, N_ANNOTATIONS}


def main() -> None:
    root = project_root()
    p = stage_params(TrainQualityParams, STAGE, root)
    classes = stage_params(IngestParams, "ingest", root).labels
    dataset = read_parquet(root / "data/curated/train_sample.parquet")
    eval_split = read_parquet(root / "data/split/eval.parquet")
    train_rows = dataset[~dataset[schema.ITEM_ID].isin(eval_split[schema.ITEM_ID])].reset_index(drop=True)
    items = train_rows[[c for c in train_rows.columns if c not in NOT_FEATURES]]
    weights = train_rows[schema.CONFIDENCE] if p.use_confidence_weights else None
    tuned = json.loads((root / BEST_PARAMS).read_text()) if (root / BEST_PARAMS).exists() else None
    lgb_params = p.lgb_params(tuned["params"] if (p.use_tuned and tuned) else None)
    fit_args = dict(params=lgb_params, weights=weights, valid_fraction=p.valid_fraction,
                    early_stopping_rounds=p.early_stopping_rounds, seed=p.seed)
    backend = {"backend": "local"}
    if p.dask["enabled"]:  # issue 8: the same training on a Dask cluster (lightgbm.dask)
        from labelcycle.quality.distributed import dask_client, scheduler_address, train_on_dask

        address = scheduler_address(p.dask["scheduler"])
        with dask_client(address) as client:
            result = train_on_dask(client, items, train_rows[schema.LABEL], classes, **fit_args)
        backend = {"backend": "dask", "dask.scheduler": address or "LocalCluster"}
    else:
        result = train(items, train_rows[schema.LABEL], classes, **fit_args)
    model_dir = register_output(root / MODEL_DIR)
    if model_dir.exists():
        shutil.rmtree(model_dir)
    result.model.save(model_dir)
    train_digest = table_digest(train_rows)
    metrics = {"n_train": result.n_train, "n_valid": result.n_valid, "best_iteration": result.best_iteration,
               **result.valid_metrics}
    logged = {"train_quality": vars(p), "ingest": {"labels": classes}, "lgb": lgb_params,
              "tuned_study": tuned["study"] if (p.use_tuned and tuned) else "none"}
    with stage_run(root, STAGE, logged) as run:
        run.log_dataset(train_rows, "curated_train", "training", train_digest, "data/curated/train_sample.parquet")
        run.log_dataset(dataset, "curated", "training", table_digest(dataset), "data/curated/train_sample.parquet")
        run.log_dataset(eval_split, "eval", "excluded", table_digest(eval_split), "data/split/eval.parquet")
        run.log_metrics(metrics)
        info = log_quality_model(model_dir, items, p.registered_model)
        run.set_tags({"curated_digest": table_digest(dataset), "eval_digest": table_digest(eval_split),
                      "model.registered_name": p.registered_model,
                      **{f"train_quality.{k}": v for k, v in backend.items()},
                      "model.version": getattr(info, "registered_model_version", "") or ""})
        run.log_dvc_hashes(["data/curated/train_sample.parquet", "data/split/eval.parquet"], [])
        metrics.update({"mlflow_run_id": run.run_id, "model_uri": info.model_uri,
                        "registered_model": p.registered_model,
                        "model_version": getattr(info, "registered_model_version", None)})
    write_json(metrics, root / "reports/train_quality.json")
    print(f"train_quality: {result.n_train} training items, best iteration {result.best_iteration}; "
          f"registered {p.registered_model} v{metrics['model_version']}")


if __name__ == "__main__":
    run_stage(main)
