"""Stage split: the frozen gold eval split (hash-assigned) and the gold left for the error model."""

from __future__ import annotations

from labelcycle.params import SplitParams
from labelcycle.pipeline import project_root, read_parquet, run_stage, stage_params, write_json, write_parquet
from labelcycle.split import split_gold
from labelcycle.tracking.runs import stage_run
from labelcycle.versioning.digest import table_digest

STAGE = "split"


def main() -> None:
    root = project_root()
    params = stage_params(SplitParams, STAGE, root)
    gold = read_parquet(root / "data/interim/gold.parquet")
    eval_split, gold_train = split_gold(gold, params.eval_fraction, params.salt)
    write_parquet(eval_split, root / "data/split/eval.parquet")
    write_parquet(gold_train, root / "data/split/gold_train.parquet")
    eval_digest = table_digest(eval_split)
    summary = {
        "eval_digest": eval_digest,
        "eval_items": len(eval_split),
        "gold_train_items": len(gold_train),
        "eval_label_counts": eval_split["label"].value_counts().to_dict(),
    }
    write_json(summary, root / "reports" / "split.json")
    with stage_run(root, STAGE, {"split": vars(params)}) as run:
        run.log_dataset(eval_split, "eval", "evaluation", eval_digest, "data/split/eval.parquet")
        run.log_dataset(
            gold_train, "gold_train", "training", table_digest(gold_train), "data/split/gold_train.parquet"
        )
        run.set_tags({"eval_digest": eval_digest})
        run.log_metrics({"eval_items": len(eval_split), "gold_train_items": len(gold_train)})
        run.log_dvc_hashes(
            ["data/interim/gold.parquet"], ["data/split/eval.parquet", "data/split/gold_train.parquet"]
        )
    if eval_split.empty:
        print("split: warning: no gold items, so there is no eval split; metrics will be empty")
    print(
        f"split: {len(eval_split)} eval items (digest {eval_digest}), {len(gold_train)} gold items for training"
    )


if __name__ == "__main__":
    run_stage(main)
