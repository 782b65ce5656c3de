"""Stage split: the frozen gold eval split (hash-assigned) and the gold left for the error model."""

from __future__ import annotations

import dataclasses

from labelcycle import catalog
from labelcycle.gold import WARNING_KEY, split_warning
from labelcycle.pipeline import stage_context, write_json, write_parquet
from labelcycle.split import no_evaluation, split_gold
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "split"


def main() -> None:
    ctx = stage_context()
    params = ctx.params
    p = params.split
    gold = ctx.read(catalog.GOLD)
    eval_split, gold_train = split_gold(gold, p.eval_fraction, p.salt)
    write_parquet(eval_split, ctx.path(catalog.EVAL))
    write_parquet(gold_train, ctx.path(catalog.GOLD_TRAIN))
    eval_digest = table_digest(eval_split)
    summary = {
        "eval_digest": eval_digest,
        "eval_items": len(eval_split),
        "gold_train_items": len(gold_train),
        "eval_label_counts": eval_split["label"].value_counts().to_dict(),
        "gold_items": len(gold),
    }
    gold_warning = split_warning(eval_split)
    if gold_warning:
        summary[WARNING_KEY] = gold_warning
        print(f"split: warning: {gold_warning}")
    if eval_split.empty:
        summary["no_evaluation"] = no_evaluation(len(gold))
    write_json(summary, ctx.path(catalog.SPLIT_REPORT))
    with stage_run(ctx.root, STAGE, {"split": dataclasses.asdict(p)}) as run:
        run.log_dataset(eval_split, "eval", "evaluation", eval_digest, catalog.EVAL)
        run.log_dataset(gold_train, "gold_train", "training", table_digest(gold_train), catalog.GOLD_TRAIN)
        run.set_tags({"eval_digest": eval_digest})
        run.log_metrics({"eval_items": len(eval_split), "gold_train_items": len(gold_train)})
        run.log_dvc_hashes([catalog.GOLD], [catalog.EVAL, catalog.GOLD_TRAIN])
    if eval_split.empty:
        print(f"split: {summary['no_evaluation']}")
    print(
        f"split: {len(eval_split)} eval items (digest {eval_digest}), {len(gold_train)} gold items for training"
    )
