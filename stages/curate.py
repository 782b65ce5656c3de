"""Stage curate: apply the error scores (params curate.action) -> the curated data set train_quality reads."""

from __future__ import annotations

from labelcycle.curation import agreement_summary, curated_dataset
from labelcycle.detection.curate import curate_labels
from labelcycle.params import AggregateParams, CurateParams, IngestParams
from labelcycle.pipeline import project_root, read_parquet, run_stage, stage_params, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "curate"


def main() -> None:
    root = project_root()
    p = stage_params(CurateParams, STAGE, root)
    method = stage_params(AggregateParams, "aggregate", root).method
    classes = stage_params(IngestParams, "ingest", root).labels
    annotations = read_parquet(root / "data/interim/annotations.parquet")
    items = read_parquet(root / "data/interim/items.parquet")
    labels_raw = read_parquet(root / "data/curated/labels_raw.parquet")
    scores = read_parquet(root / "data/curated/error_scores.parquet")
    result = curate_labels(annotations, labels_raw, scores, classes, p.action, p.threshold, method)
    dataset = curated_dataset(result.labels, items)
    write_parquet(result.labels, root / "data/curated/labels.parquet")
    write_parquet(dataset, root / "data/curated/dataset.parquet")
    curated_digest = table_digest(dataset)
    summary = {**result.summary, "curated_digest": curated_digest, **agreement_summary(result.labels)}
    write_json(summary, root / "reports/curate.json")
    with stage_run(root, STAGE, {STAGE: vars(p), "aggregate": {"method": method}, "ingest": {"labels": classes}}) as run:
        run.log_dataset(dataset, "curated", "training", curated_digest, "data/curated/dataset.parquet")
        run.set_tags({"curated_digest": curated_digest, "curate.action": p.action})
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
        # what `labelcycle compare` diffs when a version is named by its MLflow run id
        run.log_artifact(root / "data/curated/labels.parquet", "curated")
        run.log_dvc_hashes(["data/curated/labels_raw.parquet", "data/curated/error_scores.parquet"],
                           ["data/curated/labels.parquet", "data/curated/dataset.parquet"])
    print(f"curate: {p.action} at {p.threshold}: {int(result.summary['items_before'])} -> "
          f"{int(result.summary['items_after'])} items; curated digest {curated_digest}")


if __name__ == "__main__":
    run_stage(main)
