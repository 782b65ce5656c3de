"""The quality model's training rows: the curated sample minus every gold eval item."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.curation import N_ANNOTATIONS
from labelcycle.quality.data import training_rows
from labelcycle.quality.model import prepare_training

CLASSES = ["ok", "misleading", "prohibited"]


def _sample(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            schema.ITEM_ID: [f"i{i:03d}" for i in range(n)],
            "x": rng.normal(size=n),
            schema.LABEL: rng.choice(CLASSES, size=n),
            schema.CONFIDENCE: rng.uniform(0.4, 1.0, size=n),
            N_ANNOTATIONS: rng.integers(1, 5, size=n),
        }
    )


# eval items: 60 of the sample's and 5 the sample never held
EVAL = pd.DataFrame({schema.ITEM_ID: [f"i{i:03d}" for i in range(0, 180, 3)] + [f"new{i}" for i in range(5)]})


def test_training_rows_drop_every_eval_item_and_count_them():
    sample = _sample()
    rows = training_rows(sample, EVAL)
    kept = set(rows.rows[schema.ITEM_ID])
    assert not kept & set(EVAL[schema.ITEM_ID])
    assert kept == set(sample[schema.ITEM_ID]) - set(EVAL[schema.ITEM_ID])
    assert rows.n_excluded == 60


def test_the_early_stopping_split_holds_no_eval_item():
    rows = training_rows(_sample(), EVAL)
    data = prepare_training(rows.items, rows.labels, CLASSES, valid_fraction=0.2, seed=0)
    valid_items = set(rows.items[schema.ITEM_ID][data.valid])
    assert abs(len(valid_items) - 0.2 * len(rows.rows)) <= len(CLASSES)  # stratified: rounded per class
    assert valid_items <= set(rows.rows[schema.ITEM_ID])
    assert not valid_items & set(EVAL[schema.ITEM_ID])


def test_label_columns_are_never_features():
    rows = training_rows(_sample(), EVAL)
    assert list(rows.items.columns) == [schema.ITEM_ID, "x"]
    assert rows.labels.tolist() == rows.rows[schema.LABEL].tolist()
