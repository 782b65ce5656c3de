"""Helpers shared by the annotator analyses: input checks, reference labels, periods, intervals."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.errors import NotFittedError, SchemaError, ValidationError

#: name of the period column when periods come from ``created_at`` weeks instead of ``batch_id``
WEEK = "week"


def check_annotations(annotations: pd.DataFrame) -> pd.DataFrame:
    """Validate the annotation table and return a copy with string ids and labels.

    Raises:
        SchemaError: a required column is missing.
        ValidationError: the table has no rows.
    """
    missing = [c for c in schema.ANNOTATIONS.required if c not in annotations.columns]
    if missing:
        raise SchemaError(
            f"annotations lack the column(s) {missing}; expected {list(schema.ANNOTATIONS.required)}"
        )
    if len(annotations) == 0:
        raise ValidationError("annotations are empty; nothing to analyse (check the input file and filters)")
    out = annotations.copy()
    for col in (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL):
        out[col] = out[col].astype(str)
    for col in (schema.BATCH_ID, schema.GUIDELINE_VERSION):
        if col in out.columns:
            out[col] = out[col].astype(object).where(out[col].notna(), None)
            out[col] = out[col].map(lambda v: None if v is None else str(v))
    return out


def check_gold(gold: pd.DataFrame | None) -> pd.Series | None:
    """Gold labels as a Series indexed by ``item_id`` (None when no gold is given).

    Raises:
        SchemaError: a required column is missing.
        ValidationError: an item has two different gold labels.
    """
    if gold is None:
        return None
    missing = [c for c in schema.GOLD.required if c not in gold.columns]
    if missing:
        raise SchemaError(f"gold lacks the column(s) {missing}; expected {list(schema.GOLD.required)}")
    g = gold[[schema.ITEM_ID, schema.LABEL]].dropna().astype(str).drop_duplicates()
    dup = g[schema.ITEM_ID][g[schema.ITEM_ID].duplicated()]
    if len(dup):
        raise ValidationError(
            f"gold has conflicting labels for item(s) {sorted(dup.unique())[:5]}; keep one label per item_id"
        )
    return pd.Series(g[schema.LABEL].to_numpy(), index=pd.Index(g[schema.ITEM_ID], name=schema.ITEM_ID))


def check_items(items: pd.DataFrame | None) -> pd.DataFrame | None:
    """Items table indexed by ``item_id`` (None when not given).

    Raises:
        SchemaError: ``item_id`` is missing.
    """
    if items is None:
        return None
    if schema.ITEM_ID not in items.columns:
        raise SchemaError(f"items lack the column {schema.ITEM_ID!r}; expected item_id plus feature columns")
    out = items.copy()
    out[schema.ITEM_ID] = out[schema.ITEM_ID].astype(str)
    return out.drop_duplicates(schema.ITEM_ID).set_index(schema.ITEM_ID)


def consensus_of(aggregator: object) -> pd.Series:
    """The fitted aggregator's labels as a string Series indexed by string ``item_id``.

    Raises:
        NotFittedError: the aggregator has no ``labels_``.
    """
    labels = getattr(aggregator, "labels_", None)
    if labels is None:
        raise NotFittedError(
            f"{type(aggregator).__name__} is not fitted; call fit(annotations) before analysing annotators"
        )
    out = pd.Series(labels.astype(str).to_numpy(), index=labels.index.astype(str), name=schema.LABEL)
    out.index.name = schema.ITEM_ID
    return out


def classes_of(aggregator: object, annotations: pd.DataFrame, *extra: pd.Series | None) -> tuple[str, ...]:
    """The label set: the aggregator's classes plus any label seen in the data, aggregator order first."""
    base = [str(c) for c in getattr(aggregator, "classes_", ())]
    seen = set(base)
    more: set[str] = set(annotations[schema.LABEL].astype(str))
    for s in extra:
        if s is not None:
            more |= set(s.astype(str))
    return tuple(base + sorted(more - seen))


def natural_key(value: object) -> tuple:
    """Sort key that orders ``b2`` before ``b10`` and ``week-05`` before ``week-12``."""
    parts = re.split(r"(\d+)", str(value))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts if p != "")


def periods(annotations: pd.DataFrame) -> tuple[str | None, pd.Series | None, list[str]]:
    """The period of every row and the periods in time order.

    ``batch_id`` when present (ordered by the median ``created_at`` of each batch when timestamps exist,
    otherwise naturally: ``b2`` < ``b10``); else the ISO week of ``created_at`` (``2024-W05``).

    Returns:
        (column name, period per row, ordered periods); (None, None, []) when neither column exists.
    """
    if schema.BATCH_ID in annotations.columns and annotations[schema.BATCH_ID].notna().any():
        per = annotations[schema.BATCH_ID]
        names = [p for p in per.dropna().unique()]
        if schema.CREATED_AT in annotations.columns:
            ts = pd.to_datetime(annotations[schema.CREATED_AT], errors="coerce", utc=True)
            med = ts.groupby(per).median()
            if med.notna().all():
                order = sorted(names, key=lambda p: (med[p], natural_key(p)))
                return schema.BATCH_ID, per, order
        return schema.BATCH_ID, per, sorted(names, key=natural_key)
    if schema.CREATED_AT in annotations.columns:
        ts = pd.to_datetime(annotations[schema.CREATED_AT], errors="coerce", utc=True)
        if ts.notna().any():
            iso = ts.dt.isocalendar()
            week = (
                iso["year"].astype("Int64").astype(str)
                + "-W"
                + iso["week"].astype("Int64").astype(str).str.zfill(2)
            )
            week = week.where(ts.notna(), None)
            return WEEK, week, sorted(week.dropna().unique(), key=natural_key)
    return None, None, []


def wilson(k: np.ndarray | float, n: np.ndarray | float, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``k / n`` (NaN where ``n == 0``)."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lo, hi


def reference_labels(
    consensus: pd.Series, gold: pd.Series | None, use_gold: bool = True
) -> tuple[pd.Series, pd.Series]:
    """Reference label per item: gold where available (and ``use_gold``), else the consensus.

    Returns:
        (label per item, source per item: ``"gold"`` or ``"consensus"``).
    """
    ref = consensus.copy()
    src = pd.Series("consensus", index=ref.index, dtype=object)
    if gold is not None and use_gold:
        ref = pd.concat([gold, ref[~ref.index.isin(gold.index)]])
        src = pd.Series("consensus", index=ref.index, dtype=object)
        src[ref.index.isin(gold.index)] = "gold"
    return ref, src
