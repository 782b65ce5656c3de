"""Item column roles: text, categorical, numeric, embedding or ignored; declared in params or inferred.

:func:`infer_roles` gives every feature column of an items table one role. Columns named in params
``features`` keep the role given there; every other column gets an inferred one:

* a numeric (non-boolean) column is **numeric**;
* a column holding a list of numbers per item is an **embedding**;
* a string column with many distinct, long values (on average at least :data:`TEXT_MIN_WORDS` words or
  :data:`TEXT_MIN_CHARS` characters; at least :data:`TEXT_MIN_DISTINCT` distinct values or half of them
  distinct) is **text**;
* a string column of short values without spaces that are nearly all distinct (an id, a hash) is
  **ignored**, with a note saying how to use it anyway;
* any other column is **categorical**.

The result says which roles were inferred and why, so the stages can print it: free text is never
treated as a category silently.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.errors import ConfigError, SchemaError
from labelcycle.params import FeaturesParams
from labelcycle.readers import SOURCE_ROW
from labelcycle.validation import SOURCE_FILE

ROLES = ("text", "categorical", "numeric", "embedding", "ignore")
#: a string column is long when its values average at least this many words ...
TEXT_MIN_WORDS = 3.0
#: ... or this many characters
TEXT_MIN_CHARS = 30.0
#: and has many distinct values: at least this many, or at least half of its values distinct
TEXT_MIN_DISTINCT = 100
#: an id-like column: at least this many values, at least half distinct, almost never a space in them
ID_MIN_DISTINCT = 50
ID_MAX_SPACED = 0.05
#: values inspected for the length statistics (evenly spread over the column)
SAMPLE = 10_000


@dataclass(frozen=True)
class Embedding:
    """One embedding: a list column (``columns == (name,)``, ``is_list``) or a group of numeric columns."""

    name: str
    columns: tuple[str, ...]
    is_list: bool


@dataclass(frozen=True)
class Roles:
    """The role of every feature column of an items table.

    Attributes:
        text, categorical, numeric, ignore: column names per role, in table order.
        embedding: the embeddings, each a list column or a declared group of numeric columns.
        inferred: the columns whose role was inferred (not declared in params).
        notes: one sentence per column that was ignored without being declared, saying why.
    """

    text: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    embedding: tuple[Embedding, ...] = ()
    ignore: tuple[str, ...] = ()
    inferred: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        """The item columns the features are made of (ignored columns excluded)."""
        emb = [c for e in self.embedding for c in e.columns]
        return [*self.numeric, *self.categorical, *emb, *self.text]

    @property
    def has_matrix_features(self) -> bool:
        """Text or embedding features: the model takes a matrix, not a plain frame of columns."""
        return bool(self.text or self.embedding)

    def describe(self) -> str:
        """One line per role, and the notes: what the stages print."""
        parts = []
        for role in ROLES:
            names = [e.name for e in self.embedding] if role == "embedding" else list(getattr(self, role))
            if names:
                marked = [f"{n}*" if n in self.inferred else n for n in names]
                parts.append(f"{role} {marked}")
        text = (
            "item features: "
            + ("; ".join(parts) if parts else "none")
            + " (* inferred; set features in params.yaml)"
        )
        return "\n".join([text, *self.notes])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Roles:
        emb = tuple(
            Embedding(e["name"], tuple(e["columns"]), bool(e["is_list"])) for e in d.get("embedding", ())
        )
        return cls(
            *(tuple(d.get(r, ())) for r in ("text", "categorical", "numeric")),
            emb,
            tuple(d.get("ignore", ())),
            tuple(d.get("inferred", ())),
            tuple(d.get("notes", ())),
        )


def is_vector(value: Any) -> bool:
    """Whether one cell holds a vector of numbers (a list, tuple or 1-d array)."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and (value.dtype.kind in "fiub" or value.size == 0)
    return isinstance(value, list | tuple) and all(
        isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value
    )


def _first_present(values: pd.Series) -> Any:
    present = values.dropna()
    return present.iloc[0] if len(present) else None


