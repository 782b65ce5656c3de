"""Build the curated data set: aggregated labels joined with item features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation.base import BaseAggregator

N_ANNOTATIONS = "n_annotations"
VOTE_SHARE = "vote_share"


def curated_labels(annotations: pd.DataFrame, aggregator: BaseAggregator) -> pd.DataFrame:
    """``item_id, label, confidence, proba_<class>..., n_annotations, vote_share`` per item."""
    labels = aggregator.result_frame()
    counts = annotations.groupby(schema.ITEM_ID).size()
    agree = (
        annotations.merge(labels[[schema.ITEM_ID, schema.LABEL]], on=schema.ITEM_ID, suffixes=("", "_agg"))
        .assign(_agree=lambda d: (d[schema.LABEL] == d[f"{schema.LABEL}_agg"]).astype(np.float64))
        .groupby(schema.ITEM_ID)["_agree"]
        .mean()
    )
    labels[N_ANNOTATIONS] = labels[schema.ITEM_ID].map(counts).astype("int64").to_numpy()
    labels[VOTE_SHARE] = labels[schema.ITEM_ID].map(agree).astype("float64").to_numpy()
    return labels


def curated_dataset(labels: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Items with features that have a curated label (inner join on item_id), sorted by item_id."""
    cols = [schema.ITEM_ID, schema.LABEL, schema.CONFIDENCE, N_ANNOTATIONS]
    if items.shape[1] <= 1:
        return labels[cols].sort_values(schema.ITEM_ID).reset_index(drop=True)
    return (
        items.merge(labels[cols], on=schema.ITEM_ID, how="inner", validate="one_to_one")
        .sort_values(schema.ITEM_ID)
        .reset_index(drop=True)
    )


def agreement_summary(labels: pd.DataFrame) -> dict[str, float]:
    """Simple agreement figures of the curated labels."""
    multi = labels[labels[N_ANNOTATIONS] > 1]
    return {
        "items": float(len(labels)),
        "items_multi_annotated": float(len(multi)),
        "mean_confidence": float(labels[schema.CONFIDENCE].mean()) if len(labels) else float("nan"),
        "mean_vote_share": float(multi[VOTE_SHARE].mean()) if len(multi) else float("nan"),
        "unanimous_share": float((multi[VOTE_SHARE] == 1.0).mean()) if len(multi) else float("nan"),
    }
