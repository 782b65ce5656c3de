"""Read annotation, item and gold tables from CSV, TSV, Parquet or JSONL, chosen by extension.

Every file-level fault (missing, empty, header only, ragged rows, wrong encoding, corrupt Parquet,
broken JSON line, missing columns) raises :class:`~labelcycle.errors.InputFileError` or
:class:`~labelcycle.errors.SchemaError` naming the file, the row or column, and what to do. Row-level
faults (an empty id, an unknown label, a bad number) are not the reader's business: the validation step
quarantines those rows with a reason each.

Text formats are read with every column as a string so that validation sees the values as written
(``1`` and ``1.0`` stay distinct, ``NA``, ``none`` and ``null`` stay text). Only an empty cell is
missing, unless the delivery declares its own markers (:attr:`ColumnMap.na_values`, ``--na-values``).

Compressed files are read through :func:`labelcycle.compressed.open_compressed`, which stops at
:class:`~labelcycle.compressed.InputLimits` (a decompression bomb is refused early, with little memory).
:func:`write_table` writes the same formats.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from labelcycle import schema
from labelcycle.compressed import (
    CORRUPT_STREAM_ERRORS,
    InputLimits,
    decompression_failed,
    open_compressed,
    read_parquet_limited,
)
from labelcycle.delimited import read_delimited
from labelcycle.errors import InputFileError, SchemaError

#: extension (lower case, compression suffix removed) -> format name
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}

#: 1-based data-row number of each row as read, kept beside the data so quarantine reasons can point at it
SOURCE_ROW = "_source_row"


#: pandas' default text dtype (what Arrow text becomes)
_TEXT = pd.Series(["x"]).dtype


@dataclass(frozen=True)
class ColumnMap:
    """How a file names the contract's columns (``--item-col`` etc.), plus headerless files.

    Attributes:
        item_col: the file's name for ``item_id``.
        annotator_col: the file's name for ``annotator_id``.
        label_col: the file's name for ``label``.
        names: column names for a file without a header row (e.g. ``worker,item,label``).
        extra: any further renames, file name -> contract name.
        na_values: cell values the file uses for "no value" (``--na-values NA,null``), matched exactly
            after trimming spaces; they are read as empty cells. Without them only an empty cell is empty.
    """

    item_col: str | None = None
    annotator_col: str | None = None
    label_col: str | None = None
    names: tuple[str, ...] | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    na_values: tuple[str, ...] = ()

    def renames(self) -> dict[str, str]:
        out = dict(self.extra)
        for source, target in (
            (self.item_col, schema.ITEM_ID),
            (self.annotator_col, schema.ANNOTATOR_ID),
            (self.label_col, schema.LABEL),
        ):
            if source and source != target:
                out[source] = target
        return out

    def to_dict(self) -> dict[str, object]:
        """The mapping as JSON (batch manifests). ``na_values`` appears only when declared, so a mapping
        without markers serialises (and digests) as it did before markers existed."""
        out: dict[str, object] = {
            "item_col": self.item_col,
            "annotator_col": self.annotator_col,
            "label_col": self.label_col,
            "names": list(self.names) if self.names else None,
            "extra": dict(self.extra),
        }
        if self.na_values:
            out["na_values"] = list(self.na_values)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> ColumnMap:
        if not data:
            return cls()
        names = data.get("names")
        return cls(
            item_col=data.get("item_col"),  # type: ignore[arg-type]
            annotator_col=data.get("annotator_col"),  # type: ignore[arg-type]
            label_col=data.get("label_col"),  # type: ignore[arg-type]
            names=tuple(names) if names else None,  # type: ignore[arg-type]
            extra=dict(data.get("extra") or {}),  # type: ignore[call-overload]
            na_values=tuple(data.get("na_values") or ()),  # type: ignore[arg-type]
        )


def detect_format(path: Path) -> tuple[str, str | None]:
    """The format and compression of ``path`` from its extension.

    Raises:
        InputFileError: the extension is not one labelcycle reads.
    """
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        compression = _COMPRESSIONS[suffixes.pop()]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FORMATS:
        raise InputFileError(
            f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
            f"use one of {sorted(set(FORMATS))} (optionally compressed: {sorted(_COMPRESSIONS)})"
        )
    return FORMATS[ext], compression


def read_table(
    path: str | Path, kind: str, columns: ColumnMap | None = None, limits: InputLimits | None = None
) -> pd.DataFrame:
    """Read one table of ``kind`` (annotations, items, gold) and map its columns onto the contract.

    The result has the contract's column names, string ids, and a ``_source_row`` column with the
    1-based data-row number (the header is not a data row). Cells equal to one of the declared
    ``columns.na_values`` are read as empty.

    Args:
        path: the file (the format and compression come from its extension), or a directory of
            Parquet files read as one data set.
        kind: ``annotations``, ``items`` or ``gold``.
        columns: how the file names the contract's columns, and its missing-value markers.
        limits: how far a compressed file may expand (default:
            :meth:`~labelcycle.compressed.InputLimits.from_env`).

    Raises:
        InputFileError: the file is missing, unreadable, empty, malformed or expands past ``limits``.
        SchemaError: a required column is missing.
        ConfigError: ``LABELCYCLE_MAX_INPUT_BYTES`` is not a size.
    """
    path = Path(path)
    columns = columns or ColumnMap()
    limits = limits if limits is not None else InputLimits.from_env()
    if not path.exists():
        raise InputFileError(f"{path}: no such file; check the path (it is resolved from {Path.cwd()})")
    if path.is_dir():
        fmt, compression = "parquet", None
    elif path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty; export the {kind} table again with a header row")
    else:
        fmt, compression = detect_format(path)
    if fmt in ("csv", "tsv"):
        df = read_delimited(path, "," if fmt == "csv" else "\t", compression, columns.names, limits)
    elif fmt == "parquet":
        df = _read_parquet(path, limits)
    else:
        df = _read_jsonl(path, compression, limits)
    if df.shape[1] == 0:
        raise InputFileError(f"{path}: no columns found; the {kind} table needs a header row")
    if len(df) == 0:
        raise InputFileError(
            f"{path}: has a header but no data rows; there is nothing to ingest (was the export cut short?)"
        )
    df.columns = map_columns(path, kind, [str(c).strip() for c in df.columns], columns)
    if columns.na_values:
        _blank_markers(df, columns.na_values)
    df[SOURCE_ROW] = range(1, len(df) + 1)
    return df.reset_index(drop=True)


def map_columns(path: Path, kind: str, found: list[str], columns: ColumnMap) -> list[str]:
    """The contract's names for a table's columns ``found`` (in order) under ``columns``' mapping.

    Raises:
        SchemaError: a mapped column is not there, two columns share a name after mapping, or a column
            the ``kind`` of table requires is missing (the message names the options that map it).
    """
    spec = schema.SPECS[kind]
    renames = columns.renames()
    absent = [src for src in renames if src not in found]
    if absent:
        raise SchemaError(
            f"{path}: the mapped column(s) {absent} are not in the file; its columns are {found}"
        )
    mapped = [renames.get(c, c) for c in found]
    dupes = sorted({c for c in mapped if mapped.count(c) > 1})
    if dupes:
        raise SchemaError(
            f"{path}: column(s) {dupes} appear more than once (after mapping); rename one of them"
        )
    missing = [c for c in spec.required if c not in mapped]
    if missing:
        prefix = "gold-" if kind == "gold" else ""  # a gold file has its own column options
        hint = " ".join(
            f"--{prefix}{flag}"
            for col, flag in (
                (schema.ITEM_ID, "item-col"),
                (schema.ANNOTATOR_ID, "annotator-col"),
                (schema.LABEL, "label-col"),
            )
            if col in missing
        )
        raise SchemaError(
            f"{path}: missing required column(s) {missing} for the {kind} table; found {mapped}. "
            f"Rename them in the file or map them with {hint or 'the column options'}"
        )
    return mapped


def _blank_markers(df: pd.DataFrame, markers: tuple[str, ...]) -> None:
    """Set the text cells equal to one of ``markers`` (after trimming spaces) to ``""``, in place."""
    wanted = {str(m).strip() for m in markers}
    for col in df.columns:
        values = df[col]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        hit = values.notna() & values.astype(str).str.strip().isin(wanted)
        if hit.any():
            df[col] = values.where(~hit, "")


PARQUET_SUFFIXES = tuple(ext for ext, fmt in FORMATS.items() if fmt == "parquet")


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files of a directory data set, sorted (:func:`parquet_listing`)."""
    return parquet_listing(path)[0]


