"""Stage ingest: validate and normalise every raw batch; quarantine bad rows with reasons.

It also settles and prints the item columns' roles (params ``features``, else inferred): a column that
holds numbers in one batch and text in another is refused unless params declare its role.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.aggregation.streaming import write_codes
from labelcycle.errors import ValidationError
from labelcycle.features.roles import check_batch_kinds, infer_roles
from labelcycle.pipeline import register_output, stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.validation import validate
from labelcycle.versioning import raw
from labelcycle.versioning.digest import table_digest

STAGE = "ingest"


def main() -> None:
    ctx = stage_context()
    root = ctx.root
    params = ctx.params
    batches = raw.list_batches(root)
    if not batches:
        raise ValidationError(
            f"{catalog.RAW} holds no batches; add one with `labelcycle ingest --annotations FILE` "
            "(or `make run`, which ingests the demo data)"
        )
    tables = raw.read_all(root)
    if tables["annotations"] is None:
        raise ValidationError("no raw batch has an annotations file; ingest one with --annotations")
    if tables["items"] is not None:
        check_batch_kinds(tables["items"], schema.RAW_BATCH, params.features)
    # hand the raw tables over (no reference kept here), so they are freed as soon as validation is done
    result = validate(tables.pop("annotations"), params.classes, tables.pop("items"), tables.pop("gold"))
    if result.annotations.empty:
        raise ValidationError(
            f"every annotation was quarantined ({result.counts['annotations'].reasons}); "
            f"see {catalog.QUARANTINE}"
        )
    items = result.items if result.items is not None else pd.DataFrame({schema.ITEM_ID: pd.Series(dtype=str)})
    gold = (
        result.gold
        if result.gold is not None
        else pd.DataFrame({schema.ITEM_ID: pd.Series(dtype=str), schema.LABEL: pd.Series(dtype=str)})
    )
    write_parquet(result.annotations, ctx.path(catalog.ANNOTATIONS))
    write_parquet(items, ctx.path(catalog.ITEMS))
    write_parquet(gold, ctx.path(catalog.GOLD))
    write_parquet(result.quarantine, ctx.path(catalog.QUARANTINE))
    roles = infer_roles(items, params.features)
    report = {
        "feature_roles": roles.to_dict(),
        "batches": [b.digest for b in batches],
        "tables": {name: c.to_dict() for name, c in result.counts.items()},
        "reconciles": result.reconciles,
        "validation_passed": result.reconciles,
    }
    write_json(report, ctx.path(catalog.INGEST_REPORT))

    digests = {
        "annotations": table_digest(result.annotations.drop(columns=[schema.RAW_BATCH], errors="ignore")),
        "items": table_digest(items),
        "gold": table_digest(gold),
    }
    write_codes(
        result.annotations,
        params.classes,
        register_output(ctx.path(catalog.ANNOTATION_CODES)),
        digests["annotations"],
    )
    logged = {
        "ingest": {"labels": params.classes},
        "raw_batches": len(batches),
        "features": dataclasses.asdict(params.features),
    }
    with stage_run(root, STAGE, logged) as run:
        run.log_dataset(
            result.annotations,
            "raw_annotations",
            "raw",
            digests["annotations"],
            ctx.path(catalog.ANNOTATIONS),
        )
        run.log_dataset(items, "items", "raw", digests["items"], ctx.path(catalog.ITEMS))
        run.log_dataset(gold, "gold", "raw", digests["gold"], ctx.path(catalog.GOLD))
        metrics = {}
        for name, c in result.counts.items():
            metrics.update(
                {
                    f"{name}_read": c.read,
                    f"{name}_kept": c.kept,
                    f"{name}_merged": c.merged,
                    f"{name}_quarantined": c.quarantined,
                }
            )
        run.log_metrics(metrics)
        run.set_tags(
            {"raw_batches": ",".join(b.digest for b in batches), "validation_passed": result.reconciles}
        )
        run.log_dict(report, "ingest_report.json")
        if len(result.quarantine):
            run.log_table(result.quarantine, "quarantine.parquet")
        run.log_dvc_hashes([catalog.RAW], [catalog.ANNOTATIONS, catalog.ITEMS, catalog.GOLD])
    for name, c in result.counts.items():
        print(
            f"ingest: {name}: read {c.read} = kept {c.kept} + merged {c.merged} + quarantined {c.quarantined}"
            + (f" {c.reasons}" if c.reasons else "")
        )
    print(f"ingest: {roles.describe()}")
