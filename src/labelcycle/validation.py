"""Validate and normalise annotation, item and gold tables; quarantine bad rows with a reason each.

Counts always reconcile: for every table, rows read = kept + merged + repeats + quarantined. ``merged``
counts exact copies (an item row delivered twice; an annotation row re-sent unchanged in a later batch);
``repeats`` counts the further judgements of an (item, annotator) pair (:data:`CONSENSUS_RULE` says which
one the consensus uses; the others are kept in :attr:`ValidationResult.repeats` for self-agreement).
Nothing is dropped without a row in the quarantine table.

The quarantine table has one row per rejected input row: ``table, raw_batch, source_file, source_row,
reason, detail, record`` where ``record`` is the original row as JSON.

A cell is missing only when it is empty (or spaces only) or a real null: ``NA``, ``none``, ``null``,
``N/A`` and ``nan`` are values like any other (a region ``NA``, a label ``none``). A delivery that uses
such words for "no value" declares them when it is read (``--na-values``, see :mod:`labelcycle.readers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.cells import TEXT, clean_str, is_empty, isin, numbers, parse_timestamps
from labelcycle.errors import ValidationError
from labelcycle.readers import SOURCE_ROW

SOURCE_FILE = "_source_file"
#: which judgement of an (item, annotator) pair judged more than once the consensus uses
CONSENSUS_RULE = (
    "one judgement per (item, annotator) feeds the consensus: the latest (by created_at where given, "
    "else the last by batch order then row); the earlier ones are repeats, kept for self-agreement"
)
QUARANTINE_COLUMNS = ["table", schema.RAW_BATCH, "source_file", "source_row", "reason", "detail", "record"]


@dataclass
class TableCounts:
    """How many rows of one table were read, kept and quarantined (by reason)."""

    read: int = 0
    kept: int = 0
    merged: int = 0
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    repeats: int = 0

    @property
    def reconciles(self) -> bool:
        return self.read == self.kept + self.merged + self.repeats + self.quarantined

    def __add__(self, other: TableCounts) -> TableCounts:
        """The counts of two disjoint sets of rows of the same table (parts of an out-of-core ingest)."""
        reasons = dict(self.reasons)
        for reason, n in other.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        return TableCounts(
            read=self.read + other.read,
            kept=self.kept + other.kept,
            merged=self.merged + other.merged,
            quarantined=self.quarantined + other.quarantined,
            reasons=reasons,
            repeats=self.repeats + other.repeats,
        )

    def reasons_text(self) -> str:
        """The quarantine reasons as ``reason: count, ...``."""
        return ", ".join(f"{k}: {v}" for k, v in self.reasons.items())

    def to_dict(self) -> dict[str, object]:
        return {
            "read": self.read,
            "kept": self.kept,
            "merged": self.merged,
            "repeats": self.repeats,
            "quarantined": self.quarantined,
            "reasons": dict(sorted(self.reasons.items())),
            "reconciles": self.reconciles,
        }


@dataclass
class ValidationResult:
    """Clean tables, the quarantine, and the counts that reconcile them."""

    annotations: pd.DataFrame
    items: pd.DataFrame | None
    gold: pd.DataFrame | None
    quarantine: pd.DataFrame
    counts: dict[str, TableCounts]
    repeats: pd.DataFrame | None = None

    @property
    def reconciles(self) -> bool:
        return all(c.reconciles for c in self.counts.values())

    def require_annotations(self, source: object, fix: str) -> None:
        """Stop when no annotation row is valid.

        Args:
            source: what the rows were read from (a file name), named first in the message.
            fix: what to check besides the column mapping (e.g. ``--labels``).

        Raises:
            ValidationError: every annotation row was quarantined.
        """
        if not self.annotations.empty:
            return
        counts = self.counts["annotations"]
        raise ValidationError(
            f"{source}: none of its {counts.read} rows is valid ({counts.reasons_text()}); check {fix} "
            "and the column mapping"
        )


class _Quarantine:
    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []

    def add(self, table: str, rows: pd.DataFrame, reason: str, detail: str | pd.Series = "") -> None:
        if rows.empty:
            return
        record_cols = [c for c in rows.columns if c not in (SOURCE_ROW, SOURCE_FILE, schema.RAW_BATCH)]
        records = [json.dumps(r, default=str) for r in rows[record_cols].to_dict(orient="records")]
        self.frames.append(
            pd.DataFrame(
                {
                    "table": table,
                    schema.RAW_BATCH: rows.get(schema.RAW_BATCH, pd.Series("", index=rows.index)).astype(str),
                    "source_file": rows.get(SOURCE_FILE, pd.Series("", index=rows.index)).astype(str),
                    "source_row": rows.get(SOURCE_ROW, pd.Series(-1, index=rows.index)).astype("int64"),
                    "reason": reason,
                    "detail": detail if isinstance(detail, str) else detail.astype(str).to_numpy(),
                    "record": records,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.frames:
            out = pd.DataFrame({c: pd.Series(dtype="object") for c in QUARANTINE_COLUMNS})
            out["source_row"] = out["source_row"].astype("int64")
            return out
        return pd.concat(self.frames, ignore_index=True)


def validate(
    annotations: pd.DataFrame,
    labels: list[str] | tuple[str, ...],
    items: pd.DataFrame | None = None,
    gold: pd.DataFrame | None = None,
) -> ValidationResult:
    """Validate and normalise the three tables.

    Rows are expected in ingestion order (older batches first). An annotation row identical to one of an
    earlier raw batch is a re-send: merged (counted, not kept twice). Among several judgements of the
    same (item, annotator) the latest one is kept (by ``created_at`` where present, else the later row),
    so a re-labelled judgement replaces the old one; the others are repeats (``result.repeats``), the
    annotator's self-agreement measure (see :data:`CONSENSUS_RULE`).

    Args:
        annotations: raw annotations (contract column names; ``_source_row``/``_source_file``/
            ``raw_batch`` provenance columns where known).
        labels: the allowed label set (params ``ingest.labels``).
        items: raw items table, or None.
        gold: raw gold table, or None.

    Returns:
        The clean tables (typed), the quarantine table and reconciled counts.
    """
    labels = [str(lab) for lab in labels]
    # hold the raw annotations only through the list, so that (when the caller keeps no reference either)
    # each raw column is freed as soon as its typed replacement exists
    raw_annotations = [annotations]
    del annotations
    clean_items, clean_gold, counts, q = validate_side_tables(labels, items, gold)
    clean_ann, repeats, counts["annotations"] = _validate_annotations(
        raw_annotations.pop(), labels, clean_items, q
    )
    return ValidationResult(clean_ann, clean_items, clean_gold, q.frame(), counts, repeats)


def validate_side_tables(
    labels: list[str], items: pd.DataFrame | None, gold: pd.DataFrame | None
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, TableCounts], _Quarantine]:
    """The items and gold tables of :func:`validate`: clean tables, their counts and the quarantine so far."""
    labels = [str(lab) for lab in labels]
    q = _Quarantine()
    counts: dict[str, TableCounts] = {}
    clean_items = None
    if items is not None:
        clean_items, counts["items"] = _validate_items(items, q)
    clean_gold = None
    if gold is not None:
        clean_gold, counts["gold"] = _validate_gold(gold, labels, q)
    return clean_items, clean_gold, counts, q


def _drop(
    df: pd.DataFrame, mask: pd.Series, q: _Quarantine, table: str, reason: str, detail=""
) -> pd.DataFrame:
    """Quarantine the rows under ``mask`` and return the others (``df`` itself when none is dropped).

    ``detail`` is a string, or a function of the dropped rows giving one detail per row (so the
    per-row text is only built for the few bad rows).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return df
    rows = df[mask]
    q.add(table, rows, reason, detail(rows) if callable(detail) else detail)
    return df[~mask]


