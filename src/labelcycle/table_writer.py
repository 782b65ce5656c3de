"""Write CSV/TSV with Arrow's compute kernels, byte for byte as ``DataFrame.to_csv(index=False)`` would.

pandas formats every cell in Python (about 10 s per 2.5M rows with floats). Here each column becomes one
Arrow string array in a few vectorised passes, the cells are quoted where pandas' ``QUOTE_MINIMAL`` quotes
them, and each row is joined by an Arrow kernel; the bytes of the joined rows go to the file as they are.
The text is pandas' own: floats as Python's ``repr`` (``1.0``, ``1e-05``: exact round trip, and a float
column reads back as floats), ``True``/``False``, timestamps as pandas writes them, an empty cell for a
missing value, mixed object columns through ``str``.

Arrow's own CSV writer (``pyarrow.csv``) is not used: it quotes every text cell, writes ``1`` for ``1.0``
and ``true`` for ``True``, and without quoting refuses a raw ``"``, which labelcycle's TSV files may hold
(they are read without quoting).

:class:`TableWriter` writes one table piece by piece (the out-of-core commands' output) in any format
:func:`~labelcycle.readers.write_table` writes.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from labelcycle.errors import ConfigError
from labelcycle.readers import detect_format, write_table

#: rows joined per step: bounds the memory of the joined text (a few hundred bytes a row)
ROWS_PER_STEP = 1 << 20
#: |x| from which Python writes a float with an exponent (below 1e-4 too, zero aside)
_EXP_HIGH = 1e16
_EXP_LOW = 1e-4
#: Arrow's text -> Python's, as regular expressions: one-digit exponents get two (1e-7 -> 1e-07), and
#: 1e-6 <= |x| < 1e-4, which Arrow writes in fixed notation, goes to exponent (0.0000123 -> 1.23e-05)
_TO_PYTHON = (
    (r"e([-+])(\d)$", r"e\10\2"),
    (r"^(-?)0\.0000([1-9])(\d*)$", r"\1\2.\3e-05"),
    (r"^(-?)0\.00000([1-9])(\d*)$", r"\1\2.\3e-06"),
    (r"\.e-0", "e-0"),
)
#: str() over an object array (bytes stay ``b'...'`` as the csv module writes them)
_STR = np.frompyfunc(str, 1, 1)


def float_text(values: np.ndarray) -> pa.Array:
    """``repr`` of each float64 as an Arrow string array (NaN as null), without a Python loop over values.

    Arrow's cast writes the same shortest round-trip digits as Python but chooses differently between
    fixed and exponent notation and drops ``.0``. Whole numbers below 1e16 are written through an int64
    cast plus ``.0``, small numbers are rewritten by :data:`_TO_PYTHON`, and the few values left where the
    notation still differs (non-whole numbers from 1e15 that Arrow writes with an exponent, -0.0) take
    numpy's formatting, which is pandas'.
    """
    x = np.asarray(values, dtype=np.float64)
    text = pc.cast(pa.array(x, from_pandas=True), pa.string())
    finite = np.isfinite(x)
    mag = np.abs(x)
    negative_zero = (x == 0) & np.signbit(x)
    with np.errstate(invalid="ignore"):
        whole = finite & (mag < _EXP_HIGH) & (x == np.trunc(x)) & ~negative_zero
    arrow_exp = pc.fill_null(pc.match_substring(text, "e"), False).to_numpy(zero_copy_only=False)
    # where the two may differ; elsewhere (most values) Arrow's text is Python's
    fix = whole | negative_zero | (finite & (x != 0) & ((mag < _EXP_LOW) | (arrow_exp & (mag < _EXP_HIGH))))
    if not fix.any():
        return text
    sub, sub_whole = x[fix], whole[fix]
    sub_text = text.filter(pa.array(fix))
    for pattern, rewrite in _TO_PYTHON:
        sub_text = pc.replace_substring_regex(sub_text, pattern, rewrite)
    if sub_whole.any():
        ints = pc.cast(pa.array(sub[sub_whole].astype(np.int64)), pa.string())
        sub_text = pc.replace_with_mask(
            sub_text, pa.array(sub_whole), pc.binary_join_element_wise(ints, ".0", "")
        )
    python_exp = (sub != 0) & ((np.abs(sub) < _EXP_LOW) | (np.abs(sub) >= _EXP_HIGH))
    sub_exp = pc.fill_null(pc.match_substring(sub_text, "e"), False).to_numpy(zero_copy_only=False)
    odd = ~sub_whole & ((python_exp != sub_exp) | negative_zero[fix])
    if odd.any():
        sub_text = pc.replace_with_mask(sub_text, pa.array(odd), pa.array(sub[odd].astype(str)))
    return pc.replace_with_mask(text, pa.array(fix), sub_text)


def _strings(values, mask: np.ndarray | None = None) -> pa.Array:
    """Text values as an Arrow (large) string array, ``mask`` (missing) as null; non-text values through ``str``."""
    values = np.asarray(values, dtype=object)
    if mask is None:
        mask = pd.isna(values)
    try:
        text = pa.array(values, mask=mask)
        if (
            pa.types.is_string(text.type)
            or pa.types.is_large_string(text.type)
            or pa.types.is_null(text.type)
        ):
            return text.cast(pa.large_string())
    except pa.ArrowException:  # values Arrow cannot take as one type
        pass
    # not all text (numbers, booleans, bytes, lists...): pandas writes str() of each value
    return pa.array(_STR(values), type=pa.large_string(), mask=mask)


def column_text(col: pd.Series) -> pa.Array:
    """One column's cells as pandas' CSV writer writes them (null for an empty cell)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        if dtype.categories.dtype.kind in "mM":  # the format depends on the values present: densify
            return column_text(col.astype(dtype.categories.dtype))
        codes = col.cat.codes.to_numpy()
        categories = column_text(pd.Series(dtype.categories))
        return categories.take(pa.array(codes, mask=codes < 0))
    mask = col.isna().to_numpy()
    kind = dtype.kind
    if kind == "f" and dtype.itemsize == 8:  # numpy or nullable float64
        return float_text(col.to_numpy(dtype=np.float64, na_value=np.nan))
    if kind == "f":  # float32/16: numpy's shortest digits for that width, as pandas writes them
        return _strings(col.to_numpy(dtype=f"float{8 * dtype.itemsize}", na_value=np.nan).astype(str), mask)
    if kind in "iu":
        return pc.cast(pa.array(col, from_pandas=True), pa.string())
    if kind == "b":
        flags = pa.array(col.to_numpy(dtype=bool, na_value=False))
        return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), pc.if_else(flags, "True", "False"))
    if isinstance(dtype, pd.StringDtype):  # pandas' text columns: Arrow takes them as they are
        return pa.array(col, from_pandas=True).cast(pa.large_string())
    if kind in "OSU":
        return _strings(col.to_numpy(dtype=object, na_value=None), mask)
    # datetimes, timedeltas, periods, intervals...: pandas' own vectorised formatting
    return _strings(col.astype(str).to_numpy(dtype=object), mask)