def parquet_listing(path: Path) -> tuple[list[Path], list[Path]]:
    """A directory data set: its Parquet files (``.parquet``/``.pq``, at any depth, sorted) and the
    metadata files left out (any name, or folder on the way, starting with ``.`` or ``_``, such as
    Spark's ``_SUCCESS`` or ``.crc`` files).

    Any other file is refused rather than skipped: a data set is one format, and a stray CSV or notes
    file beside the parts would otherwise be dropped without a word.

    Raises:
        InputFileError: the directory holds no Parquet file, or a file that is neither Parquet nor metadata.
    """
    path = Path(path)
    parts, skipped, foreign = [], [], []
    for p in sorted(path.rglob("*")):
        if p.is_dir():
            continue
        if any(part.startswith((".", "_")) for part in p.relative_to(path).parts):
            skipped.append(p)
        elif p.suffix.lower() in PARQUET_SUFFIXES:
            parts.append(p)
        else:
            foreign.append(p)
    if foreign:
        names = ", ".join(str(p.relative_to(path)) for p in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise InputFileError(
            f"{path}: a directory is read as one Parquet data set, but it also holds {len(foreign)} other "
            f"file(s) ({names}{more}); move them out (a file of another format is a delivery of its own: "
            "pass it as a file), or start their names with '_' to mark them as metadata"
        )
    if not parts:
        raise InputFileError(
            f"{path}: is a directory without .parquet files; pass a file, or a directory of Parquet files "
            "(one data set, same columns)"
        )
    return parts, skipped


def _read_parquet(path: Path, limits: InputLimits | None = None) -> pd.DataFrame:
    """One Parquet file, or a directory of Parquet files read as one data set (in file-name order); each
    file held to the input size limit (:func:`~labelcycle.compressed.read_parquet_limited`)."""
    limits = limits or InputLimits.from_env()
    try:
        if path.is_dir():
            tables = [read_parquet_limited(f, limits) for f in parquet_files(path)]
            # widths may differ between files written by different tools (string/large_string, int32/int64)
            table = pa.concat_tables(tables, promote_options="permissive")
        else:
            table = read_parquet_limited(path, limits)
    except (pa.ArrowException, OSError) as exc:
        raise InputFileError(
            f"{path}: is not a readable Parquet file ({exc}); it may be truncated or not Parquet at all - "
            "write it again"
        ) from None
    ids = (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL)
    for col in ids:  # text and integer ids as text in Arrow (one pass, no Python object per value)
        if col in table.column_names:
            values = table.column(col)
            if pa.types.is_dictionary(values.type):
                values = values.cast(values.type.value_type)
            if pa.types.is_integer(values.type):
                values = values.cast(pa.string())
            if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                table = table.set_column(table.column_names.index(col), col, pc.fill_null(values, ""))
    df = table.to_pandas()
    for col in ids:  # any other type (floats: "1.0", as Python prints them) value by value
        if col in df.columns and df[col].dtype != _TEXT:
            df[col] = df[col].map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v))
    return df