def _require_values(df: pd.DataFrame, columns: Sequence[str], q: _Quarantine, table: str) -> pd.DataFrame:
    """Quarantine the rows with an empty value in any of ``columns`` (``missing_<column>``) and strip the
    others' values of those columns to clean strings; ``df`` itself is left as it was."""
    df = df.copy(deep=False)
    for col in columns:
        df = _drop(df, is_empty(df[col]), q, table, f"missing_{col}", f"{col} is empty")
        df[col] = clean_str(df[col])
    return df


def _merge_repeats(
    df: pd.DataFrame,
    exact: pd.Series | None,
    counts: TableCounts,
    q: _Quarantine,
    table: str,
    reason: str,
    detail: Callable[[pd.DataFrame], pd.Series],
) -> pd.DataFrame:
    """Merge exact repeats of an item (``exact`` marks all but the first; None: there are none), then
    quarantine every row of an item still repeated: its rows conflict and we cannot tell which is right."""
    if exact is not None:
        counts.merged = int(exact.sum())
        df = df[~exact]
    return _drop(df, df[schema.ITEM_ID].duplicated(keep=False), q, table, reason, detail)


def _validate_annotations(
    df: pd.DataFrame, labels: list[str], items: pd.DataFrame | None, q: _Quarantine, codes: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, TableCounts]:
    """The clean annotations, the repeats set aside, the counts. ``codes``: filled with the clean rows'
    item and annotator codes, ``{column: (codes, distinct values)}`` (the out-of-core ingest reuses them)."""
    counts = TableCounts(read=len(df))
    table = "annotations"
    resent = _resent_rows(df)
    if resent is not None:
        counts.merged = int(resent.sum())
        df = df[~resent]
    df = _require_values(df, schema.ANNOTATIONS.required, q, table)
    unknown = ~df[schema.LABEL].isin(labels)
    df = _drop(
        df,
        unknown,
        q,
        table,
        "unknown_label",
        lambda rows: (
            "label " + rows[schema.LABEL].astype(str) + f" is not one of {labels} (params ingest.labels)"
        ),
    )
    if schema.DURATION_S in df.columns:
        raw = df[schema.DURATION_S]
        empty = is_empty(raw)
        num = numbers(raw.where(~empty) if empty.any() else raw)
        bad = (~empty & num.isna()) | (num < 0) | np.isinf(num.fillna(0))
        df = _drop(
            df,
            bad,
            q,
            table,
            "bad_duration_s",
            lambda rows: (
                "duration_s " + rows[schema.DURATION_S].astype(str) + " is not a non-negative number"
            ),
        )
        df[schema.DURATION_S] = num[~bad.to_numpy()].astype("float64").to_numpy()
    if schema.CREATED_AT in df.columns:
        raw = df[schema.CREATED_AT]
        empty = is_empty(raw)
        parsed = parse_timestamps(raw.where(~empty) if empty.any() else raw)
        bad = ~empty & parsed.isna()
        df = _drop(
            df,
            bad,
            q,
            table,
            "bad_created_at",
            lambda rows: (
                "created_at " + rows[schema.CREATED_AT].astype(str) + " is not a timestamp (use ISO 8601)"
            ),
        )
        df[schema.CREATED_AT] = parsed[~bad]
    for col in (schema.BATCH_ID, schema.GUIDELINE_VERSION):
        if col in df.columns:
            df[col] = clean_str(df[col]).where(~is_empty(df[col]), None)
    if items is not None:
        orphan = ~isin(df[schema.ITEM_ID], items[schema.ITEM_ID])
        df = _drop(
            df,
            orphan,
            q,
            table,
            "item_without_features",
            lambda rows: "item " + rows[schema.ITEM_ID] + " has no row in the items table",
        )
    dup = _duplicate_judgements(df, codes)
    raw = empty = num = parsed = None  # no longer needed: freed before the last copy
    keep_cols = [c for c in schema.ANNOTATIONS.known if c in df.columns]
    if schema.RAW_BATCH in df.columns:
        keep_cols.append(schema.RAW_BATCH)
    repeats = _plain_batch(df.loc[dup, keep_cols].reset_index(drop=True))
    counts.repeats = len(repeats)
    if dup.any():
        df = df[~dup]
        for col, (c, distinct) in (codes or {}).items():
            codes[col] = (c[~dup], distinct)  # every pair keeps its latest row: no value is lost
    out = _plain_batch(df[keep_cols].reset_index(drop=True))
    out, counts = _finish(out, counts, q, table)
    return out, repeats, counts


