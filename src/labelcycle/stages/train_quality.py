"""Stage train_quality: LightGBM quality classifier on the curated labels (gold eval items excluded)."""

from __future__ import annotations

import dataclasses
import shutil

from labelcycle import catalog
from labelcycle.catalog import BestParamsReport
from labelcycle.pipeline import register_output, stage_context, write_json
from labelcycle.quality.model import train
from labelcycle.split import no_evaluation
from labelcycle.tracking.models import log_quality_model
from labelcycle.tracking.recorded import TAG_UNRECORDED, mark_unrecorded, tag_registered, tag_report
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "train_quality"


def main() -> None:
    ctx = stage_context()
    params = ctx.params
    p, classes = params.train_quality, params.classes
    inputs = ctx.training_inputs()
    dataset, eval_split, rows = inputs.sample, inputs.eval_split, inputs.rows
    weights = rows.confidence if p.use_confidence_weights else None
    tuned = ctx.catalog.report(BestParamsReport) if p.use_tuned else None
    lgb_params = p.lgb_params(tuned.params if tuned else None)
    fit_args = dict(
        params=lgb_params,
        features=params.features,
        weights=weights,
        valid_fraction=p.valid_fraction,
        early_stopping_rounds=p.early_stopping_rounds,
        seed=p.seed,
    )
    backend = {"backend": "local"}
    if p.dask.enabled:  # the same training on a Dask cluster (lightgbm.dask)
        from labelcycle.dask_cluster import scheduler_address
        from labelcycle.quality.distributed import dask_client, train_on_dask

        address = scheduler_address(p.dask.scheduler)
        with dask_client(address) as client:
            result = train_on_dask(client, rows.items, rows.labels, classes, **fit_args)
        backend = {"backend": "dask", "dask.scheduler": address or "LocalCluster"}
    else:
        result = train(rows.items, rows.labels, classes, **fit_args)
    model_dir = register_output(ctx.path(catalog.QUALITY_MODEL))
    if model_dir.exists():
        shutil.rmtree(model_dir)
    result.model.save(model_dir)
    train_digest = rows.digest()
    eval_digest = table_digest(eval_split)
    metrics = {
        "n_train": result.n_train,
        "n_valid": result.n_valid,
        "best_iteration": result.best_iteration,
        **result.valid_metrics,
    }
    roles = result.model.pipeline.roles_
    logged = {
        "train_quality": dataclasses.asdict(p),
        "ingest": {"labels": classes},
        "lgb": lgb_params,
        "tuned_study": tuned.study if tuned else "none",
        "features": dataclasses.asdict(params.features),
    }
    with stage_run(ctx.root, STAGE, logged) as run:
        run.log_training_data(
            dataset, rows.rows, train_digest, inputs.curated_digest
        )  # the sample, the rows fitted, the curated digest
        run.log_dataset(eval_split, "eval", "excluded", eval_digest, catalog.EVAL)
        run.log_metrics(metrics)
        run.log_dict(roles.to_dict(), "feature_roles.json")
        # no gold eval split: the model is logged but not registered, so nothing unjudged can be promoted
        registered = p.registered_model if len(eval_split) else None
        unrecorded = mark_unrecorded(ctx.root, registered) if registered else []
        info = log_quality_model(model_dir, rows.items, registered)
        version = getattr(info, "registered_model_version", None)
        if registered and version:
            tag_registered(ctx.root, registered, str(version))
        run.set_tags(
            {
                "eval_digest": eval_digest,
                "model.registered_name": registered or "",
                **({} if registered else {"model.not_registered": no_evaluation()}),
                **{f"train_quality.{k}": v for k, v in backend.items()},
                "model.version": getattr(info, "registered_model_version", "") or "",
            }
        )
        run.log_dvc_hashes([catalog.TRAIN_SAMPLE, catalog.EVAL], [])
        metrics.update(
            {
                "mlflow_run_id": run.run_id,
                "model_uri": info.model_uri,
                "registered_model": registered,
                "model_version": getattr(info, "registered_model_version", None),
            }
        )
        if not registered:
            metrics["not_registered"] = no_evaluation()
    write_json(metrics, ctx.path(catalog.TRAIN_QUALITY_REPORT))
    if registered and version:
        tag_report(registered, str(version), ctx.path(catalog.TRAIN_QUALITY_REPORT))
    for v in unrecorded:
        print(
            f"train_quality: {p.registered_model} v{v} is recorded by no {catalog.DVC_LOCK} (an interrupted "
            f"dvc run, or one never committed); tagged {TAG_UNRECORDED}: it cannot be promoted"
        )
    print(f"train_quality: {roles.describe()}")
    n_features = len(result.model.pipeline.feature_names)
    where = (
        f"registered {registered} v{metrics['model_version']}"
        if registered
        else f"not registered as a promotion candidate ({no_evaluation()})"
    )
    print(
        f"train_quality: {result.n_train} training items, {n_features} features, "
        f"best iteration {result.best_iteration}; {where}"
    )
