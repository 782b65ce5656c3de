"""Stage ingest: validate and normalise every raw batch; quarantine bad rows with reasons.

Judgements re-sent unchanged in a later batch are merged; further judgements of an (item, annotator)
are repeats: the latest one feeds the consensus (``validation.CONSENSUS_RULE``), the others go to
``data/interim/repeats.parquet`` for the annotators' self-agreement. Gold derived from the crowd
(declared at ingest, or detected) is marked circular in the gold table and the report (:mod:`labelcycle.gold`).

It also settles and prints the item columns' roles (params ``features``, else inferred): a column that
holds numbers in one batch and text in another is refused unless params declare its role.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass

import pandas as pd

from labelcycle import catalog, ingest_parts, ingest_spill, schema
from labelcycle.aggregation.streaming import write_codes
from labelcycle.errors import ConfigError, ValidationError
from labelcycle.features.roles import check_batch_kinds, infer_roles
from labelcycle.gold import FROM_CROWD, circularity, mark_circular
from labelcycle.pipeline import register_output, stage_context, write_json, write_parquet
from labelcycle.tracking.runs import stage_run
from labelcycle.validation import CONSENSUS_RULE, TableCounts, validate, validate_side_tables
from labelcycle.versioning import raw
from labelcycle.versioning.digest import table_digest

STAGE = "ingest"


@dataclass
class Validated:
    """The ingest's clean tables, whichever way the annotations were validated."""

    counts: dict[str, TableCounts]
    quarantine: pd.DataFrame
    repeats: pd.DataFrame
    items: pd.DataFrame | None
    gold: pd.DataFrame | None
    annotations: pd.DataFrame  # all of them, or (out of core) their first rows
    n_annotations: int
    digest: str  # of the annotations without raw_batch
    judged_gold: pd.DataFrame  # the annotations of the gold items
    parts: int = 0  # out of core: the parts the annotations were validated in

    @property
    def reconciles(self) -> bool:
        return all(c.reconciles for c in self.counts.values())


def main() -> None:
    ctx = stage_context()
    root = ctx.root
    params = ctx.params
    if not params.classes:
        raise ConfigError(
            f"{catalog.PARAMS}: ingest.labels is empty; run `labelcycle ingest --annotations FILE` first (it "
            "discovers the labels and writes them there), or list them, e.g. `labels: [ok, bad]`"
        )
    batches = raw.list_batches(root)
    if not batches:
        raise ValidationError(
            f"{catalog.RAW} holds no batches; add one with `labelcycle ingest --annotations FILE` "
            "(or `make run`, which ingests the demo data)"
        )
    if not any(b.file("annotations") is not None for b in batches):
        raise ValidationError(
            f"no raw batch in {catalog.RAW} has an annotations file (only gold or items so far); ingest one "
            "with `labelcycle ingest --annotations FILE`"
        )
    out_of_core = ingest_spill.annotation_rows(batches) > params.ingest.part_rows
    tables = raw.read_all(root, ("items", "gold") if out_of_core else raw.ROLES)
    if tables["items"] is not None:
        check_batch_kinds(tables["items"], schema.RAW_BATCH, params.features)
    declared = _declared_from_crowd(batches, tables["gold"])
    if out_of_core:
        result = _validate_out_of_core(
            ctx, batches, tables, params.classes, params.ingest.part_rows, params.ingest.workers
        )
    else:
        result = _validate_in_memory(ctx, tables, params.classes, [b.digest for b in batches])
    if not result.n_annotations:
        raise ValidationError(
            f"every annotation was quarantined ({result.counts['annotations'].reasons}); see "
            f"{catalog.QUARANTINE}, then check ingest.labels in {catalog.PARAMS} and the column options the "
            "batches were ingested with (--item-col/--annotator-col/--label-col)"
        )
    items = result.items if result.items is not None else pd.DataFrame({schema.ITEM_ID: pd.Series(dtype=str)})
    gold = (
        result.gold
        if result.gold is not None
        else pd.DataFrame({schema.ITEM_ID: pd.Series(dtype=str), schema.LABEL: pd.Series(dtype=str)})
    )
    found = circularity(
        gold,
        result.judged_gold,
        declared,
        min_agreement=params.ingest.circular_min_agreement,
        min_items=params.ingest.circular_min_items,
    )
    gold = mark_circular(gold, found, declared)
    repeats = result.repeats
    write_parquet(repeats, ctx.path(catalog.REPEATS))
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
        "consensus_rule": CONSENSUS_RULE,
        "gold": found.to_dict(),
        "out_of_core_parts": result.parts,
    }
    write_json(report, ctx.path(catalog.INGEST_REPORT))
    digests = {"annotations": result.digest, "items": table_digest(items), "gold": table_digest(gold)}
    logged = {
        "ingest": {
            "labels": params.classes,
            "circular_min_agreement": params.ingest.circular_min_agreement,
            "circular_min_items": params.ingest.circular_min_items,
            "part_rows": params.ingest.part_rows,
            "workers": params.ingest.workers,
        },
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
            rows=result.n_annotations,
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
                    f"{name}_repeats": c.repeats,
                    f"{name}_quarantined": c.quarantined,
                }
            )
        run.log_metrics(metrics)
        run.set_tags(
            {
                "raw_batches": ",".join(b.digest for b in batches),
                "validation_passed": result.reconciles,
                "gold_circular": found.circular,
            }
        )
        run.log_dict(report, "ingest_report.json")
        if len(result.quarantine):
            run.log_table(result.quarantine, "quarantine.parquet")
        run.log_dvc_hashes([catalog.RAW], [catalog.ANNOTATIONS, catalog.ITEMS, catalog.GOLD])
    if result.parts:
        print(
            f"ingest: annotations validated out of core, in {result.parts} parts by item (ingest.part_rows)"
        )
    for name, c in result.counts.items():
        print(
            f"ingest: {name}: read {c.read} = kept {c.kept} + merged {c.merged}"
            + (f" + repeats {c.repeats}" if name == "annotations" else "")
            + f" + quarantined {c.quarantined}"
            + (f" {c.reasons}" if c.reasons else "")
        )
    if len(repeats):
        print(f"ingest: {len(repeats)} repeated judgements set aside for self-agreement; {CONSENSUS_RULE}")
    if found.circular:
        print(f"ingest: warning: {found.warning()}")
    print(f"ingest: {roles.describe()}")


