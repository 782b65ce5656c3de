"""The linear text score: per text column, a cross-fitted logistic regression of its TF-IDF.

Trees split one n-gram at a time; on short texts a linear model over all n-grams at once ranks items
better. So every text column also gets a score: the class log-probabilities of a multinomial logistic
regression (``C`` = :data:`C`) on the column's word and character TF-IDF (every n-gram of the column found
in ``min_df`` training items, at most :data:`~labelcycle.features.text.VOCAB_CAP` per analyser, rows
l2-normalised), given to LightGBM as dense features beside the selected n-grams. LightGBM weighs the
columns' scores against each other and against the other item columns.

The scores of the training items are **out of fold** (:data:`N_FOLDS` folds; each item scored by a model
that never saw it), so LightGBM learns how far to trust a score it would see on new items; new items are
scored by the model fitted on all training items. Coefficients are plain data, saved with the model.

The columns' scores are also combined into one linear base (:class:`TextStack`: a multinomial logistic
regression, ``C`` = :data:`STACK_C`, of the out-of-fold scores of every text column), which LightGBM boosts
from (its ``init_score``): the trees correct a strong linear text model instead of rebuilding it from
splits, and a context column whose score says little about the label gets a small weight in the base.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

from labelcycle.features.text import ANALYZERS, NgramCounts, TextVectorizer, ngram_range, sample_rows
from labelcycle.params import TfidfParams

N_FOLDS = 5
C = 4.0
#: inverse regularisation of the stack over the columns' scores (few inputs: mild)
STACK_C = 1.0
#: log-probability given to a class a fold's model never saw
FLOOR = float(np.log(1e-6))


@dataclass(frozen=True)
class TextScore:
    """The fitted linear score of one text column: its vectorisers and a coefficient row per class."""

    column: str
    vectorizers: tuple[TextVectorizer, ...]
    coef: np.ndarray  # classes x n-grams
    intercept: np.ndarray  # classes

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.column}:score:{k}" for k in range(len(self.intercept))]

    def design(self, texts: list[str]) -> sparse.csr_matrix:
        return sparse.hstack([v.transform(texts) for v in self.vectorizers], format="csr")

    def scores(self, texts: list[str]) -> np.ndarray:
        """Items x classes log-probabilities."""
        return _log_softmax(self.design(texts) @ self.coef.T + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "vectorizers": [v.to_dict() for v in self.vectorizers],
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextScore:
        return cls(
            d["column"],
            tuple(TextVectorizer.from_dict(v) for v in d["vectorizers"]),
            np.asarray(d["coef"], dtype=np.float64),
            np.asarray(d["intercept"], dtype=np.float64),
        )


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _fit(X: sparse.csr_matrix, y: np.ndarray, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and intercepts over all ``n_classes`` (a class absent from ``y`` gets a floor)."""
    present = np.unique(y)
    coef = np.zeros((n_classes, X.shape[1]))
    intercept = np.full(n_classes, FLOOR)
    if len(present) < 2:
        intercept[present] = 0.0
        return coef, intercept
    model = LogisticRegression(C=C, solver="saga", max_iter=200, tol=1e-3, random_state=seed)
    with warnings.catch_warnings():  # a looser tolerance than sklearn's default is enough for a score
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    if len(present) == 2:  # sklearn's binary model: one row for the second class
        coef[present[1]], intercept[present] = model.coef_[0], (0.0, float(model.intercept_[0]))
    else:
        coef[present], intercept[present] = model.coef_, model.intercept_
    return coef, intercept


def fit_text_score(
    column: str, texts: list[str], y: np.ndarray, n_classes: int, p: TfidfParams, seed: int = 0
) -> tuple[TextScore, np.ndarray]:
    """The column's score model (fitted on all ``texts``) and the out-of-fold scores of ``texts``."""
    rows = sample_rows(len(texts))
    vecs = []
    for analyzer in ANALYZERS:
        rng = ngram_range(analyzer, p)
        counts = NgramCounts.fit(column, analyzer, [texts[i] for i in rows], rng, p.min_df)
        vecs.append(counts.vectorizer(np.arange(len(counts.terms)), rng, norm="l2"))
    score = TextScore(column, tuple(vecs), np.zeros((n_classes, 0)), np.zeros(n_classes))
    X = score.design(texts)
    y = np.asarray(y)
    oof = np.empty((len(texts), n_classes))
    counts_per_class = np.bincount(y, minlength=n_classes)
    n_folds = min(N_FOLDS, len(texts))
    stratify = counts_per_class[counts_per_class > 0].min() >= n_folds
    folds = (StratifiedKFold if stratify else KFold)(n_folds, shuffle=True, random_state=seed)
    for train, test in folds.split(X, y):
        coef, intercept = _fit(X[train], y[train], n_classes, seed)
        oof[test] = _log_softmax(X[test] @ coef.T + intercept)
    coef, intercept = _fit(X, y, n_classes, seed)
    return TextScore(column, tuple(vecs), coef, intercept), oof


@dataclass(frozen=True)
class TextStack:
    """The linear base: class log-probabilities from the text columns' scores (items x (columns x classes),
    in the order of the columns' :class:`TextScore` s)."""

    coef: np.ndarray  # classes x score columns
    intercept: np.ndarray  # classes

    def margin(self, scores: np.ndarray) -> np.ndarray:
        """Items x classes log-probabilities of the base."""
        return _log_softmax(np.asarray(scores, dtype=np.float64) @ self.coef.T + self.intercept)

    def init_score(self, scores: np.ndarray) -> np.ndarray:
        """LightGBM's ``init_score``: the log-probabilities (multi-class), the log-odds of class 1 (binary)."""
        m = self.margin(scores)
        return m[:, 1] - m[:, 0] if m.shape[1] == 2 else m

    def to_dict(self) -> dict[str, Any]:
        return {"coef": self.coef.tolist(), "intercept": self.intercept.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextStack:
        return cls(np.asarray(d["coef"], dtype=np.float64), np.asarray(d["intercept"], dtype=np.float64))


def fit_text_stack(scores: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> TextStack:
    """The stack of the columns' out-of-fold ``scores`` (items x (columns x classes)) on labels ``y``."""
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y)
    present = np.unique(y)
    coef = np.zeros((n_classes, scores.shape[1]))
    intercept = np.full(n_classes, FLOOR)
    if len(present) < 2:
        intercept[present] = 0.0
        return TextStack(coef, intercept)
    model = LogisticRegression(C=STACK_C, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scores, y)
    if len(present) == 2:
        coef[present[1]], intercept[present] = model.coef_[0], (0.0, float(model.intercept_[0]))
    else:
        coef[present], intercept[present] = model.coef_, model.intercept_
    return TextStack(coef, intercept)
