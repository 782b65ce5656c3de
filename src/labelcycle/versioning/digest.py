"""Full-content, label-aware digests of tables.

MLflow's pandas digest hashes only the first 10,000 rows; ours hashes every value of every row, so a
single relabel anywhere changes it. Row order does not matter (a table is a multiset of rows); column
order does not either (columns are sorted by name), but column names and values do.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.util import hash_array

#: hex characters kept (MLflow stores dataset digests in a 36-character column)
DIGEST_LENGTH = 32


_DEFAULT_STR = pd.Series(["x"]).dtype

_UNITS = (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1))
_DAY_NS = 86_400_000_000_000


def _utc_ticks(values: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Nanosecond ticks of a naive or UTC timestamp column and where it is valid (None: other zone)."""
    tz = getattr(values.dtype, "tz", None)
    if tz is not None and str(tz) != "UTC":
        return None
    naive = values.dt.tz_localize(None) if tz is not None else values
    ns = naive.to_numpy(dtype="datetime64[ns]")
    return ns, ~np.isnat(ns)


def _valid_ticks(values: pd.Series) -> np.ndarray | None:
    """The int64 nanosecond ticks of the column's values that are set (None: a zone other than UTC)."""
    found = _utc_ticks(values)
    if found is None:
        return None
    ns, valid = found
    return ns.view("int64")[valid]


def _coarsest(ticks: np.ndarray) -> str:
    return next(u for u, step in _UNITS if not (ticks % step).any())


def timestamp_unit(values: pd.Series) -> str | None:
    """The resolution pandas would print ``values`` with: ``s``, ``ms``, ``us`` or ``ns``, the coarsest
    that no value has a finer fraction than; None when it prints dates only (every value at midnight),
    has no value, or the zone is not UTC (the slow, per-value path)."""
    ticks = _valid_ticks(values)
    if ticks is None or not len(ticks) or not (ticks % _DAY_NS).any():
        return None
    return _coarsest(ticks)


def finest_unit(values: pd.Series) -> str | None:
    """:func:`timestamp_unit` without the midnight rule (``s`` for dates): None only without a value."""
    ticks = _valid_ticks(values)
    return _coarsest(ticks) if ticks is not None and len(ticks) else None


def _timestamps_as_text(values: pd.Series, unit: str | None) -> pd.Series | None:
    """``values.astype(str)`` for naive or UTC timestamps printed at ``unit`` (see :func:`timestamp_unit`),
    vectorised; None: use astype instead.

    pandas formats a datetime column with one resolution for all rows: seconds when no value has a
    fraction, else milliseconds, microseconds or nanoseconds as the finest value needs; ``+00:00`` for
    UTC; missing values stay missing. Columns that pandas would print as dates only (all at midnight)
    and other time zones take the slow path.
    """
    found = _utc_ticks(values) if unit is not None else None
    if found is None:
        return None
    text = _ticks_as_text(*found, unit, getattr(values.dtype, "tz", None) is not None)
    # .array: the values by position (a Series would be aligned on ``values``' index, which need not be 0..n-1)
    as_text = text.to_pandas(types_mapper={pa.string(): _DEFAULT_STR}.get).array
    return pd.Series(as_text, index=values.index).astype(str)


def _ticks_as_text(ns: np.ndarray, valid: np.ndarray, unit: str, utc: bool) -> pa.Array:
    """Nanosecond ticks as :func:`_timestamps_as_text` prints them, as an Arrow string array."""
    arr = pa.array(ns, type=pa.timestamp("ns"), mask=~valid).cast(pa.timestamp(unit))
    # Arrow's cast of a naive timestamp to text is ``strftime("%Y-%m-%d %H:%M:%S")`` (fraction per unit),
    # an order of magnitude faster
    text = pc.cast(arr, pa.string())
    if utc:
        text = pc.binary_join_element_wise(text, pa.scalar("+00:00"), pa.scalar(""))
    return text


