"""Full-content, label-aware digests of tables.

MLflow's pandas digest hashes only the first 10,000 rows; ours hashes every value of every row, so a
single relabel anywhere changes it. Row order does not matter (a table is a multiset of rows); column
order does not either (columns are sorted by name), but column names and values do.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

#: hex characters kept (MLflow stores dataset digests in a 36-character column)
DIGEST_LENGTH = 32


_DEFAULT_STR = pd.Series(["x"]).dtype

#: rows hashed at a time in :func:`table_digest`
_HASH_ROWS = 1 << 20


def _timestamps_as_text(values: pd.Series) -> pd.Series | None:
    """``values.astype(str)`` for naive or UTC timestamps, vectorised (None: use astype instead).

    pandas formats a datetime column with one resolution for all rows: seconds when no value has a
    fraction, else milliseconds, microseconds or nanoseconds as the finest value needs; ``+00:00`` for
    UTC; missing values stay missing. Columns that pandas would print as dates only (all at midnight)
    and other time zones take the slow path.
    """
    tz = getattr(values.dtype, "tz", None)
    if tz is not None and str(tz) != "UTC":
        return None
    naive = values.dt.tz_localize(None) if tz is not None else values
    ns = naive.to_numpy(dtype="datetime64[ns]")
    valid = ~np.isnat(ns)
    ticks = ns.view("int64")[valid]
    if not len(ticks) or not (ticks % 86_400_000_000_000).any():
        return None
    unit = next(
        u for u, step in (("s", 10**9), ("ms", 10**6), ("us", 10**3), ("ns", 1)) if not (ticks % step).any()
    )
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(ns, type=pa.timestamp("ns"), mask=~valid).cast(pa.timestamp(unit))
    # Arrow's cast of a naive timestamp to text is ``strftime("%Y-%m-%d %H:%M:%S")`` (fraction per unit),
    # an order of magnitude faster
    text = pc.cast(arr, pa.string())
    if tz is not None:
        text = pc.binary_join_element_wise(text, pa.scalar("+00:00"), pa.scalar(""))
    return pd.Series(text.to_pandas(types_mapper={pa.string(): _DEFAULT_STR}.get), index=values.index).astype(
        str
    )


def _canonical_column(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_datetime64_any_dtype(values):
        fast = _timestamps_as_text(values)
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


def table_digest(df: pd.DataFrame) -> str:
    """A hex digest of the table's content, independent of row and column order.

    Two tables get the same digest exactly when they have the same column names and the same multiset
    of rows (numbers compared as float64, everything else as text).
    """
    cols = sorted(str(c) for c in df.columns)
    h = hashlib.sha256()
    h.update(("\x1f".join(cols) + f"\x1e{len(df)}").encode())
    if len(df) and cols:
        frame = pd.DataFrame({c: _canonical_column(df[c]) for c in cols})
        # row hashes are per row, so hashing in slices gives the same ones with bounded scratch memory
        row_hashes = np.empty(len(frame), dtype=np.uint64)
        for start in range(0, len(frame), _HASH_ROWS):
            part = frame.iloc[start : start + _HASH_ROWS]
            row_hashes[start : start + len(part)] = pd.util.hash_pandas_object(
                part, index=False, categorize=False
            ).to_numpy(dtype=np.uint64)
        del frame
        row_hashes.sort()
        h.update(row_hashes.tobytes())
    return h.hexdigest()[:DIGEST_LENGTH]


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
