"""A directory of Parquet files as one delivered table, checked at ingest without loading it.

``labelcycle ingest --annotations DIR`` must not read a 100M-row data set into memory just to count and
check it: the rows are validated by the ingest stage. What ingest checks here, file by file:

- which files belong (:func:`labelcycle.readers.parquet_listing`: the same rule as reading the folder);
- each file's schema: the mapped columns are there and required ones present (the messages of
  :func:`labelcycle.readers.map_columns`), and a column has one type in every file;
- the row count, from the files' footers;
- the size limit (``--max-input-size``), which holds **for each file** as when the folder is read
  (:func:`labelcycle.compressed.parquet_row_groups`: one row group in memory at a time);
- the label column's values and their counts (for label discovery and the "no row has a known label"
  check), read by row groups, dictionary-encoded, never as one Python string per row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from labelcycle import schema
from labelcycle.compressed import InputLimits, parquet_row_groups
from labelcycle.errors import InputFileError, SchemaError
from labelcycle.readers import ColumnMap, map_columns, parquet_listing


@dataclass(frozen=True)
class ParquetDir:
    """What ingest learnt about a directory data set.

    Attributes:
        path: the directory.
        files: its Parquet files, in reading order.
        skipped: metadata files left out (``_SUCCESS``, ``.crc``...).
        rows: rows in all files (from their footers).
        labels: label cell -> rows, as validation reads the cells (text; markers and nulls as ``""``);
            empty when the table has no label column or none was asked for.
    """

    path: Path
    files: list[Path]
    skipped: list[Path]
    rows: int
    labels: Counter = field(default_factory=Counter)

    def rows_with_label_in(self, labels: list[str]) -> int:
        """Rows whose label (trimmed) is one of ``labels``."""
        wanted = set(labels)
        return sum(n for value, n in self.labels.items() if value.strip() in wanted)

    def labels_seen(self) -> set[str]:
        """The distinct non-empty labels (trimmed)."""
        return {value.strip() for value in self.labels if value.strip()}


def inspect_parquet_dir(
    path: Path, kind: str, columns: ColumnMap, limits: InputLimits, count_labels: bool
) -> ParquetDir:
    """Check a directory data set of ``kind`` as ingest does, streaming (see the module docstring).

    Args:
        path: the directory.
        kind: ``annotations``, ``items`` or ``gold``.
        columns: its column mapping and missing-value markers.
        limits: the size limit each file is held to.
        count_labels: count the label column's values.

    Raises:
        InputFileError: no Parquet file, a file of another format, an unreadable or oversized file, or
            no rows at all.
        SchemaError: a file lacks a mapped or required column, or a column's type differs between files.
    """
    files, skipped = parquet_listing(path)
    types: dict[str, tuple[pa.DataType, Path]] = {}
    rows = 0
    labels: Counter = Counter()
    markers = {str(m).strip() for m in columns.na_values}
    for f in files:
        try:
            file_schema = pq.read_schema(f)
            mapped = map_columns(f, kind, [name.strip() for name in file_schema.names], columns)
            _check_types(f, file_schema, mapped, types)
            rows += pq.ParquetFile(f).metadata.num_rows
            label = file_schema.names[mapped.index(schema.LABEL)] if schema.LABEL in mapped else None
            for group in _row_groups(f, limits, label if count_labels else None):
                if count_labels and label is not None:
                    _count(group.column(label), labels, markers)
        except (pa.ArrowException, OSError) as exc:
            raise InputFileError(
                f"{f}: is not a readable Parquet file ({exc}); it may be truncated or not Parquet at all - "
                "write it again"
            ) from None
    if rows == 0:
        raise InputFileError(
            f"{path}: its {len(files)} Parquet file(s) hold no rows; there is nothing to ingest (was the "
            "export cut short?)"
        )
    return ParquetDir(path, files, skipped, rows, labels)


def _row_groups(path: Path, limits: InputLimits, label: str | None):
    """The row groups to pass over: every column while a size limit holds (it must see them all), else
    only the label column (or nothing at all)."""
    if limits.max_bytes is not None:
        yield from parquet_row_groups(path, limits)
    elif label is not None:
        pf = pq.ParquetFile(path, read_dictionary=[label])
        for i in range(pf.num_row_groups):
            yield pf.read_row_group(i, columns=[label])


def _check_types(
    path: Path, file_schema: pa.Schema, mapped: list[str], seen: dict[str, tuple[pa.DataType, Path]]
) -> None:
    """Every column (by its contract name) has one kind of type across the files: widths may differ
    (``string``/``large_string``, ``int32``/``int64``, timestamp units), which the reader unifies, and an
    all-null column fits any; an id that is a number in one file and text in another does not."""
    for name, fld in zip(mapped, file_schema, strict=True):
        if pa.types.is_null(fld.type):
            continue
        first = seen.setdefault(name, (fld.type, path))
        if _kind(first[0]) != _kind(fld.type):
            raise SchemaError(
                f"{path}: column {fld.name!r} is {fld.type} here but {first[0]} in {first[1]}; the files of "
                "one data set need one schema: write them again with the same column types"
            )


def _kind(t: pa.DataType) -> str:
    """A type with its width left out (what ``concat_tables(promote_options="permissive")`` widens)."""
    checks = (
        (pa.types.is_string, "string"),
        (pa.types.is_large_string, "string"),
        (pa.types.is_binary, "binary"),
        (pa.types.is_large_binary, "binary"),
        (pa.types.is_signed_integer, "int"),
        (pa.types.is_unsigned_integer, "uint"),
        (pa.types.is_floating, "float"),
    )
    for check, kind in checks:
        if check(t):
            return kind
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.tz}]"
    return str(t)


def _count(column: pa.ChunkedArray, into: Counter, markers: set[str]) -> None:
    """Add the column's values (as the reader turns them into text) and their row counts to ``into``."""
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            indices = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
            values = chunk.dictionary.to_pylist()
            pairs = zip(*_bincount(indices, len(values)), strict=True)
            counted = [(values[i] if i >= 0 else None, n) for i, n in pairs]
        else:
            vc = pc.value_counts(chunk)
            counted = list(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))
        for value, n in counted:
            text = _as_text(value)
            into["" if text.strip() in markers else text] += int(n)


def _bincount(indices, size: int) -> tuple[list[int], list[int]]:
    """The distinct indices (-1: null) and their counts."""
    import numpy as np

    counts = np.bincount(indices + 1, minlength=size + 1)
    present = np.nonzero(counts)[0]
    return (present - 1).tolist(), counts[present].tolist()


def _as_text(value: object) -> str:
    """A label cell as :func:`labelcycle.readers.read_table` gives it: nulls and NaN empty, else ``str``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)
