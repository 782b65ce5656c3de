"""Reading delimited text (CSV, TSV; compressed or not) into a frame of text columns, for :mod:`labelcycle.readers`.

Well-formed uncompressed files are read with ``pyarrow.csv``; everything else (and every malformed file,
whose errors name the line) with pandas.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa

from labelcycle.compressed import CORRUPT_STREAM_ERRORS, InputLimits, decompression_failed, open_compressed
from labelcycle.errors import InputFileError


def read_delimited(
    path: Path,
    sep: str,
    compression: str | None,
    names: tuple[str, ...] | None,
    limits: InputLimits | None = None,
) -> pd.DataFrame:
    if compression is None:
        fast = _read_delimited_arrow(path, sep, names)
        if fast is not None:
            return fast
        return _read_delimited_pandas(path, sep, None, names)
    with open_compressed(path, compression, limits or InputLimits.from_env()) as stream:
        return _read_delimited_pandas(path, sep, stream, names)


_UTF8_BOM = b"\xef\xbb\xbf"


def _read_delimited_arrow(path: Path, sep: str, names: tuple[str, ...] | None) -> pd.DataFrame | None:
    """Read a well-formed uncompressed text file with ``pyarrow.csv`` (multi-threaded, no Python strings).

    Gives the same frame as :func:`_read_delimited_pandas` (every column a string, empty fields ``""``),
    or None for anything out of the ordinary (a parse or encoding error, a BOM, fewer than two columns,
    empty or repeated header names, short rows): those files take the pandas path, which owns the exact
    error messages and pandas' own handling of such files.
    """
    import pyarrow.csv as pacsv

    try:
        with path.open("rb") as fh:
            if fh.read(len(_UTF8_BOM)) == _UTF8_BOM:
                return None
        parse = pacsv.ParseOptions(
            delimiter=sep,
            quote_char=False if sep == "\t" else '"',
            double_quote=True,
            escape_char=False,
            newlines_in_values=sep != "\t",
            ignore_empty_lines=True,
        )
        if names:
            header = list(names)
        else:
            with pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=1 << 16),
                parse_options=parse,
                convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False),
            ) as reader:
                header = list(reader.schema.names)
        if len(header) < 2 or len(set(header)) != len(header) or any(not h for h in header):
            return None
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(names) if names else None, block_size=1 << 24),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
    except (pa.ArrowException, OSError, ValueError):
        return None
    if table.column_names != header:
        return None
    return table.to_pandas()


def _read_delimited_pandas(
    path: Path, sep: str, stream: io.BufferedReader | None, names: tuple[str, ...] | None
) -> pd.DataFrame:
    """Read with pandas from ``path``, or from ``stream`` (its decompressed content) when given."""
    try:
        return pd.read_csv(
            stream if stream is not None else path,
            sep=sep,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            header=None if names else "infer",
            names=list(names) if names else None,
            encoding="utf-8",
            engine="c",
            quoting=3 if sep == "\t" else 0,  # TSV exports carry raw quotes in text fields
        )
    except UnicodeDecodeError:
        line = _first_bad_utf8_line(path) if stream is None else None
        where = f"line {line}" if line else "somewhere inside the compressed file"
        raise InputFileError(
            f"{path}: is not valid UTF-8 ({where}); re-export it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed{''.join(path.suffixes)}`"
        ) from None
    except pd.errors.EmptyDataError:
        raise InputFileError(
            f"{path}: the file has no data; export the table again with a header row"
        ) from None
    except pd.errors.ParserError as exc:
        msg = str(exc).strip().splitlines()[-1]
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", msg)
        if match:
            expected, line, saw = match.groups()
            raise InputFileError(
                f"{path}: ragged row at line {line}: expected {expected} fields, saw {saw}; "
                "fix the row (unquoted separator inside a value?) and ingest again"
            ) from None
        raise InputFileError(f"{path}: cannot parse the file ({msg}); check quoting and separators") from None
    except (OSError, EOFError) as exc:
        raise InputFileError(
            f"{path}: cannot read the file ({exc}); is it complete and not corrupt?"
        ) from None
    except CORRUPT_STREAM_ERRORS as exc:  # a decompressor's own error (lzma, zlib) through the parser
        raise decompression_failed(path, exc) from None


def _first_bad_utf8_line(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            for lineno, raw_line in enumerate(fh, start=1):
                try:
                    raw_line.decode("utf-8")
                except UnicodeDecodeError:
                    return lineno
    except OSError:
        return None
    return None


#: extensions of the Parquet files of a directory data set (lower case)
