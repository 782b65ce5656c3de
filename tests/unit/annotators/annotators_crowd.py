"""Test helper: a small synthetic crowd with known spammers and a known biased group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CLASSES = ("adult", "allowed", "misleading", "prohibited")
CATEGORIES = ("crypto", "fashion", "health", "travel")
RELIABLE = tuple(f"r{i:02d}" for i in range(1, 11))
SPAMMERS = ("spam1", "spam2")
BIASED = ("bias1", "bias2", "bias3")


@dataclass(frozen=True)
class Crowd:
    annotations: pd.DataFrame
    items: pd.DataFrame
    gold: pd.DataFrame
    truth: pd.Series


def make_crowd(seed: int = 0, n_batches: int = 10, items_per_batch: int = 80, per_item: int = 5) -> Crowd:
    """Reliable annotators (90% accurate), 2 random spammers (fast clickers), and 3 annotators who, from
    batch week-05 on (guideline v2), label category=crypto items that are truly 'misleading' as
    'prohibited' (90% of the time)."""
    rng = np.random.default_rng(seed)
    annotators = RELIABLE + SPAMMERS + BIASED
    k = len(CLASSES)
    item_rows, ann_rows = [], []
    start = pd.Timestamp("2024-01-01", tz="UTC")
    for b in range(1, n_batches + 1):
        batch = f"week-{b:02d}"
        guideline = "v1" if b < 5 else "v2"
        for j in range(items_per_batch):
            item_id = f"{batch}-i{j:03d}"
            cat = CATEGORIES[rng.integers(len(CATEGORIES))]
            p = [0.0, 0.3, 0.5, 0.2] if cat == "crypto" else [0.15, 0.6, 0.15, 0.1]
            true = CLASSES[rng.choice(k, p=p)]
            item_rows.append((item_id, cat, float(rng.normal()), true))
            for a in rng.choice(len(annotators), size=per_item, replace=False):
                name = annotators[a]
                if name in SPAMMERS:
                    label = CLASSES[rng.integers(k)]
                    dur = float(rng.lognormal(np.log(2.5), 0.3))
                else:
                    dur = float(rng.lognormal(np.log(12.0), 0.4))
                    if (
                        name in BIASED
                        and cat == "crypto"
                        and b >= 5
                        and true == "misleading"
                        and rng.random() < 0.9
                    ):
                        label = "prohibited"
                    elif rng.random() < 0.9:
                        label = true
                    else:
                        label = rng.choice([c for c in CLASSES if c != true])
                created = (
                    start + pd.Timedelta(days=7 * (b - 1)) + pd.Timedelta(minutes=int(rng.integers(0, 5000)))
                )
                ann_rows.append((item_id, name, str(label), created, dur, batch, guideline))
    annotations = pd.DataFrame(
        ann_rows,
        columns=[
            "item_id",
            "annotator_id",
            "label",
            "created_at",
            "duration_s",
            "batch_id",
            "guideline_version",
        ],
    )
    items = pd.DataFrame([r[:3] for r in item_rows], columns=["item_id", "category", "price"])
    truth = pd.Series([r[3] for r in item_rows], index=pd.Index([r[0] for r in item_rows], name="item_id"))
    gold_idx = rng.choice(len(truth), size=len(truth) // 10, replace=False)
    gold = pd.DataFrame({"item_id": truth.index[gold_idx], "label": truth.to_numpy()[gold_idx]})
    return Crowd(annotations, items, gold, truth)
