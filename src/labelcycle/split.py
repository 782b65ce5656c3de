"""The frozen gold evaluation split.

Each gold item is assigned to ``eval`` or ``gold_train`` by a salted hash of its id alone, so the split
is deterministic and stable: new raw batches that do not touch gold leave it unchanged, and a new gold
item never moves an old one. ``gold_train`` is free for training the error model; ``eval`` only ever
judges models.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from labelcycle import schema


def hash_unit(ids: pd.Series, salt: str) -> np.ndarray:
    """A number in [0, 1) per id, uniform and stable across runs and machines."""
    return np.array(
        [int.from_bytes(hashlib.sha256(f"{salt}\x1f{i}".encode()).digest()[:8], "big") / 2**64 for i in ids],
        dtype=np.float64,
    )


def split_gold(gold: pd.DataFrame, eval_fraction: float, salt: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(eval, gold_train)``: disjoint, together exactly ``gold``, both sorted by item_id."""
    gold = gold.sort_values(schema.ITEM_ID, kind="stable").reset_index(drop=True)
    in_eval = hash_unit(gold[schema.ITEM_ID].astype(str), salt) < eval_fraction
    return gold[in_eval].reset_index(drop=True), gold[~in_eval].reset_index(drop=True)


#: what to do when the eval split is empty: said by split, train_quality, evaluate and ``promote``
GOLD_TODO = (
    "add gold labels with `labelcycle ingest --gold FILE` (or pick items with `labelcycle gold sample "
    "--budget N`, adjudicate the sheet and bring it in with `labelcycle review import FILE --as-gold`), "
    "then run `dvc repro`"
)


def no_evaluation(gold_items: int | None = None) -> str:
    """Why there is no evaluation (an empty eval split) and what to do, in one line."""
    if gold_items:
        why = (
            f"none of the {gold_items} gold item(s) fell in the eval split (raise split.eval_fraction "
            "or add gold)"
        )
    else:
        why = "there are no gold labels yet, so the eval split is empty"
    return f"no evaluation: {why}; no model is judged or offered for promotion; {GOLD_TODO}"