def _plain_batch(df: pd.DataFrame) -> pd.DataFrame:
    """``raw_batch`` back from a categorical to strings (as the clean tables hold it)."""
    if schema.RAW_BATCH in df.columns and isinstance(df[schema.RAW_BATCH].dtype, pd.CategoricalDtype):
        cat = df[schema.RAW_BATCH].cat  # the categories taken by code: 10x faster than astype(TEXT)
        text = cat.categories.astype(TEXT).array.take(cat.codes.to_numpy(), allow_fill=True)
        df[schema.RAW_BATCH] = pd.Series(text, index=df.index)
    return df


def _resent_rows(df: pd.DataFrame) -> np.ndarray | None:
    """Rows identical (in every contract column the file has) to a row of an earlier raw batch: the same
    judgement delivered again. None when the rows come from one batch (or from no batch at all)."""
    if schema.RAW_BATCH not in df.columns or df[schema.RAW_BATCH].nunique(dropna=False) < 2:
        return None
    cols = [c for c in schema.ANNOTATIONS.known if c in df.columns]
    key = pd.util.hash_pandas_object(df[cols].astype(str), index=False).to_numpy()
    batch_codes, _ = pd.factorize(df[schema.RAW_BATCH], sort=False)  # batches arrive oldest first
    first_batch = pd.Series(batch_codes).groupby(key, sort=False).transform("first").to_numpy()
    return batch_codes != first_batch


