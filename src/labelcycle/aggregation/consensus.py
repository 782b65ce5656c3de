"""The consensus (result) table of a streaming fit, summarised without loading it whole.

An incremental run's consensus is a Parquet file: the stored state's rows followed by the new items'
(:func:`labelcycle.aggregation.incremental.write_labels`). The aggregate stage logs its content digest,
its agreement summary and its first rows; loading all of it into pandas for that would cost more than
the fit. Here:

- the digest is :func:`~labelcycle.versioning.digest.table_digest`'s, from the state's sorted row hashes
  merged with the new rows' (a digest is the hash of the sorted multiset of row hashes); it is exact
  only when every column's row hash depends on that row alone, which :func:`hashable_by_row` checks
  (a timestamp column's text depends on the finest value of the whole column);
- the agreement summary is :func:`~labelcycle.curation.agreement_summary` over the columns it reads
  only (the same arrays, so the same floats);
- the head is the first rows as ``pd.read_parquet`` gives them.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.curation import N_ANNOTATIONS, VOTE_SHARE, agreement_summary
from labelcycle.versioning.digest import row_hashes

#: the columns :func:`agreement_summary` reads
SUMMARY_COLUMNS = (N_ANNOTATIONS, schema.CONFIDENCE, VOTE_SHARE)


def hashable_by_row(arrow_schema) -> bool:
    """Whether each row's hash in :func:`row_hashes` depends on that row only (no timestamp column)."""
    import pyarrow as pa

    return not any(pa.types.is_timestamp(f.type) or pa.types.is_date(f.type) for f in arrow_schema)


def sorted_row_hashes(df: pd.DataFrame) -> np.ndarray:
    """The row hashes of ``df`` (:func:`row_hashes`), sorted."""
    out = row_hashes(df)
    out.sort()
    return out


def merge_sorted(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Two sorted uint64 arrays as one sorted array (the multiset union), in linear time."""
    new = np.sort(new)
    return np.insert(old, np.searchsorted(old, new), new)


def save_hashes(path: Path, hashes: np.ndarray) -> None:
    """Store sorted row hashes as a raw little-endian uint64 file (``np.save`` format)."""
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(hashes, dtype="<u8"), allow_pickle=False)


def load_hashes(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False).astype(np.uint64, copy=False)


def rows_from(path: Path, start: int) -> pd.DataFrame:
    """``pd.read_parquet(path).iloc[start:]`` (index from 0), reading only the row groups that hold them."""
    import pyarrow.parquet as pq

    if start < 0:
        raise ValueError(f"a row number is not negative: {start}")
    pf = pq.ParquetFile(path)
    meta, groups, first, at = pf.metadata, [], 0, 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if at + n > start:
            if not groups:
                first = at
            groups.append(g)
        at += n
    if not groups:
        return _as_pandas(pf.schema_arrow.empty_table())
    return _as_pandas(pf.read_row_groups(groups).slice(start - first))


def head(path: Path, n: int = 1000) -> pd.DataFrame:
    """``pd.read_parquet(path).head(n)``, reading the first rows only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    batches, got = [], 0
    for batch in pf.iter_batches(batch_size=max(n, 1)) if n > 0 else ():
        batches.append(batch)
        got += batch.num_rows
        if got >= n:
            break
    return _as_pandas(pa.Table.from_batches(batches, schema=pf.schema_arrow).slice(0, n))


def _as_pandas(table) -> pd.DataFrame:
    """The table as ``pd.read_parquet`` converts a file of it (its pandas metadata, pandas' dtype choices)."""
    try:  # what pd.read_parquet calls on the table it read
        from pandas.io._util import arrow_table_to_pandas
    except ImportError:  # another pandas: a round trip through an in-memory file
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(table, buf)
        buf.seek(0)
        return pd.read_parquet(buf)
    return arrow_table_to_pandas(table)


def summary(path: Path) -> dict[str, float]:
    """:func:`agreement_summary` of the table in ``path``, reading only the columns it uses."""
    import pyarrow.parquet as pq

    # ParquetFile: pd.read_parquet's Dataset reader costs more to import than these columns to read
    columns = pq.ParquetFile(path).read(columns=list(SUMMARY_COLUMNS), use_pandas_metadata=True)
    return agreement_summary(_as_pandas(columns))


def num_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
