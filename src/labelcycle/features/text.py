"""Text columns as word and character n-gram TF-IDF (scikit-learn), fitted on training items only.

Every text column is read by two analysers: words (1- to ``word_ngram_max``-grams) and characters within
word boundaries (``char_wb``, ``char_ngram_min`` to ``char_ngram_max``). Of the n-grams found in at least
``min_df`` training items (at most :data:`VOCAB_CAP` per column and analyser, the most frequent, learnt from
at most :data:`FIT_SAMPLE` training items, so memory stays bounded), the model keeps the ``max_features``
most associated with the training labels over all text columns together (chi-squared), and each kept
n-gram becomes one feature: its TF-IDF weight ``(1 + log tf) * idf`` (sublinear tf, smoothed idf). Rows are
not length-normalised: trees split one feature at a time, and an unnormalised weight depends on the item
and the n-gram alone, so training and scoring see the same value whatever else was kept.

A fitted vectoriser is plain data (its n-grams and idf weights), saved as JSON beside the model, never
pickled. :func:`text_values` is the one gate text goes through, at fit and at predict: it refuses values
that are not valid UTF-8 and values longer than ``max_chars``, with the column and item named.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.feature_selection import chi2

from labelcycle import schema
from labelcycle.errors import ValidationError
from labelcycle.params import TfidfParams

#: most training items the n-gram vocabulary and idf weights are learnt from (evenly spread)
FIT_SAMPLE = 50_000
#: most n-grams per text column and analyser considered for selection (the most frequent)
VOCAB_CAP = 100_000
ANALYZERS = ("word", "char_wb")


def _item(items: pd.DataFrame, row: int) -> str:
    if schema.ITEM_ID in items.columns:
        return f"item {items[schema.ITEM_ID].iloc[row]!r}"
    return f"row {row}"


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")  # a UnicodeDecodeError is reported by the caller
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
                f"text column {column!r}, {_item(items, row)}: not valid UTF-8 ({exc.reason} at position "
                f"{getattr(exc, 'start', '?')}); re-encode the file as UTF-8 "
                "(e.g. `iconv -f latin1 -t utf-8`)"
            ) from None
        if len(text) > max_chars:
            raise ValidationError(
                f"text column {column!r}, {_item(items, row)}: {len(text):,} characters, more than "
                f"features.tfidf.max_chars ({max_chars:,}); truncate such values before ingesting them, or "
                "raise features.tfidf.max_chars in params.yaml"
            )
        out.append(text)
    return out


def check_not_empty(column: str, texts: Sequence[str]) -> None:
    """Raises ValidationError when every training text of ``column`` is empty."""
    if not any(t.strip() for t in texts):
        raise ValidationError(
            f"text column {column!r} is empty for every training item; fill it, or give it another role "
            "in params.yaml (features.ignore)"
        )


def ngram_range(analyzer: str, p: TfidfParams) -> tuple[int, int]:
    return (1, p.word_ngram_max) if analyzer == "word" else (p.char_ngram_min, p.char_ngram_max)


def sample_rows(n: int) -> np.ndarray:
    """At most :data:`FIT_SAMPLE` row positions, evenly spread (all rows when there are fewer)."""
    return np.arange(0, n, max(1, -(-n // FIT_SAMPLE)))


def idf_weights(df: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smoothed idf: ``ln((1 + n) / (1 + df)) + 1``."""
    return np.log((1.0 + n_docs) / (1.0 + df)) + 1.0