def _duplicate_judgements(df: pd.DataFrame, codes: dict | None = None) -> np.ndarray:
    """Rows that are not the latest judgement of their (item, annotator): by ``created_at`` where
    present (missing first), then by row position; one integer key per pair, no frame sort."""
    n = len(df)
    if n == 0:
        return np.zeros(0, dtype=bool)
    item_codes, item_uniques = pd.factorize(df[schema.ITEM_ID], use_na_sentinel=False)
    ann_codes, ann_uniques = pd.factorize(df[schema.ANNOTATOR_ID], use_na_sentinel=False)
    key = item_codes.astype(np.int64) * (int(ann_codes.max()) + 1) + ann_codes
    if codes is not None:
        codes[schema.ITEM_ID] = (item_codes, item_uniques)
        codes[schema.ANNOTATOR_ID] = (ann_codes, ann_uniques)
    del item_codes, ann_codes
    dup = np.zeros(n, dtype=bool)
    # only the rows of pairs judged more than once are ordered (few, usually): the same result as
    # ordering every row, since a pair's rows keep their relative order either way
    rows = np.flatnonzero(pd.Series(key).duplicated(keep=False).to_numpy())
    if not len(rows):
        return dup
    if schema.CREATED_AT in df.columns:
        ts = df[schema.CREATED_AT].iloc[rows]
        ticks = ts.to_numpy(dtype="datetime64[ns]").view("int64")
        ticks = np.where(ts.isna().to_numpy(), np.iinfo(np.int64).min, ticks)
        rows = rows[np.argsort(ticks, kind="stable")]
    dup[rows] = pd.Series(key[rows]).duplicated(keep="last").to_numpy()
    return dup


def _validate_items(df: pd.DataFrame, q: _Quarantine) -> tuple[pd.DataFrame, TableCounts]:
    counts = TableCounts(read=len(df))
    table = "items"
    df = _require_values(df, [schema.ITEM_ID], q, table)
    features = [c for c in df.columns if c not in (schema.ITEM_ID, SOURCE_ROW, SOURCE_FILE, schema.RAW_BATCH)]
    # identical repeats of an item (same features, e.g. re-sent in a later batch) merge into one row;
    # conflicting repeats are quarantined, all of them, because we cannot tell which is right
    exact = None
    if not df[schema.ITEM_ID].is_unique:  # unique ids: no repeats at all
        exact = df[[schema.ITEM_ID, *features]].astype(str).duplicated(keep="first")
    df = _merge_repeats(
        df,
        exact,
        counts,
        q,
        table,
        "conflicting_item_features",
        lambda rows: "item " + rows[schema.ITEM_ID] + " appears with different feature values",
    )
    for col in features:
        df[col] = coerce_feature(df[col])
    out = df[[schema.ITEM_ID, *features]].reset_index(drop=True)
    return _finish(out, counts, q, table)


def coerce_feature(values: pd.Series) -> pd.Series:
    """Numeric when every non-empty value parses as a number, else categorical (as string)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    empty = is_empty(values)
    present = ~empty
    # a text column shows itself in its first values: no need to try parsing all of them
    probe = values[present].iloc[:1000]
    if present.any() and pd.to_numeric(probe, errors="coerce").notna().all():
        num = numbers(values.where(present) if empty.any() else values)
        if num[present].notna().all():
            return num.astype("float64")
    return clean_str(values).where(present, None).astype("object")


def _validate_gold(df: pd.DataFrame, labels: list[str], q: _Quarantine) -> tuple[pd.DataFrame, TableCounts]:
    counts = TableCounts(read=len(df))
    table = "gold"
    df = _require_values(df, schema.GOLD.required, q, table)
    df = _drop(
        df,
        ~df[schema.LABEL].isin(labels),
        q,
        table,
        "unknown_label",
        lambda rows: "gold label " + rows[schema.LABEL] + f" is not one of {labels}",
    )
    df = _merge_repeats(
        df,
        df.duplicated([schema.ITEM_ID, schema.LABEL], keep="first"),
        counts,
        q,
        table,
        "conflicting_gold",
        lambda rows: "item " + rows[schema.ITEM_ID] + " has different gold labels; fix the gold file",
    )
    out = df[[schema.ITEM_ID, schema.LABEL]].reset_index(drop=True)
    return _finish(out, counts, q, table)


def _finish(
    out: pd.DataFrame, counts: TableCounts, q: _Quarantine, table: str
) -> tuple[pd.DataFrame, TableCounts]:
    """The clean table and its counts: rows kept, and rows quarantined by reason."""
    counts.kept = len(out)
    for frame in q.frames:
        if len(frame) and frame["table"].iat[0] == table:
            reason = frame["reason"].iat[0]
            counts.reasons[reason] = counts.reasons.get(reason, 0) + len(frame)
    counts.quarantined = sum(counts.reasons.values())
    return out, counts