def _validate_in_memory(ctx, tables: dict, labels: list[str], batches: list[str]) -> Validated:
    """Every table validated in memory; writes the annotations and their coded parts."""
    # hand the raw tables over (no reference kept here), so they are freed as soon as validation is done
    result = validate(tables.pop("annotations"), labels, tables.pop("items"), tables.pop("gold"))
    ann = result.annotations
    digest = table_digest(ann.drop(columns=[schema.RAW_BATCH], errors="ignore")) if len(ann) else ""
    if len(ann):
        write_parquet(ann, ctx.path(catalog.ANNOTATIONS))
        write_codes(ann, labels, register_output(ctx.path(catalog.ANNOTATION_CODES)), digest, batches)
    return Validated(
        counts=result.counts,
        quarantine=result.quarantine,
        repeats=result.repeats if result.repeats is not None else ann.head(0),
        items=result.items,
        gold=result.gold,
        annotations=ann,
        n_annotations=len(ann),
        digest=digest,
        judged_gold=ann,
    )


def _validate_out_of_core(
    ctx, batches: list[raw.Batch], tables: dict, labels: list[str], part_rows: int, workers: int
) -> Validated:
    """Items and gold in memory, the annotations part by part (:mod:`labelcycle.ingest_parts`)."""
    items, gold, counts, q = validate_side_tables(labels, tables.pop("items"), tables.pop("gold"))
    work = catalog.state_dir(ctx.root) / "ingest-spill"
    try:
        spilled = ingest_spill.spill(ctx.root, batches, work, part_rows, workers)
        gold_ids = gold[schema.ITEM_ID] if gold is not None else pd.Series(dtype=str)
        out = ctx.path(catalog.ANNOTATIONS)
        register_output(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        done = ingest_parts.validate_parts(
            spilled,
            labels,
            items,
            gold_ids,
            out,
            register_output(ctx.path(catalog.ANNOTATION_CODES)),
            workers,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counts["annotations"] = done.counts
    q.frames += done.quarantine
    return Validated(
        counts=counts,  # items and gold first, as validate() orders them
        quarantine=q.frame(),
        repeats=done.repeats,
        items=items,
        gold=gold,
        annotations=done.head,
        n_annotations=done.rows,
        digest=done.digest,
        judged_gold=done.judged_gold,
        parts=done.parts,
    )


def _declared_from_crowd(batches: list[raw.Batch], gold: pd.DataFrame | None) -> set[str]:
    """Item ids of the gold rows from batches ingested with ``--gold-from-crowd``."""
    digests = {b.digest for b in batches if b.origin.get(FROM_CROWD)}
    if gold is None or not digests:
        return set()
    rows = gold[gold[schema.RAW_BATCH].astype(str).isin(digests)]
    return set(rows[schema.ITEM_ID].astype(str).str.strip())
