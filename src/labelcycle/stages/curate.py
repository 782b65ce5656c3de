"""Stage curate: apply the error scores (params curate.action) -> the curated data set train_quality reads."""

from __future__ import annotations

import dataclasses

from labelcycle import catalog
from labelcycle.aggregation import make_aggregator
from labelcycle.aggregation.base import ties_to_last
from labelcycle.curation import agreement_summary, curated_dataset, curated_labels
from labelcycle.detection.curate import curate_labels, without_annotators
from labelcycle.pipeline import stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "curate"


def main() -> None:
    ctx = stage_context()
    p = ctx.params.curate
    method, classes = ctx.params.aggregate.method, ctx.params.classes
    ordinal, tie_break = ctx.params.ingest.ordinal, ctx.params.ingest.tie_break
    ties = ties_to_last(tie_break, ordinal)
    annotations, items, labels_raw, scores = ctx.read_all(
        catalog.ANNOTATIONS, catalog.ITEMS, catalog.LABELS_RAW, catalog.ERROR_SCORES
    )
    excluded = {}
    if p.exclude_annotators or p.annotator_weights:
        n_before = len(annotations)
        annotations, scores = without_annotators(
            annotations, scores, p.exclude_annotators, list(p.annotator_weights)
        )
        excluded = {"annotations_excluded": float(n_before - len(annotations))}
    if p.exclude_annotators:  # the consensus the curated set starts from, without them
        n_items = len(labels_raw)
        labels_raw = curated_labels(
            annotations, make_aggregator(method, classes=classes, ties_to_last=ties).fit(annotations)
        )
        excluded["items_without_judgements_left"] = float(n_items - len(labels_raw))
    result = curate_labels(
        annotations, labels_raw, scores, classes, p.action, p.threshold, method, p.annotator_weights, ties
    )
    result.summary.update(excluded)
    dataset = curated_dataset(result.labels, items)
    write_parquet(result.labels, ctx.path(catalog.LABELS))
    write_parquet(dataset, ctx.path(catalog.DATASET))
    curated_digest = table_digest(dataset)
    summary = {**result.summary, "curated_digest": curated_digest, **agreement_summary(result.labels)}
    write_json(summary, ctx.path(catalog.CURATE_REPORT))
    with stage_run(
        ctx.root,
        STAGE,
        {
            STAGE: dataclasses.asdict(p),
            "aggregate": {"method": method},
            "ingest": {"labels": classes, "ordinal": ordinal, "tie_break": tie_break},
        },
    ) as run:
        run.log_dataset(dataset, "curated", "training", curated_digest, catalog.DATASET)
        run.set_tags({"curated_digest": curated_digest, "curate.action": p.action})
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
        # what `labelcycle compare` diffs when a version is named by its MLflow run id
        run.log_artifact(ctx.path(catalog.LABELS), "curated")
        run.log_dvc_hashes([catalog.LABELS_RAW, catalog.ERROR_SCORES], [catalog.LABELS, catalog.DATASET])
    if p.exclude_annotators:
        print(
            f"curate: left out {int(excluded['annotations_excluded'])} judgements of the excluded "
            f"annotator(s) {p.exclude_annotators}; "
            f"{int(excluded['items_without_judgements_left'])} item(s) had no other judgement and leave the "
            "curated set"
        )
    print(
        f"curate: {p.action} at {p.threshold}: {int(result.summary['items_before'])} -> "
        f"{int(result.summary['items_after'])} items; curated digest {curated_digest}"
    )