def is_numeric_column(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def string_stats(values: pd.Series) -> dict[str, float]:
    """Distinct count and share, mean length in characters and words, share of values with a space."""
    present = values.dropna()
    n = len(present)
    if n == 0:
        return {"n": 0, "distinct": 0, "distinct_share": 0.0, "chars": 0.0, "words": 0.0, "spaced": 0.0}
    strings = present.astype(str)
    distinct = int(strings.nunique())
    sample = strings.iloc[:: max(1, n // SAMPLE)]
    return {
        "n": n,
        "distinct": distinct,
        "distinct_share": distinct / n,
        "chars": float(sample.str.len().mean()),
        "words": float(sample.str.split().str.len().mean()),
        "spaced": float(sample.str.contains(r"\s", regex=True).mean()),
    }


def infer_role(values: pd.Series) -> tuple[str, str | None]:
    """The inferred role of one column, and a note when it is ignored."""
    if is_numeric_column(values):
        return "numeric", None
    if pd.api.types.is_bool_dtype(values):
        return "categorical", None
    if is_vector(_first_present(values)):
        return "embedding", None
    s = string_stats(values)
    long = s["words"] >= TEXT_MIN_WORDS or s["chars"] >= TEXT_MIN_CHARS
    many = s["distinct"] >= TEXT_MIN_DISTINCT or s["distinct_share"] >= 0.5
    if long and many:
        return "text", None
    if s["distinct"] >= ID_MIN_DISTINCT and s["distinct_share"] >= 0.5 and s["spaced"] <= ID_MAX_SPACED:
        return "ignore", (
            f"column {values.name!r} ignored: id-like ({s['distinct']:,} distinct short values without "
            "spaces in "
            f"{s['n']:,} items); name it in features.categorical (or features.text) to use it"
        )
    return "categorical", None


def _declared(features: FeaturesParams, columns: list[str]) -> tuple[dict[str, str], list[Embedding]]:
    """Declared role per column, and the declared embeddings (list columns and glob groups)."""
    role_of: dict[str, str] = {}
    for role in ("text", "categorical", "numeric", "ignore"):
        for name in getattr(features, role):
            if name not in columns:
                raise ConfigError(
                    f"params.yaml features.{role} names {name!r}, which is not a column of the items "
                    f"(columns: {columns}); fix the name or remove it"
                )
            role_of[name] = role
    embeddings = []
    for entry in features.embedding:
        matched = [entry] if entry in columns else [c for c in columns if fnmatch.fnmatchcase(c, entry)]
        if not matched:
            raise ConfigError(
                f"params.yaml features.embedding names {entry!r}, which matches no column of the items "
                f"(columns: {columns}); give a list column or a glob of numeric columns such as emb_*"
            )
        clash = [c for c in matched if c in role_of]
        if clash:
            raise ConfigError(
                f"params.yaml features: column(s) {clash} are in features.embedding ({entry!r}) and in "
                f"features.{role_of[clash[0]]}; give each column one role"
            )
        embeddings.append(
            Embedding(entry, tuple(matched), is_list=False)
        )  # list-ness is checked on the values
        for c in matched:
            role_of[c] = "embedding"
    return role_of, embeddings


def infer_roles(items: pd.DataFrame, features: FeaturesParams | None = None) -> Roles:
    """Every feature column's role: as declared in ``features``, else inferred (see the module docstring).

    Raises:
        ConfigError: ``features`` names a column the items do not have, or gives a column two roles.
        SchemaError: a declared embedding group holds a non-numeric column.
    """
    features = features or FeaturesParams()
    columns = schema.feature_columns(list(items.columns))
    role_of, embeddings = _declared(features, columns)
    groups = []
    for emb in embeddings:
        if len(emb.columns) == 1 and is_vector(_first_present(items[emb.columns[0]])):
            groups.append(Embedding(emb.name, emb.columns, is_list=True))
            continue
        bad = [c for c in emb.columns if not is_numeric_column(items[c])]
        if bad:
            raise SchemaError(
                f"features.embedding {emb.name!r}: column(s) {bad} hold no numbers; an embedding is a list "
                "of numbers per item or a group of numeric columns"
            )
        groups.append(Embedding(emb.name, emb.columns, is_list=False))
    out: dict[str, list[str]] = {r: [] for r in ("text", "categorical", "numeric", "ignore")}
    inferred, notes = [], []
    for col in columns:
        role = role_of.get(col)
        if role == "embedding":
            continue
        if role is None:
            role, note = infer_role(items[col])
            inferred.append(col)
            if note:
                notes.append(note)
            if role == "embedding":
                groups.append(Embedding(col, (col,), is_list=True))
                continue
        out[role].append(col)
    return Roles(
        tuple(out["text"]),
        tuple(out["categorical"]),
        tuple(out["numeric"]),
        tuple(groups),
        tuple(out["ignore"]),
        tuple(inferred),
        tuple(notes),
    )


def value_kind(values: pd.Series) -> str | None:
    """``numeric`` when every present value is a number, ``text`` when one is not, None when all empty."""
    if is_numeric_column(values):
        return "numeric"
    present = values.dropna()
    present = present[present.astype(str).str.strip() != ""]
    if not len(present):
        return None
    if pd.to_numeric(present.iloc[:1000], errors="coerce").isna().any():  # text shows in its first values
        return "text"
    return "numeric" if pd.to_numeric(present, errors="coerce").notna().all() else "text"


def check_batch_kinds(items: pd.DataFrame, batch_column: str, features: FeaturesParams | None = None) -> None:
    """Refuse a feature column that holds numbers in one batch and text in another (unless declared).

    A column declared text or categorical in params takes both; any other column would silently change
    its role with the batches it is read from.

    Raises:
        SchemaError: naming the column, a batch of each kind and an example value.
    """
    features = features or FeaturesParams()
    if batch_column not in items.columns or items[batch_column].nunique() < 2:
        return
    declared = {*features.text, *features.categorical, *features.ignore}
    for col in schema.feature_columns(list(items.columns)):
        if col in (batch_column, SOURCE_ROW, SOURCE_FILE) or col in declared:
            continue
        kinds = {}
        for batch, values in items.groupby(batch_column, observed=True, sort=False)[col]:
            kind = value_kind(values)
            if kind is not None:
                kinds.setdefault(kind, (batch, values))
        if len(kinds) > 1:
            (num_batch, _), (text_batch, text_values) = kinds["numeric"], kinds["text"]
            example = next(
                v for v in text_values.dropna().astype(str) if pd.isna(pd.to_numeric(v, errors="coerce"))
            )
            raise SchemaError(
                f"items column {col!r} holds numbers in raw batch {num_batch} but text in raw batch "
                f"{text_batch} "
                f"(e.g. {example[:40]!r}); fix the batch, or declare the column's role in params.yaml "
                "(features.text or features.categorical) to accept both"
            )
