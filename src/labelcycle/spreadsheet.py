"""Formula-safe cells for sheets people open in spreadsheet programs (CSV/TSV review sheets).

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets (CSV injection, OWASP). On export such a text cell gets a leading
apostrophe, which spreadsheets show as a text marker and do not evaluate; on import a leading apostrophe
followed by one of those characters is removed again, so ids and labels round-trip exactly. Numbers are
left alone (``-3`` as a number is not a formula); only text cells are escaped.
"""

from __future__ import annotations

import pandas as pd

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"


def escape_cell(value: object) -> object:
    """``value`` with a leading apostrophe when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(DANGEROUS + (PREFIX,)):
        return PREFIX + value
    return value


def unescape_cell(value: object) -> object:
    """The inverse of :func:`escape_cell`."""
    if (
        isinstance(value, str)
        and value.startswith(PREFIX)
        and value[1:2] in (*DANGEROUS, PREFIX)
        and len(value) > 1
    ):
        return value[1:]
    return value


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [
        c for c in df.columns if pd.api.types.is_object_dtype(df[c]) or pd.api.types.is_string_dtype(df[c])
    ]


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells (column names included) are formula-safe."""
    out = df.copy()
    for col in _text_columns(out):
        out[col] = out[col].map(escape_cell)
    return out.rename(columns=lambda c: escape_cell(c) if isinstance(c, str) else c)


def unescape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with :func:`escape_frame`'s prefixes removed (cells and column names)."""
    out = df.rename(columns=lambda c: unescape_cell(c) if isinstance(c, str) else c)
    for col in _text_columns(out):
        out[col] = out[col].map(unescape_cell)
    return out