def _open_text(path: Path, compression: str | None, limits: InputLimits) -> io.TextIOBase:
    if compression is None:
        return path.open("rt", encoding="utf-8")
    return io.TextIOWrapper(open_compressed(path, compression, limits), encoding="utf-8")


def _read_jsonl(path: Path, compression: str | None, limits: InputLimits | None = None) -> pd.DataFrame:
    records = []
    try:
        with _open_text(path, compression, limits or InputLimits.from_env()) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputFileError(
                        f"{path}: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}); "
                        "fix or remove that line and ingest again"
                    ) from None
                if not isinstance(obj, dict):
                    raise InputFileError(
                        f"{path}: line {lineno} is a JSON {type(obj).__name__}, not an object; "
                        'each line must be one record like {"item_id": ..., "label": ...}'
                    )
                records.append(obj)
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: is not valid UTF-8 ({exc.reason}); re-export it as UTF-8") from None
    except CORRUPT_STREAM_ERRORS as exc:  # a corrupt or truncated compressed stream
        raise decompression_failed(path, exc) from None
    df = pd.DataFrame.from_records(records)
    for col in df.columns:
        df[col] = df[col].map(lambda v: "" if v is None else (v if isinstance(v, str) else json.dumps(v)))
    return df


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write CSV, TSV, Parquet or JSONL by the extension of ``path`` (compressed by a further suffix).

    CSV and TSV are formatted with Arrow (:func:`labelcycle.table_writer.write_delimited`), byte for byte
    as ``df.to_csv(index=False)`` writes them (save that a carriage return in a cell is quoted), in a
    fraction of pandas' time.

    Raises:
        InputFileError: the extension is not one labelcycle writes.
    """
    fmt, compression = detect_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, compression=compression, date_format="iso")
    else:
        from labelcycle.table_writer import write_delimited

        write_delimited(df, path, "," if fmt == "csv" else "\t", compression)
