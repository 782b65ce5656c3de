"""Stage curate: apply the error scores (params curate.action) -> the curated data set train_quality reads."""

from __future__ import annotations

import dataclasses

from labelcycle import catalog
from labelcycle.curation import agreement_summary, curated_dataset
from labelcycle.detection.curate import curate_labels
from labelcycle.pipeline import stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "curate"


def main() -> None:
    ctx = stage_context()
    p = ctx.params.curate
    method, classes = ctx.params.aggregate.method, ctx.params.classes
    annotations, items, labels_raw, scores = ctx.read_all(
        catalog.ANNOTATIONS, catalog.ITEMS, catalog.LABELS_RAW, catalog.ERROR_SCORES
    )
    result = curate_labels(annotations, labels_raw, scores, classes, p.action, p.threshold, method)
    dataset = curated_dataset(result.labels, items)
    write_parquet(result.labels, ctx.path(catalog.LABELS))
    write_parquet(dataset, ctx.path(catalog.DATASET))
    curated_digest = table_digest(dataset)
    summary = {**result.summary, "curated_digest": curated_digest, **agreement_summary(result.labels)}
    write_json(summary, ctx.path(catalog.CURATE_REPORT))
    with stage_run(
        ctx.root,
        STAGE,
        {STAGE: dataclasses.asdict(p), "aggregate": {"method": method}, "ingest": {"labels": classes}},
    ) as run:
        run.log_dataset(dataset, "curated", "training", curated_digest, catalog.DATASET)
        run.set_tags({"curated_digest": curated_digest, "curate.action": p.action})
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
        # what `labelcycle compare` diffs when a version is named by its MLflow run id
        run.log_artifact(ctx.path(catalog.LABELS), "curated")
        run.log_dvc_hashes([catalog.LABELS_RAW, catalog.ERROR_SCORES], [catalog.LABELS, catalog.DATASET])
    print(
        f"curate: {p.action} at {p.threshold}: {int(result.summary['items_before'])} -> "
        f"{int(result.summary['items_after'])} items; curated digest {curated_digest}"
    )