def _canonical_column(values: pd.Series, unit: str | None | bool = True) -> pd.Series:
    """The values as hashed: text, float64 or int64. ``unit``: the resolution timestamps are printed at
    (True: the column's own, :func:`timestamp_unit`)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_datetime64_any_dtype(values):
        fast = _timestamps_as_text(values, timestamp_unit(values) if unit is True else unit)
        return values.astype(str) if fast is None else fast
    if pd.api.types.is_bool_dtype(values):
        return values.astype("int64")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64")
    if values.dtype == _DEFAULT_STR and not pd.api.types.is_object_dtype(values.dtype):
        # pandas' default string dtype holds only str and NaN, which is exactly what the per-value path
        # below produces (it infers this dtype again): same digest, without a Python call per row
        return values
    return values.astype(object).where(values.notna(), None).map(lambda v: None if v is None else str(v))


def _by_code(hashed: np.ndarray, codes: pa.Array) -> np.ndarray:
    """The hash of each row from its code into the hashed distinct values; a missing value hashes as
    pandas hashes a missing Arrow value."""
    out = hashed.take(codes.fill_null(0).to_numpy()) if len(hashed) else np.zeros(len(codes), np.uint64)
    if codes.null_count:
        out[codes.is_null().to_numpy(zero_copy_only=False)] = np.iinfo(np.uint64).max
    return out


def _text_hashes(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """pandas' hashes of an Arrow string column, each distinct value hashed once (what its Arrow-backed
    string dtype does with ``categorize=True``)."""
    encoded = pc.dictionary_encode(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
    hashed = hash_array(encoded.dictionary.to_numpy(zero_copy_only=False), categorize=False)
    return _by_code(hashed, encoded.indices)


def _timestamp_hashes(values: pd.Series, unit: str) -> np.ndarray:
    """The hashes of a naive or UTC timestamp column's text printed at ``unit``
    (:func:`_timestamps_as_text`), each distinct instant printed and hashed once."""
    ns, valid = _utc_ticks(values)
    encoded = pc.dictionary_encode(pa.array(ns.view("int64"), mask=~valid))
    distinct = encoded.dictionary.to_numpy().view("datetime64[ns]")
    utc = getattr(values.dtype, "tz", None) is not None
    text = _ticks_as_text(distinct, np.ones(len(distinct), bool), unit, utc)
    return _by_code(hash_array(text.to_numpy(zero_copy_only=False), categorize=False), encoded.indices)


def _column_hashes(values: pd.Series) -> np.ndarray:
    """pandas' ``hash_pandas_object(_canonical_column(values), index=False, categorize=True)`` of a column
    that is not a timestamp (or is one already printed)."""
    canonical = _canonical_column(values)
    arrow = getattr(canonical.array, "_pa_array", None)
    if arrow is not None and (pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type)):
        return _text_hashes(arrow)
    vals = canonical.array
    if isinstance(vals, pd.arrays.NumpyExtensionArray):  # what pandas hashes of a NumPy column: the ndarray
        vals = vals.to_numpy()
    return hash_array(vals, categorize=True).astype(np.uint64, copy=False)


#: a text column given as codes (one per row) into an Arrow array of its distinct values
Coded = tuple[np.ndarray, pa.Array]


#: rows hashed at a time in :func:`row_hashes` (bounds its scratch memory: a slice's distinct texts
#: become Python strings to be hashed)
_HASH_ROWS = 1 << 22


def row_hashes(
    df: pd.DataFrame, units: dict[str, str | None] | None = None, coded: dict[str, Coded] | None = None
) -> np.ndarray:
    """One uint64 per row of ``df`` (columns in name order), as :func:`table_digest` sorts and hashes them:
    pandas' ``hash_pandas_object(frame, index=False, categorize=True)`` of the canonical columns, computed
    column by column, slice by slice, with each distinct text value (and instant) of a slice hashed once.

    ``units``: the resolution each timestamp column is printed at (default: the column's own, over the
    whole column). ``coded``: text columns already encoded (by the caller, for its own use): each distinct
    value is hashed once.
    """
    cols = sorted(str(c) for c in df.columns)
    if not len(df) or not cols:
        return np.empty(len(df), dtype=np.uint64)
    units, coded = units or {}, coded or {}
    named = {str(c): c for c in df.columns}
    how: dict[str, tuple] = {}  # per column: what each slice hashes
    for col in cols:
        values = df[named[col]]
        if col in coded:
            codes, distinct = coded[col]
            how[col] = ("coded", codes, hash_array(distinct.to_numpy(zero_copy_only=False), categorize=False))
        elif pd.api.types.is_datetime64_any_dtype(values):
            unit = units[col] if col in units else timestamp_unit(values)  # one resolution for the column
            if unit is not None and _utc_ticks(values) is not None:
                how[col] = ("stamps", values, unit)
            else:  # dates only or another zone: the whole column printed by pandas, then hashed by slice
                how[col] = ("values", _canonical_column(values, unit), None)
        else:
            how[col] = ("values", values, None)
    out = np.empty(len(df), dtype=np.uint64)
    for lo in range(0, len(df), _HASH_ROWS):
        # pandas' combine_hash_arrays (CPython's tuple hash) over the columns' hashes
        h = np.full(min(_HASH_ROWS, len(df) - lo), 0x345678, dtype=np.uint64)
        mult = np.uint64(1000003)
        for i, col in enumerate(cols):
            kind, values, extra = how[col]
            if kind == "coded":
                h ^= extra.take(values[lo : lo + _HASH_ROWS])
            elif kind == "stamps":
                h ^= _timestamp_hashes(values.iloc[lo : lo + _HASH_ROWS], extra)
            else:
                h ^= _column_hashes(values.iloc[lo : lo + _HASH_ROWS])
            h *= mult
            mult += np.uint64(82520 + 2 * (len(cols) - i))
        out[lo : lo + len(h)] = h + np.uint64(97531)
    return out


def digest_of_hashes(columns: list[str], hashes: np.ndarray) -> str:
    """The digest of a table with ``columns`` whose row hashes are ``hashes`` (any order; sorted here, in
    place, and hashed without a copy: 100M rows are 800 MB)."""
    cols = sorted(str(c) for c in columns)
    h = hashlib.sha256()
    h.update(("\x1f".join(cols) + f"\x1e{len(hashes)}").encode())
    if len(hashes) and cols:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
        hashes.sort()
        h.update(memoryview(hashes).cast("B"))
    return h.hexdigest()[:DIGEST_LENGTH]


def table_digest(df: pd.DataFrame) -> str:
    """A hex digest of the table's content, independent of row and column order.

    Two tables get the same digest exactly when they have the same column names and the same multiset
    of rows (numbers compared as float64, everything else as text).
    """
    return digest_of_hashes(list(df.columns), row_hashes(df))


def _file_hash(path, algorithm: str) -> str:
    """The hex digest of a file's bytes with ``hashlib`` algorithm ``algorithm``, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_md5(path) -> str:
    """MD5 of a file's bytes (what DVC records for a file output)."""
    return _file_hash(path, "md5")


def file_sha256(path) -> str:
    """SHA-256 of a file's bytes."""
    return _file_hash(path, "sha256")
