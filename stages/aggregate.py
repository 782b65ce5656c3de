"""Stage aggregate: one label per item (params aggregate.method) -> the raw consensus.

The curate stage refines the consensus with the error model into the curated data set; the annotators
stage does the annotator analytics.
"""

from __future__ import annotations

from labelcycle import schema
from labelcycle.aggregation import make_aggregator
from labelcycle.curation import agreement_summary, curated_labels
from labelcycle.params import AggregateParams, IngestParams
from labelcycle.pipeline import project_root, read_parquet, run_stage, stage_params, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "aggregate"


def main() -> None:
    root = project_root()
    params = stage_params(AggregateParams, STAGE, root)
    labels_set = stage_params(IngestParams, "ingest", root).labels
    annotations = read_parquet(root / "data/interim/annotations.parquet")
    aggregator = make_aggregator(params.method, classes=labels_set).fit(annotations)
    labels = curated_labels(annotations, aggregator)
    write_parquet(labels, root / "data/curated/labels_raw.parquet")
    summary = agreement_summary(labels)
    labels_digest = table_digest(labels)
    write_json({"method": params.method, "labels_raw_digest": labels_digest, **summary}, root / "reports/aggregate.json")
    with stage_run(root, STAGE, {"aggregate": vars(params), "ingest": {"labels": labels_set}}) as run:
        run.log_dataset(
            annotations,
            "annotations",
            "raw",
            table_digest(annotations.drop(columns=[schema.RAW_BATCH], errors="ignore")),
            "data/interim/annotations.parquet",
        )
        run.log_dataset(labels, "labels_raw", "consensus", labels_digest, "data/curated/labels_raw.parquet")
        run.set_tags({"labels_raw_digest": labels_digest, "aggregate.method": params.method})
        run.log_metrics({f"agreement.{k}": v for k, v in summary.items()})
        run.log_table(aggregator.skills_.rename("skill").reset_index(), "annotator_skills.csv")
        # what `labelcycle compare` diffs when a version is named by its MLflow run id (labels: curate run)
        run.log_artifact(root / "data/interim/annotations.parquet", "curated")
        run.log_dvc_hashes(["data/interim/annotations.parquet"], ["data/curated/labels_raw.parquet"])
    print(f"aggregate: {len(labels)} items labelled by {params.method}; consensus digest {labels_digest}")


if __name__ == "__main__":
    run_stage(main)
