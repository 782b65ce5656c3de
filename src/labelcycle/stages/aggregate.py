"""Stage aggregate: one label per item (params aggregate.method) -> the raw consensus.

The curate stage refines the consensus with the error model into the curated data set; the annotators
stage does the annotator analytics.
"""

from __future__ import annotations

import dataclasses

from labelcycle import catalog, schema
from labelcycle.aggregation import make_aggregator
from labelcycle.aggregation.base import ties_to_last
from labelcycle.curation import agreement_summary, curated_labels
from labelcycle.pipeline import stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "aggregate"


def main() -> None:
    ctx = stage_context()
    p, labels_set = ctx.params.aggregate, ctx.params.classes
    ordinal, tie_break = ctx.params.ingest.ordinal, ctx.params.ingest.tie_break
    ties = ties_to_last(tie_break, ordinal)
    annotations = ctx.read(catalog.ANNOTATIONS)
    aggregator = make_aggregator(p.method, classes=labels_set, ties_to_last=ties).fit(annotations)
    labels = curated_labels(annotations, aggregator)
    write_parquet(labels, ctx.path(catalog.LABELS_RAW))
    summary = agreement_summary(labels)
    labels_digest = table_digest(labels)
    write_json(
        {"method": p.method, "labels_raw_digest": labels_digest, **summary},
        ctx.path(catalog.AGGREGATE_REPORT),
    )
    with stage_run(
        ctx.root,
        STAGE,
        {
            "aggregate": dataclasses.asdict(p),
            "ingest": {"labels": labels_set, "ordinal": ordinal, "tie_break": tie_break},
        },
    ) as run:
        run.log_dataset(
            annotations,
            "annotations",
            "raw",
            table_digest(annotations.drop(columns=[schema.RAW_BATCH], errors="ignore")),
            catalog.ANNOTATIONS,
        )
        run.log_dataset(labels, "labels_raw", "consensus", labels_digest, catalog.LABELS_RAW)
        run.set_tags({"labels_raw_digest": labels_digest, "aggregate.method": p.method})
        run.log_metrics({f"agreement.{k}": v for k, v in summary.items()})
        run.log_table(aggregator.skills_.rename("skill").reset_index(), "annotator_skills.csv")
        # what `labelcycle compare` diffs when a version is named by its MLflow run id (labels: curate run)
        run.log_artifact(ctx.path(catalog.ANNOTATIONS), "curated")
        run.log_dvc_hashes([catalog.ANNOTATIONS], [catalog.LABELS_RAW])
    print(f"aggregate: {len(labels)} items labelled by {p.method}; consensus digest {labels_digest}")