def _quoted(text: pa.Array, sep: str) -> pa.Array:
    """Cells holding the delimiter, a quote or a line break wrapped in quotes (inner quotes doubled).

    A carriage return is quoted too (pandas leaves it bare, and readers then take it for a line end).
    """
    special = pc.fill_null(pc.match_substring_regex(text, f'[{sep}"\\r\\n]'), False)
    if not pc.any(special).as_py():
        return text
    quote, none = pa.scalar('"', text.type), pa.scalar("", text.type)
    wrapped = pc.binary_join_element_wise(quote, pc.replace_substring(text, '"', '""'), quote, none)
    return pc.if_else(special, wrapped, text)


def _cell_text(col: pd.Series, sep: str, alone: bool) -> pa.Array:
    """One column as the cells of the file: quoted where needed, an empty cell for a null."""
    text = column_text(col)
    if col.dtype.kind not in "iufb":  # numbers and booleans never hold a delimiter, quote or line break
        text = _quoted(text, sep)
    text = pc.fill_null(text, "")
    if alone:  # csv writes a row of one empty field as "" (else it reads as no row)
        text = pc.if_else(pc.equal(text, ""), pa.scalar('""', text.type), text)
    text = text.cast(pa.large_string())  # 64-bit offsets: a column may hold more than 2 GiB of text
    return text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text