def weigh(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """``(1 + log tf) * idf`` of a count matrix (zeros stay zero)."""
    out = counts.astype(np.float64, copy=True).tocsr()
    out.data = 1.0 + np.log(out.data)
    return (out @ sparse.diags(idf)).tocsr()


@dataclass(frozen=True)
class NgramCounts:
    """The n-grams of one column and analyser on training texts: vocabulary, lengths, df and counts."""

    column: str
    analyzer: str
    terms: np.ndarray  # object array of n-grams
    length: np.ndarray  # n-gram length (words or characters)
    df: np.ndarray  # training items holding each n-gram
    n_docs: int
    counts: sparse.csr_matrix  # texts x terms

    @classmethod
    def fit(
        cls, column: str, analyzer: str, texts: list[str], rng: tuple[int, int], min_df: int
    ) -> NgramCounts:
        vec = CountVectorizer(
            analyzer=analyzer,
            ngram_range=rng,
            min_df=min(min_df, len(texts)),
            max_features=VOCAB_CAP,
            dtype=np.float32,
        )
        try:
            counts = vec.fit_transform(texts).tocsr()
        except ValueError:  # no n-gram of this analyser occurs min_df times (tiny or one-word data)
            return cls(
                column,
                analyzer,
                np.array([], dtype=object),
                np.zeros(0, int),
                np.zeros(0),
                len(texts),
                sparse.csr_matrix((len(texts), 0), dtype=np.float32),
            )
        terms = np.empty(len(vec.vocabulary_), dtype=object)
        for term, j in vec.vocabulary_.items():
            terms[j] = term
        length = np.array([t.count(" ") + 1 if analyzer == "word" else len(t) for t in terms], dtype=np.int64)
        df = np.bincount(counts.indices, minlength=len(terms)).astype(np.float64)
        return cls(column, analyzer, terms, length, df, len(texts), counts)

    def transform_counts(self, texts: list[str], rng: tuple[int, int]) -> sparse.csr_matrix:
        """Counts of this vocabulary's n-grams in other texts."""
        if not len(self.terms) or not len(texts):
            return sparse.csr_matrix((len(texts), len(self.terms)), dtype=np.float32)
        vec = CountVectorizer(
            analyzer=self.analyzer,
            ngram_range=rng,
            dtype=np.float32,
            vocabulary={t: j for j, t in enumerate(self.terms)},
        )
        return vec.transform(texts).tocsr()

    def mask(self, rng: tuple[int, int], min_df: int) -> np.ndarray:
        """The n-grams a fit with this range and ``min_df`` would have found."""
        return (self.length >= rng[0]) & (self.length <= rng[1]) & (self.df >= min(min_df, self.n_docs))

    def weighted(self, mask: np.ndarray) -> sparse.csr_matrix:
        idf = idf_weights(self.df[mask], self.n_docs)
        return weigh(self.counts[:, mask], idf)

    def vectorizer(self, keep: np.ndarray, rng: tuple[int, int], norm: str | None = None) -> TextVectorizer:
        """The fitted vectoriser of the kept n-grams (``keep``: term positions)."""
        return TextVectorizer(
            self.column,
            self.analyzer,
            rng,
            tuple(self.terms[keep]),
            idf_weights(self.df[keep], self.n_docs),
            norm,
        )


def select(blocks: list[sparse.csr_matrix], y: np.ndarray | None, k: int) -> list[np.ndarray]:
    """Per block, the positions of the ``k`` columns over all blocks most associated with ``y`` (chi2;
    without labels: the most frequent)."""
    sizes = [b.shape[1] for b in blocks]
    if not sum(sizes):
        return [np.zeros(0, dtype=np.int64) for _ in blocks]
    X = sparse.hstack(blocks, format="csr")
    if y is not None and len(np.unique(y)) > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.nan_to_num(chi2(X, y)[0])
    else:
        score = np.bincount(X.indices, minlength=X.shape[1]).astype(np.float64)
    keep = np.sort(np.argsort(-score, kind="stable")[:k])
    edges = np.cumsum([0, *sizes])
    return [keep[(keep >= lo) & (keep < hi)] - lo for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class TextVectorizer:
    """One fitted vectoriser of one text column and analyser: its n-gram range, kept n-grams and idf."""

    column: str
    analyzer: str
    ngram_range: tuple[int, int]
    vocabulary: tuple[str, ...]
    idf: np.ndarray
    norm: str | None = None  # "l2": rows scaled to unit length (the linear text score's input)

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        """Items x kept n-grams, ``(1 + log tf) * idf`` (CSR), l2-normalised rows when ``norm`` says so."""
        if not self.vocabulary or not len(texts):
            return sparse.csr_matrix((len(texts), len(self.vocabulary)), dtype=np.float64)
        vec = TfidfVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            sublinear_tf=True,
            norm=self.norm,
            vocabulary={term: i for i, term in enumerate(self.vocabulary)},
        )
        vec.idf_ = self.idf
        return vec.transform(texts).tocsr()

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
            "norm": self.norm,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextVectorizer:
        return cls(
            d["column"],
            d["analyzer"],
            (int(d["ngram_range"][0]), int(d["ngram_range"][1])),
            tuple(d["vocabulary"]),
            np.asarray(d["idf"], dtype=np.float64),
            d.get("norm"),
        )


def fit_text(texts: dict[str, list[str]], y: np.ndarray | None, p: TfidfParams) -> list[TextVectorizer]:
    """The fitted vectorisers (a word and a character one per column) of these training texts.

    Args:
        texts: the training texts per text column (same rows in every column).
        y: the training labels (integer codes) the n-grams are selected by, or None (most frequent).
        p: params ``features.tfidf``.

    Raises:
        ValidationError: a column is empty for every training item.
    """
    for column, values in texts.items():
        check_not_empty(column, values)
    rows = sample_rows(len(next(iter(texts.values()))) if texts else 0)
    counts = [
        NgramCounts.fit(col, analyzer, [values[i] for i in rows], ngram_range(analyzer, p), p.min_df)
        for col, values in texts.items()
        for analyzer in ANALYZERS
    ]
    blocks = [c.weighted(np.ones(len(c.terms), dtype=bool)) for c in counts]
    keeps = select(blocks, None if y is None else np.asarray(y)[rows], p.max_features)
    return [c.vectorizer(keep, ngram_range(c.analyzer, p)) for c, keep in zip(counts, keeps, strict=True)]


def widest(p: TfidfParams, space: dict[str, list]) -> TfidfParams:
    """The settings that find every n-gram any setting of a search ``space`` (``[low, high, kind]`` per
    ``features.tfidf`` key) or ``p`` can find: the longest n-grams and the lowest ``min_df``."""
    lo = {k: int(v[0]) for k, v in space.items()}
    hi = {k: int(v[1]) for k, v in space.items()}
    return TfidfParams(
        word_ngram_max=max(p.word_ngram_max, hi.get("word_ngram_max", 0)),
        char_ngram_min=min(p.char_ngram_min, lo.get("char_ngram_min", p.char_ngram_min)),
        char_ngram_max=max(p.char_ngram_max, hi.get("char_ngram_max", 0)),
        max_features=p.max_features,
        min_df=min(p.min_df, lo.get("min_df", p.min_df)),
        max_chars=p.max_chars,
    )


class TextSearchCache:
    """Text features for many settings of one tuning search, from one pass over the texts.

    The n-grams of the training texts are counted once at the :func:`widest` settings; a setting is then
    a choice of columns (the n-grams of its lengths found in ``min_df`` items), weighed and selected as
    :func:`fit_text` does, so trials that differ only in text settings cost no new pass over the texts.
    (Up to :data:`VOCAB_CAP`, which applies to the widest vocabulary here, the columns are those a fit
    with the setting finds.)
    """

    def __init__(
        self, train: dict[str, list[str]], valid: dict[str, list[str]], y: np.ndarray, wide: TfidfParams
    ) -> None:
        for column, values in train.items():
            check_not_empty(column, values)
        rows = sample_rows(len(y))
        self.y = np.asarray(y)
        self.counts, self.train, self.valid = [], [], []
        for col, values in train.items():
            for analyzer in ANALYZERS:
                rng = ngram_range(analyzer, wide)
                c = NgramCounts.fit(col, analyzer, [values[i] for i in rows], rng, wide.min_df)
                self.counts.append(c)
                self.train.append(c.counts if len(rows) == len(values) else c.transform_counts(values, rng))
                self.valid.append(c.transform_counts(valid[col], rng))

    def blocks(self, p: TfidfParams) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Training and validation text features under settings ``p``."""
        train, valid = [], []
        for c, tr, va in zip(self.counts, self.train, self.valid, strict=True):
            mask = c.mask(ngram_range(c.analyzer, p), p.min_df)
            idf = idf_weights(c.df[mask], c.n_docs)
            train.append(weigh(tr[:, mask], idf))
            valid.append(weigh(va[:, mask], idf))
        keeps = select(train, self.y, p.max_features)
        return (
            sparse.hstack([b[:, k] for b, k in zip(train, keeps, strict=True)], format="csr"),
            sparse.hstack([b[:, k] for b, k in zip(valid, keeps, strict=True)], format="csr"),
        )
