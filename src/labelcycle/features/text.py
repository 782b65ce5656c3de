"""Text columns as word and character n-gram TF-IDF (scikit-learn), fitted on training items only.

Every text column gets two vectorisers, words (1 to ``word_ngram_max``-grams) and characters within word
boundaries (``char_wb``), each keeping the ``max_features`` most frequent n-grams seen in at least
``min_df`` training items (sublinear tf, l2-normalised rows). The vocabulary is learnt from at most
:data:`FIT_SAMPLE` items (evenly spread), so fitting memory stays bounded on large item tables. A fitted
vectoriser is plain data (its n-grams and idf weights), saved as JSON beside the model, never pickled.

:func:`text_values` is the one gate text goes through, at fit and at predict: it refuses values that
are not valid UTF-8 and values longer than ``max_chars``, with the column and item named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from labelcycle import schema
from labelcycle.errors import ValidationError
from labelcycle.params import TfidfParams

#: most items the vocabulary and idf weights are learnt from
FIT_SAMPLE = 200_000
ANALYZERS = ("word", "char_wb")


def _item(items: pd.DataFrame, row: int) -> str:
    if schema.ITEM_ID in items.columns:
        return f"item {items[schema.ITEM_ID].iloc[row]!r}"
    return f"row {row}"


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")  # UnicodeDecodeError is reported by the caller
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def text_values(items: pd.DataFrame, column: str, max_chars: int) -> list[str]:
    """The column's values as strings (missing: empty), checked for encoding and length.

    Raises:
        ValidationError: a value is not valid UTF-8, or longer than ``max_chars`` characters.
    """
    values = items[column]
    out: list[str] = []
    present = values.notna().to_numpy()
    for row, (value, has) in enumerate(zip(values.tolist(), present, strict=True)):
        if not has:
            out.append("")
            continue
        try:
            text = _as_text(value)
            text.encode("utf-8")  # lone surrogates (bytes decoded with errors="surrogateescape") fail here
        except UnicodeError as exc:
            raise ValidationError(
                f"text column {column!r}, {_item(items, row)}: not valid UTF-8 ({exc.reason} at byte "
                f"{getattr(exc, 'start', '?')}); re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"
            ) from None
        if len(text) > max_chars:
            raise ValidationError(
                f"text column {column!r}, {_item(items, row)}: {len(text):,} characters, more than "
                f"features.tfidf.max_chars ({max_chars:,}); truncate such values before ingesting them, or "
                "raise features.tfidf.max_chars in params.yaml"
            )
        out.append(text)
    return out


@dataclass(frozen=True)
class TextVectorizer:
    """One fitted TF-IDF vectoriser of one text column: its analyser, n-gram range, n-grams and idf."""

    column: str
    analyzer: str
    ngram_range: tuple[int, int]
    vocabulary: tuple[str, ...]
    idf: np.ndarray

    def _sklearn(self) -> TfidfVectorizer:
        vec = TfidfVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            sublinear_tf=True,
            dtype=np.float32,
            vocabulary={term: i for i, term in enumerate(self.vocabulary)},
        )
        vec.idf_ = self.idf
        return vec

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """Items x n-grams TF-IDF (float32 CSR)."""
        if not self.vocabulary:
            return sparse.csr_matrix((len(texts), 0), dtype=np.float32)
        return self._sklearn().transform(texts).tocsr()

    @property
    def feature_names(self) -> list[str]:
        kind = "word" if self.analyzer == "word" else "char"
        return [f"{self.column}:{kind}:{term}" for term in self.vocabulary]

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "analyzer": self.analyzer,
            "ngram_range": list(self.ngram_range),
            "vocabulary": list(self.vocabulary),
            "idf": [float(x) for x in self.idf],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextVectorizer:
        return cls(
            d["column"], d["analyzer"], (int(d["ngram_range"][0]), int(d["ngram_range"][1])),
            tuple(d["vocabulary"]), np.asarray(d["idf"], dtype=np.float64),
        )


def ngram_range(analyzer: str, p: TfidfParams) -> tuple[int, int]:
    return (1, p.word_ngram_max) if analyzer == "word" else (p.char_ngram_min, p.char_ngram_max)


def fit_text(column: str, texts: list[str], p: TfidfParams) -> list[TextVectorizer]:
    """A word and a character vectoriser of one column, learnt from these (training) texts.

    Raises:
        ValidationError: every text is empty.
    """
    if not any(t.strip() for t in texts):
        raise ValidationError(
            f"text column {column!r} is empty for every training item; fill it, or give it another role "
            "in params.yaml (features.ignore)"
        )
    step = max(1, -(-len(texts) // FIT_SAMPLE))
    sample = texts[::step]
    out = []
    for analyzer in ANALYZERS:
        rng = ngram_range(analyzer, p)
        min_df = min(p.min_df, len(sample))
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=rng, sublinear_tf=True, dtype=np.float32,
                              min_df=min_df, max_features=p.max_features)
        try:
            vec.fit(sample)
        except ValueError:  # no n-gram of this analyser occurs min_df times (tiny or one-word data)
            out.append(TextVectorizer(column, analyzer, rng, (), np.zeros(0)))
            continue
        vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        out.append(TextVectorizer(column, analyzer, rng, tuple(vocab), np.asarray(vec.idf_, dtype=np.float64)))
    return out