def _cells(df: pd.DataFrame, sep: str) -> list[pa.Array]:
    """Every column of ``df`` as its cells, columns formatted in parallel (Arrow and numpy release the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    columns = [df.iloc[:, j] for j in range(df.shape[1])]
    with ThreadPoolExecutor(max_workers=min(len(columns), os.cpu_count() or 1)) as pool:
        return list(pool.map(lambda col: _cell_text(col, sep, len(columns) == 1), columns))


def _header(df: pd.DataFrame, sep: str) -> bytes:
    names = pa.array([str(c) for c in df.columns], type=pa.string())
    cells = _quoted(names, sep).to_pylist()
    if len(cells) == 1 and cells[0] == "":
        cells = ['""']
    return (sep.join(cells) + "\n").encode("utf-8")


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _write_rows(df: pd.DataFrame, sep: str, fh: BinaryIO) -> None:
    """The data rows of ``df`` as CSV text to ``fh``, :data:`ROWS_PER_STEP` rows joined at a time."""
    if df.shape[1] == 0:
        fh.write(b"\n" * len(df))
        return
    cells = _cells(df, sep)
    for lo in range(0, len(df), ROWS_PER_STEP):
        part = [c.slice(lo, ROWS_PER_STEP) for c in cells]
        part[-1] = pc.binary_join_element_wise(part[-1], _large(""), _large("\n"))  # the line ends
        lines = pc.binary_join_element_wise(*part, _large(sep)) if len(part) > 1 else part[0]
        offsets, data = lines.buffers()[1:3]
        bounds = np.frombuffer(offsets, dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
        fh.write(memoryview(data)[bounds[0] : bounds[-1]])


def _open_output(path: Path, compression: str | None, target: Path) -> BinaryIO:
    """``path`` opened for writing, through ``compression``; ``target`` is the file named in errors."""
    if compression is None:
        return path.open("wb")
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise ConfigError(
                f"{target}: writing .zst files needs the zstandard package, which is not installed; "
                "install it (`pip install zstandard`), or write .gz instead"
            ) from None
        return zstandard.ZstdCompressor().stream_writer(path.open("wb"), closefd=True)
    return {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression](path, "wb")


def write_delimited(df: pd.DataFrame, path: Path, sep: str, compression: str | None = None) -> None:
    """Write ``df`` as CSV (``sep=","``) or TSV to ``path``, as ``df.to_csv(path, sep=sep, index=False)``.

    The file is written beside ``path`` and renamed into place, so a failed write leaves no part file.
    """
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with _open_output(tmp, compression, path) as fh:
            fh.write(_header(df, sep))
            _write_rows(df, sep, fh)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class TableWriter:
    """Write one table piece by piece: CSV/TSV as :func:`write_delimited` writes them, Parquet through a
    Parquet writer.

    Uncompressed CSV/TSV and Parquet stream (one piece in memory at a time); JSONL and compressed files
    collect the pieces and use :func:`write_table` at the end. The file appears only when every piece
    is written (written beside it, then renamed).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.fmt, self.compression = detect_format(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        self._writer = None
        self._pieces: list[pd.DataFrame] = []

    def __enter__(self) -> TableWriter:
        return self

    def write(self, df: pd.DataFrame) -> None:
        if self.compression is not None or self.fmt not in ("csv", "tsv", "parquet"):
            self._pieces.append(df)
        elif self.fmt == "parquet":
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._tmp, table.schema)
            self._writer.write_table(table)
        else:
            sep = "," if self.fmt == "csv" else "\t"
            if self._writer is None:
                self._writer = self._tmp.open("wb")
                self._writer.write(_header(df, sep))
            _write_rows(df, sep, self._writer)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.close()
        if exc_type is not None:
            self._tmp.unlink(missing_ok=True)
            return
        if self._writer is not None:
            self._tmp.replace(self.path)
        else:
            pieces = self._pieces or [pd.DataFrame()]
            write_table(pd.concat(pieces, ignore_index=True), self.path)
