"""Vectorised cell checks and parsing for the validation of large tables (Arrow where the column is text).

A cell is missing only when it is empty (or spaces only) or a real null; numbers and timestamps are parsed
in one Arrow pass where every value allows it, by pandas' per-value parsers otherwise.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: pandas' default text dtype (Arrow-backed strings)
TEXT = pd.Series(["x"]).dtype


def arrow_strings(values: pd.Series) -> pa.ChunkedArray | pa.Array | None:
    """The Arrow array behind a pandas ``str`` column (zero-copy), or None for any other column."""
    if values.dtype != TEXT or getattr(values.dtype, "storage", None) != "pyarrow":
        return None
    return pa.array(values.array)


def is_empty(values: pd.Series) -> pd.Series:
    """Missing cells: nulls, and text that is empty or whitespace only (nothing else)."""
    arr = arrow_strings(values)
    if arr is None:
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
            return values.isna()  # no text to be blank
        return values.isna() | values.astype(str).str.strip().eq("")
    empty = pc.or_(pc.equal(pc.binary_length(arr), 0), pc.utf8_is_space(arr))
    empty = pc.fill_null(empty, True).to_numpy(zero_copy_only=False)
    return pd.Series(empty.astype(bool, copy=False), index=values.index)


def isin(values: pd.Series, allowed: pd.Series) -> pd.Series:
    """``values.isin(allowed)`` for large ``allowed`` string columns (one hash join, not a Python loop)."""
    arr, allowed_arr = arrow_strings(values), arrow_strings(allowed)
    if arr is not None and allowed_arr is not None and not arr.null_count and not allowed_arr.null_count:
        found = pc.is_in(arr, value_set=pc.unique(allowed_arr))
        return pd.Series(found.to_numpy(zero_copy_only=False).astype(bool, copy=False), index=values.index)
    index = pd.Index(allowed.astype(str).unique())
    return pd.Series(index.get_indexer(values.astype(str)) >= 0, index=values.index)


def numbers(values: pd.Series) -> pd.Series:
    """``pd.to_numeric(values, errors="coerce")``: one Arrow cast of a text column whose every value
    parses (nulls stay missing), pandas' per-value parser otherwise."""
    arr = arrow_strings(values)
    if arr is not None:
        try:
            cast = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            return pd.Series(cast.to_numpy(zero_copy_only=False), index=values.index)
    return pd.to_numeric(values, errors="coerce")


def clean_str(values: pd.Series) -> pd.Series:
    arr = arrow_strings(values)
    if arr is not None:
        # the column itself when nothing needs stripping (no second copy of a large id column)
        stripped = pc.utf8_trim_whitespace(arr)
        if pc.sum(pc.binary_length(stripped)).as_py() == pc.sum(pc.binary_length(arr)).as_py():
            return values
        del stripped
    return values.astype(str).str.strip()


def _arrow_timestamps(values: pd.Series) -> pd.Series | None:
    """ISO 8601 text parsed by Arrow's cast (several times faster than pandas): all with a zone offset, or
    all without (taken as UTC, as pandas does with ``utc=True``). None when any value is otherwise."""
    arr = arrow_strings(values)
    if arr is None:
        return None
    utc = pa.timestamp("us", tz="UTC")
    for target in (utc, pa.timestamp("us")):
        try:
            parsed = pc.cast(arr, target).cast(utc)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return pd.Series(parsed.to_pandas().array, index=values.index)
    return None


def parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC timestamps; ISO 8601 in one vectorised pass, any other format by pandas' per-value parser."""
    fast = _arrow_timestamps(values)
    if fast is not None:
        return fast
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    redo = values.notna() & parsed.isna()
    if redo.any():
        parsed = parsed.copy()
        parsed[redo] = pd.to_datetime(values[redo], errors="coerce", utc=True, format="mixed")
    return parsed
