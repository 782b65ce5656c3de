"""Vectorised building blocks shared by the EM aggregators (Dawid-Skene and relatives).

Everything here works on integer codes (see :func:`labelcycle.aggregation.base.encode`) turned into
sparse count matrices, and never loops over annotation rows in Python: each E-step and M-step is one
sparse-dense product over the annotations.

Notation: ``I`` items, ``A`` annotators, ``K`` classes. A *confusion* array has shape
``A x K (true) x K (given)`` and each ``[a, t, :]`` row sums to 1. The *pair* code of a row is
``annotator * K + given_label``, so a ``(A * K)``-long table indexed by pair answers "how likely is
this row's label under each true class" with one gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from labelcycle.aggregation.base import Encoded, encode


@dataclass(frozen=True)
class Codes:
    """The annotations as two sparse count matrices, the form every EM step works on.

    ``by_item`` is ``items x pairs`` and ``by_pair`` its transpose (both CSR, ``float64`` counts, so
    duplicate rows count twice). Sums over an item's rows become ``by_item @ table`` and sums over an
    annotator's rows become ``by_pair @ posteriors``: single C loops over the non-zeros.
    """

    by_item: sp.csr_matrix
    by_pair: sp.csr_matrix
    n_items: int
    n_annotators: int
    n_classes: int
    n_rows: int

    @classmethod
    def from_encoded(cls, enc: Encoded) -> Codes:
        i, a, k = enc.n_items, enc.n_annotators, enc.n_classes
        pair = enc.annotator * k + enc.label
        ones = np.ones(len(pair), dtype=np.float64)
        by_item = sp.csr_matrix((ones, (enc.item, pair)), shape=(i, a * k))
        by_item.sum_duplicates()
        return cls(
            by_item=by_item,
            by_pair=by_item.T.tocsr(),
            n_items=i,
            n_annotators=a,
            n_classes=k,
            n_rows=len(pair),
        )

    def pair_class(self) -> np.ndarray:
        """``(A * K) x K`` one-hot matrix: the given label of each pair code."""
        k = self.n_classes
        return np.tile(np.eye(k), (self.n_annotators, 1))

    def rows_per_annotator(self) -> np.ndarray:
        """Number of annotation rows of each annotator."""
        per_pair = np.asarray(self.by_pair.sum(axis=1)).ravel()
        return per_pair.reshape(self.n_annotators, self.n_classes).sum(axis=1)


def encode_nonempty(annotations: pd.DataFrame, classes: tuple[str, ...] | list[str] | None) -> Encoded:
    """:func:`encode`, refusing a table with no rows or an empty label set.

    Raises:
        SchemaError: see :func:`encode`.
        ValidationError: there is nothing to aggregate.
    """
    from labelcycle.errors import ValidationError

    enc = encode(annotations, classes)
    if len(enc.item) == 0:
        raise ValidationError("no annotations to aggregate: the table has no rows")
    if enc.n_classes == 0:
        raise ValidationError("the label set is empty; pass the classes or annotations with labels")
    return enc


def vote_shares(codes: Codes, weights: np.ndarray | None = None) -> np.ndarray:
    """Items x classes vote shares, optionally weighted per annotator; rows sum to 1.

    Items whose votes all have zero weight get uniform shares.
    """
    counts = vote_matrix(codes, weights)
    totals = counts.sum(axis=1, keepdims=True)
    uniform = np.full_like(counts, 1.0 / max(codes.n_classes, 1))
    return np.divide(counts, totals, out=uniform, where=totals > 0)


def vote_matrix(codes: Codes, weights: np.ndarray | None = None) -> np.ndarray:
    """Items x classes matrix of votes, optionally weighted per annotator (``weights``: length A)."""
    table = codes.pair_class()
    if weights is not None:
        table = table * np.repeat(np.asarray(weights, dtype=np.float64), codes.n_classes)[:, None]
    return np.asarray(codes.by_item @ table)


def soft_confusion_counts(codes: Codes, posteriors: np.ndarray) -> np.ndarray:
    """Expected counts ``A x K (true) x K (given)``: each row is weighted by its item's posteriors."""
    a, k = codes.n_annotators, codes.n_classes
    per_pair = np.asarray(codes.by_pair @ posteriors)  # [a * K + given, true]
    return per_pair.reshape(a, k, k).transpose(0, 2, 1).copy()


def item_log_likelihoods(codes: Codes, log_confusions: np.ndarray) -> np.ndarray:
    """Items x classes: sum over an item's rows of ``log P(given label | true class, annotator)``."""
    a, k = codes.n_annotators, codes.n_classes
    table = log_confusions.transpose(0, 2, 1).reshape(a * k, k)  # [a * K + given, true]
    return np.asarray(codes.by_item @ table)


def normalise_log(log_joint: np.ndarray) -> tuple[np.ndarray, float]:
    """Row-wise softmax of log joint probabilities (in place), and the total log marginal likelihood.

    Loops over the (few) classes instead of reducing along the short axis, which numpy does slowly.
    """
    k = log_joint.shape[1]
    columns = [log_joint[:, c] for c in range(k)]
    top = columns[0].copy()
    for col in columns[1:]:
        np.maximum(top, col, out=top)
    totals = np.zeros_like(top)
    for col in columns:
        col -= top
        np.exp(col, out=col)
        totals += col
    for col in columns:
        col /= totals
    return log_joint, float(np.log(totals).sum() + top.sum())


def class_priors(
    posteriors: np.ndarray, pseudo_count: float, allowed: np.ndarray | None = None
) -> np.ndarray:
    """Class priors from summed posteriors with ``pseudo_count`` added to every allowed class.

    Classes where ``allowed`` is False get prior 0.
    """
    return class_priors_from_mass(posteriors.sum(axis=0), pseudo_count, allowed)


def class_priors_from_mass(
    mass: np.ndarray, pseudo_count: float, allowed: np.ndarray | None = None
) -> np.ndarray:
    """:func:`class_priors` from the posteriors' column sums (a streaming fit adds them up part by part)."""
    allowed = np.ones(len(mass), dtype=bool) if allowed is None else allowed
    mass = np.where(allowed, mass + pseudo_count, 0.0)
    total = mass.sum()
    if total <= 0:
        return allowed / max(int(allowed.sum()), 1)
    return mass / total


def expected_accuracy(confusions: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Per-annotator accuracy ``sum_t prior_t * P(given t | true t)``."""
    diag = np.diagonal(confusions, axis1=1, axis2=2)
    return diag @ priors


def check_em_params(tol: float, max_iter: int) -> None:
    """Raise ConfigError on a non-positive tolerance or iteration cap."""
    from labelcycle.errors import ConfigError

    if not (tol > 0):
        raise ConfigError(f"tol must be > 0, got {tol!r}")
    if int(max_iter) < 1:
        raise ConfigError(f"max_iter must be >= 1, got {max_iter!r}")
