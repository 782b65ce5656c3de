"""Stage aggregate: one label per item (params aggregate.method) -> the raw consensus, annotator analytics.

The curate stage refines the consensus with the error model into the curated data set.
"""

from __future__ import annotations

from labelcycle import schema
from labelcycle.aggregation import make_aggregator
from labelcycle.annotators import analyse_annotators, render_report
from labelcycle.curation import agreement_summary, curated_labels
from labelcycle.params import AggregateParams, IngestParams
from labelcycle.pipeline import (
    project_root,
    read_parquet,
    run_stage,
    stage_params,
    write_json,
    write_parquet,
    write_text,
)
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "aggregate"


def main() -> None:
    root = project_root()
    params = stage_params(AggregateParams, STAGE, root)
    labels_set = stage_params(IngestParams, "ingest", root).labels
    annotations = read_parquet(root / "data/interim/annotations.parquet")
    items = read_parquet(root / "data/interim/items.parquet")
    # annotator accuracy against gold uses only the gold left for training, never the frozen eval split
    gold_train = read_parquet(root / "data/split/gold_train.parquet")
    aggregator = make_aggregator(params.method, classes=labels_set).fit(annotations)
    labels = curated_labels(annotations, aggregator)
    analysis = analyse_annotators(
        annotations,
        aggregator,
        items=items if items.shape[1] > 1 else None,
        gold=gold_train if len(gold_train) else None,
    )
    write_parquet(labels, root / "data/curated/labels_raw.parquet")
    write_parquet(analysis.table, root / "reports/annotators.parquet")
    write_parquet(analysis.root_causes, root / "reports/root_causes.parquet")
    write_text(
        render_report(analysis, title=f"Annotators ({params.method})"), root / "reports/annotators.html"
    )
    summary = agreement_summary(labels)
    labels_digest = table_digest(labels)
    agreement = {
        k: v for k, v in analysis.agreement.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    write_json(
        {"method": params.method, "labels_raw_digest": labels_digest, **summary, **agreement},
        root / "reports/aggregate.json",
    )
    with stage_run(root, STAGE, {"aggregate": vars(params), "ingest": {"labels": labels_set}}) as run:
        run.log_dataset(
            annotations,
            "annotations",
            "raw",
            table_digest(annotations.drop(columns=[schema.RAW_BATCH], errors="ignore")),
            "data/interim/annotations.parquet",
        )
        run.log_dataset(labels, "labels_raw", "consensus", labels_digest, "data/curated/labels_raw.parquet")
        run.set_tags(
            {
                "labels_raw_digest": labels_digest,
                "aggregate.method": params.method,
                "spammers": ",".join(analysis.spammers)[:4000],
            }
        )
        run.log_metrics({f"agreement.{k}": v for k, v in {**summary, **agreement}.items()})
        run.log_table(analysis.table, "annotators.parquet")
        run.log_table(analysis.table, "annotators.csv")
        run.log_table(analysis.root_causes, "root_causes.csv")
        run.log_artifact(root / "reports/annotators.html")
        # what `labelcycle compare` diffs when a version is named by its MLflow run id (labels: curate run)
        run.log_artifact(root / "data/interim/annotations.parquet", "curated")
        run.log_dvc_hashes(
            [
                "data/interim/annotations.parquet",
                "data/interim/items.parquet",
                "data/split/gold_train.parquet",
            ],
            ["data/curated/labels_raw.parquet"],
        )
    top = analysis.root_causes["finding"].iloc[0] if len(analysis.root_causes) else "none"
    print(
        f"aggregate: {len(labels)} items labelled by {params.method}; consensus digest {labels_digest}; "
        f"spammers flagged: {len(analysis.spammers)}; top root cause: {top}"
    )


if __name__ == "__main__":
    run_stage(main)
