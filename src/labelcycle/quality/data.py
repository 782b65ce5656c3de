"""The quality model's training rows: one definition for tune, train_quality and tune-worker."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from labelcycle import schema
from labelcycle.curation import N_ANNOTATIONS
from labelcycle.versioning.digest import table_digest

#: columns of the curated sample that describe the label, not the item: never features
NOT_FEATURES = frozenset({schema.LABEL, schema.CONFIDENCE, N_ANNOTATIONS})


@dataclass(frozen=True)
class TrainingRows:
    """The curated training sample minus every gold eval item.

    Attributes:
        rows: the rows (item columns, ``label``, ``confidence``, ``n_annotations``), index 0..n-1.
        n_excluded: sample rows dropped because their item is in the eval split.
    """

    rows: pd.DataFrame
    n_excluded: int

    @property
    def items(self) -> pd.DataFrame:
        """``item_id`` and the feature columns."""
        return self.rows[[c for c in self.rows.columns if c not in NOT_FEATURES]]

    @property
    def labels(self) -> pd.Series:
        return self.rows[schema.LABEL]

    @property
    def confidence(self) -> pd.Series:
        return self.rows[schema.CONFIDENCE]

    def digest(self) -> str:
        """Full-content digest of the rows (names the tune stage's study for this data)."""
        return table_digest(self.rows)


def training_rows(sample: pd.DataFrame, eval_split: pd.DataFrame) -> TrainingRows:
    """The rows the quality model may train on: ``sample`` without the items of ``eval_split``."""
    keep = ~sample[schema.ITEM_ID].isin(eval_split[schema.ITEM_ID])
    return TrainingRows(sample[keep].reset_index(drop=True), int((~keep).sum()))
