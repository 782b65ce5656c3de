"""ROC-AUC and average precision of each class under many weightings at once (the ranking metrics of
:mod:`labelcycle.evaluation.metrics`, the ones that cost most under resampling).

Each class's items are mapped once to slots (:func:`rank_prep`); a weight row then gives the slot sums in
one ``bincount`` and both metrics in cumulative sums over the class's distinct positive scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, NaN elsewhere (every ratio metric's division)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


@dataclass(frozen=True)
class RankPrep:
    """What ROC-AUC and average precision of one class need, as bincount maps.

    With ``u_1 > ... > u_G`` the distinct scores of the class's positive items, ``bincount(rows,
    weights)`` gives ``3G + 1`` sums (0-based index ``i`` is about ``u_{i+1}``): at ``i`` the weight of
    positives scored ``u_{i+1}``; at ``G + i`` the negatives scored in ``(u_{i+1}, u_i]`` (``i = 0``:
    above ``u_1``), whose inclusive cumulative sum is the weight of negatives strictly above
    ``u_{i+1}``; at ``2G + i`` the negatives scored exactly ``u_{i+1}`` (filled from ``tie_items``,
    ``tie_rows``); the last slot collects negatives below every positive, which only enter through
    the total weight.
    """

    n_groups: int
    rows: np.ndarray  # slot per item (positive group or negative segment)
    tie_items: np.ndarray  # negatives scored exactly like some positive
    tie_rows: np.ndarray  # their tie slot

    @property
    def size(self) -> int:
        return 3 * self.n_groups + 1


def rank_prep(scores: np.ndarray, positive: np.ndarray) -> RankPrep:
    items = np.arange(scores.shape[0])
    asc = np.unique(scores[positive])  # distinct positive scores, ascending; u_1 = asc[-1]
    g = asc.shape[0]
    rows = np.empty(scores.shape[0], dtype=np.intp)
    rows[positive] = g - 1 - np.searchsorted(asc, scores[positive])
    neg = ~positive
    neg_scores = scores[neg]
    h = g - np.searchsorted(asc, neg_scores, side="left")  # number of positive scores >= s
    rows[neg] = np.where(h < g, g + h, 3 * g)
    # a negative scored exactly u_h (1-based) also counts in tie slot 2G + h - 1
    tied = h >= 1
    if g:
        tied &= asc[np.clip(g - h, 0, g - 1)] == neg_scores
    return RankPrep(n_groups=g, rows=rows, tie_items=items[neg][tied], tie_rows=2 * g + h[tied] - 1)


def rank_maps(p: np.ndarray, y: np.ndarray, k: int) -> tuple[RankPrep, ...]:
    """The maps of every class: ``p`` the ``n x k`` probabilities, ``y`` the gold class codes."""
    return tuple(rank_prep(p[:, j], y == j) for j in range(k))


#: weight rows the ranking metrics are computed on at a time: their ``(rows, 3G + 1)`` slot sums and the
#: cumulative sums over them then stay in cache (a third faster on 100k items than a 32-row block at once)
RANK_ROWS = 4


def _row_chunks(n_rows: int, size: int) -> list[slice]:
    """Consecutive slices of ``size`` rows covering ``n_rows``, none of a single row unless ``n_rows`` is 1:
    a last single row joins the chunk before it, since NumPy sums one row's average precision
    (:func:`_rank_metrics`' einsum) in another order than a block's rows, and the bits would change."""
    starts = list(range(0, n_rows, size))
    if len(starts) > 1 and n_rows - starts[-1] == 1:
        starts.pop()
    return [slice(a, b) for a, b in zip(starts, [*starts[1:], n_rows], strict=True)]


def _rank_sums(rp: RankPrep, w64: np.ndarray) -> np.ndarray:
    """Slot sums of one class (see :class:`RankPrep`) for each float64 weight row: ``(B, 3G + 1)``."""
    out = np.empty((w64.shape[0], rp.size))
    for r in range(w64.shape[0]):
        out[r] = np.bincount(rp.rows, weights=w64[r], minlength=rp.size)
        if rp.tie_items.size:
            out[r] += np.bincount(rp.tie_rows, weights=w64[r, rp.tie_items], minlength=rp.size)
    return out


def _rank_metrics(rp: RankPrep, w64: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted one-vs-rest ROC-AUC and average precision of one class, per weight row.

    ROC-AUC is the weighted Mann-Whitney statistic (a tied negative counts one half); average
    precision is ``sum_thresholds (recall increase) * precision`` with one threshold per distinct
    score, as scikit-learn's ``average_precision_score``. Cost: one ``bincount`` over the items per
    weight row, then cumulative sums over the ``G`` distinct positive scores.
    """
    g = rp.n_groups
    if g == 0:
        nan = np.full(w64.shape[0], np.nan)
        return nan, nan
    sums = _rank_sums(rp, w64)
    pg = sums[:, :g]
    n_gt = np.cumsum(sums[:, g : 2 * g], axis=1)  # negatives scored strictly above u_g
    p_ge = np.cumsum(pg, axis=1)  # positives scored u_g or above
    p_tot = p_ge[:, -1]
    n_tot = total - p_tot
    if rp.tie_items.size:
        eq = sums[:, 2 * g : 3 * g]  # negatives scored exactly u_g
        n_ge = n_gt + eq
        above = n_gt + 0.5 * eq
    else:
        n_ge = above = n_gt
    beaten = np.einsum("ij,ij->i", pg, above)
    auc = safe_div(p_tot * n_tot - beaten, p_tot * n_tot)
    den = p_ge + n_ge
    np.maximum(den, np.finfo(den.dtype).tiny, out=den)  # den == 0 implies p_ge == 0
    ap = safe_div(np.einsum("ij,ij->i", pg, p_ge / den), p_tot)
    undefined = (p_tot <= 0) | (n_tot <= 1e-9 * np.maximum(total, 1))
    return np.where(undefined, np.nan, auc), np.where(undefined, np.nan, ap)


def ranking_metrics(
    maps: tuple[RankPrep, ...], w: np.ndarray, total: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC and average precision of every class (``maps`` in class order) under each weight row of
    ``w`` (``(B, n)``, float32 or float64; ``total``: each row's total weight): two ``(B, k)`` arrays,
    computed :data:`RANK_ROWS` rows at a time."""
    auc = np.full((w.shape[0], len(maps)), np.nan)
    ap = np.full((w.shape[0], len(maps)), np.nan)
    for rows in _row_chunks(w.shape[0], RANK_ROWS):
        w64 = w[rows].astype(np.float64, copy=False)  # bincount works in float64
        for j, rp in enumerate(maps):
            auc[rows, j], ap[rows, j] = _rank_metrics(rp, w64, total[rows])
    return auc, ap
