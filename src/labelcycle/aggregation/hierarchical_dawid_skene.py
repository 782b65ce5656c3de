"""Dawid-Skene with empirical-Bayes shrinkage of sparse annotators toward a pooled confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from labelcycle.aggregation import _em
from labelcycle.aggregation.dawid_skene import DawidSkene

#: search range of the prior strength (pseudo-labels per confusion row)
_MIN_STRENGTH, _MAX_STRENGTH = 0.1, 1e4


class HierarchicalDawidSkene(DawidSkene):
    """Dawid-Skene whose confusion rows share a Dirichlet prior centred on the pooled confusion matrix.

    Each annotator's row ``confusion[a, t, :]`` has the prior ``Dirichlet(s_t * pooled[t, :])``, where
    ``pooled[t, :]`` is the crowd's confusion row (all annotators' expected counts summed) and the
    strength ``s_t`` is chosen by empirical Bayes: it maximises the Dirichlet-multinomial marginal
    likelihood of the annotators' expected counts. The M-step is then the posterior mean

    ``confusion[a, t, g] = (counts[a, t, g] + s_t * pooled[t, g]) / (counts[a, t, :].sum() + s_t)``

    so an annotator with a handful of labels looks like the average annotator and one with thousands
    of labels keeps their own matrix. When annotators really differ, ``s_t`` comes out small and the
    model is plain Dawid-Skene; when they look alike it approaches a single shared matrix. The same
    setting therefore suits dense and sparse data sets without tuning.

    Args:
        classes, max_iter, tol, prior_alpha: as in :class:`DawidSkene`.
        alpha: pseudo-count added to every cell of the pooled matrix (keeps it strictly positive).
        strength: fixed prior strength ``s`` for every class instead of the empirical-Bayes estimate.

    Attributes:
        As :class:`DawidSkene`, plus ``pooled_confusion_`` (``true x given``) and ``strengths_``
        (``s_t`` per true class).
    """

    name = "hierarchical_dawid_skene"

    def __init__(
        self,
        classes: tuple[str, ...] | list[str] | None = None,
        max_iter: int = 100,
        tol: float = 1e-5,
        alpha: float = 1.0,
        prior_alpha: float = 1.0,
        strength: float | None = None,
    ) -> None:
        super().__init__(classes=classes, max_iter=max_iter, tol=tol, alpha=alpha, prior_alpha=prior_alpha)
        self.strength = strength

    def fit(self, annotations: pd.DataFrame) -> HierarchicalDawidSkene:
        if self.strength is not None and not (self.strength > 0):
            from labelcycle.errors import ConfigError

            raise ConfigError(f"strength must be > 0 or None, got {self.strength!r}")
        super().fit(annotations)
        return self

    def _m_step(self, codes: _em.Codes, posteriors: np.ndarray) -> np.ndarray:
        counts = _em.soft_confusion_counts(codes, posteriors)
        pooled = counts.sum(axis=0) + self.alpha
        pooled /= pooled.sum(axis=1, keepdims=True)
        k = codes.n_classes
        strengths = np.empty(k)
        for t in range(k):
            strengths[t] = (
                self.strength if self.strength is not None else _eb_strength(counts[:, t, :], pooled[t])
            )
        self.pooled_confusion_ = pooled
        self.strengths_ = strengths
        prior = strengths[None, :, None] * pooled[None, :, :]
        post = counts + prior
        return post / post.sum(axis=2, keepdims=True)


def _eb_strength(counts: np.ndarray, mean: np.ndarray) -> float:
    """Dirichlet precision ``s`` maximising the Dirichlet-multinomial marginal likelihood.

    Args:
        counts: ``annotators x K`` (expected) counts of one true class.
        mean: the prior mean over given labels (sums to 1, strictly positive).
    """
    n = counts.sum(axis=1)
    used = n > 1e-9
    if used.sum() < 2:
        return _MAX_STRENGTH
    counts, n = counts[used], n[used]

    def neg_log_marginal(log_s: float) -> float:
        s = np.exp(log_s)
        sm = s * mean
        value = np.sum(gammaln(s) - gammaln(n + s)) + np.sum(gammaln(counts + sm) - gammaln(sm))
        return -float(value)

    res = minimize_scalar(
        neg_log_marginal,
        bounds=(np.log(_MIN_STRENGTH), np.log(_MAX_STRENGTH)),
        method="bounded",
        options={"xatol": 1e-2},
    )
    return float(np.exp(res.x))
