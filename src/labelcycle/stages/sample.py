"""Stage sample: the training-data sample (params sample.fraction, strategy, seed) read by tune and train_quality."""

from __future__ import annotations

import dataclasses

from labelcycle import catalog, schema
from labelcycle.pipeline import stage_context, write_json, write_parquet
from labelcycle.sampling import sample_training
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "sample"


def main() -> None:
    ctx = stage_context()
    p = ctx.params.sample
    dataset = ctx.read(catalog.DATASET)
    sample = sample_training(dataset, p.fraction, p.strategy, p.seed)
    write_parquet(sample, ctx.path(catalog.TRAIN_SAMPLE))
    digest = table_digest(sample)
    summary = {
        "items_in": len(dataset),
        "items_out": len(sample),
        "sample_digest": digest,
        "curated_digest": table_digest(dataset),
        "label_counts": sample[schema.LABEL].value_counts().to_dict() if len(sample) else {},
    }
    write_json(summary, ctx.path(catalog.SAMPLE_REPORT))
    with stage_run(ctx.root, STAGE, {"sample": dataclasses.asdict(p)}) as run:
        run.log_dataset(sample, "train_sample", "training", digest, catalog.TRAIN_SAMPLE)
        run.set_tags({"sample_digest": digest, "curated_digest": summary["curated_digest"]})
        run.log_metrics({"items_in": len(dataset), "items_out": len(sample)})
        run.log_dvc_hashes([catalog.DATASET], [catalog.TRAIN_SAMPLE])
    print(
        f"sample: {len(sample)} of {len(dataset)} curated items ({p.strategy}, fraction {p.fraction}); "
        f"digest {digest}"
    )
