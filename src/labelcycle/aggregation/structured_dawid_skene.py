"""Dawid-Skene whose confusion rows are shrunk toward a skill (one-coin-like) prior chosen by empirical Bayes."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from labelcycle.aggregation import _em
from labelcycle.aggregation.dawid_skene import em_hyperparameters
from labelcycle.aggregation.hierarchical_dawid_skene import HierarchicalDawidSkene

#: search range of the prior strengths (pseudo-labels)
_MIN_STRENGTH, _MAX_STRENGTH = 0.1, 1e4


@em_hyperparameters
class StructuredDawidSkene(HierarchicalDawidSkene):
    """Full Dawid-Skene with a *structured* empirical-Bayes prior: a skill model on top, confusions below.

    Every strength below is chosen by empirical Bayes (type-II maximum likelihood of the current
    expected counts) at each M-step, so one setting serves every data set:

    1. Skill. Annotator ``a``'s accuracy on true class ``t`` is ``sigmoid(logit(q_t) + d_a)``: the crowd's
       pooled accuracy ``q_t`` on that class (class difficulty) plus one skill offset per annotator. ``d_a``
       matches the annotator's expected number of correct labels, shrunk by ``c`` pseudo-labels toward the
       average annotator; ``c`` maximises the beta-binomial marginal likelihood of the (correct, total)
       counts around the pooled accuracy.
    2. Centre. The one-coin-like row ``m[a, t, :]``: ``m[a, t, t] = acc_at`` and
       ``m[a, t, g] = (1 - acc_at) * e[t, g]``, where ``e[t, :]`` is the crowd's pooled distribution of
       *wrong* labels for true class ``t``. Per true class, this centre competes with the plain pooled row
       (the centre of :class:`HierarchicalDawidSkene`); the one with the higher Dirichlet-multinomial
       marginal likelihood is kept (a Bayes-factor choice, not a look at gold).
    3. Confusion. Row ``confusion[a, t, :]`` has the prior ``Dirichlet(s_t * m[a, t, :])``; ``s_t``
       maximises the same marginal likelihood and the M-step is the posterior mean
       ``(counts + s_t * m) / (n_at + s_t)``.

    With many classes and few labels per (annotator, true class), as on music genres, the evidence favours
    a large ``s_t`` and the model becomes a one-coin model with class difficulty and the crowd's error
    pattern (steady where full Dawid-Skene overfits); with enough labels ``s_t`` shrinks and annotators
    keep their own confusions.

    Args:
        classes, max_iter, tol, prior_alpha, support: as in :class:`DawidSkene`.
        alpha: pseudo-count added to every cell of the pooled matrix (keeps it strictly positive).
        strength: fixed ``s_t`` for every class (centre: the skill row) instead of the empirical-Bayes choice.

    Attributes:
        As :class:`DawidSkene`, plus ``accuracies_`` (``A x K`` prior-centre accuracies ``acc_at``),
        ``accuracy_strength_`` (``c``), ``error_patterns_`` (``e``, ``true x given``, zero diagonal),
        ``pooled_centre_`` (per true class: True where the pooled row won) and ``strengths_`` (``s_t``).
    """

    name = "structured_dawid_skene"

    strength: float | None = None

    def _m_step(self, codes: _em.Codes, posteriors: np.ndarray) -> np.ndarray:
        k = codes.n_classes
        counts = _em.soft_confusion_counts(codes, posteriors)
        if k == 1:
            return np.ones((codes.n_annotators, 1, 1))
        idx = np.arange(k)
        pooled = counts.sum(axis=0) + self.alpha
        errors = pooled.copy()
        errors[idx, idx] = 0.0
        errors /= errors.sum(axis=1, keepdims=True)
        correct = np.trace(counts, axis1=1, axis2=2)
        total = counts.sum(axis=(1, 2))
        p = (correct.sum() + self.alpha) / (total.sum() + 2 * self.alpha)
        c = _eb_beta_strength(correct, total, p)
        class_acc = np.diagonal(pooled) / pooled.sum(axis=1)
        acc_at = _class_accuracies(counts.sum(axis=2), correct, c, class_acc)
        mean = (1.0 - acc_at)[:, :, None] * errors[None, :, :]
        mean[:, idx, idx] = acc_at
        flat = pooled / pooled.sum(axis=1, keepdims=True)
        strengths = np.empty(k)
        centres = np.zeros(k, dtype=bool)  # True where the pooled row won
        if self.strength is not None:
            strengths[:] = float(self.strength)
        else:
            for t in range(k):
                s1, l1 = _eb_dirichlet_strength(counts[:, t, :], mean[:, t, :], with_value=True)
                pooled_t = np.broadcast_to(flat[t], mean[:, t, :].shape)
                s2, l2 = _eb_dirichlet_strength(counts[:, t, :], pooled_t, with_value=True)
                if l2 > l1:
                    mean[:, t, :] = pooled_t
                    strengths[t] = s2
                    centres[t] = True
                else:
                    strengths[t] = s1
        self.accuracies_ = acc_at
        self.pooled_centre_ = centres
        self.accuracy_strength_ = c
        self.error_patterns_ = errors
        self.strengths_ = strengths
        post = counts + strengths[None, :, None] * mean
        return post / post.sum(axis=2, keepdims=True)


def _class_accuracies(n_at: np.ndarray, correct: np.ndarray, c: float, class_acc: np.ndarray) -> np.ndarray:
    """``A x K`` accuracies ``sigmoid(logit(class_acc[t]) + d_a)``: class difficulty plus one skill per annotator.

    ``d_a`` solves ``sum_t n_at * acc_at = T_a``, the annotator's expected number of correct labels shrunk
    by ``c`` pseudo-labels toward what the average annotator would get on the same classes.
    """
    logits = np.log(class_acc) - np.log1p(-class_acc)
    n = n_at.sum(axis=1)
    expected = n_at @ class_acc
    target = (correct + c * expected / np.maximum(n, 1e-12)) / (1.0 + c / np.maximum(n, 1e-12))
    lo = np.full(len(n), -30.0)
    hi = np.full(len(n), 30.0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        got = (n_at / (1.0 + np.exp(-(logits[None, :] + mid[:, None])))).sum(axis=1)
        above = got > target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    d = 0.5 * (lo + hi)
    return 1.0 / (1.0 + np.exp(-(logits[None, :] + d[:, None])))


def _eb_beta_strength(correct: np.ndarray, total: np.ndarray, p: float) -> float:
    """Beta precision ``c`` (prior ``Beta(c p, c (1-p))``) maximising the beta-binomial marginal likelihood."""
    used = total > 1e-9
    if used.sum() < 2:
        return _MAX_STRENGTH
    x, n = correct[used], total[used]
    y = n - x

    def neg(log_c: float) -> float:
        c = np.exp(log_c)
        a, b = c * p, c * (1 - p)
        return -float(
            np.sum(gammaln(x + a) + gammaln(y + b) - gammaln(n + c))
            + used.sum() * (gammaln(c) - gammaln(a) - gammaln(b))
        )

    res = minimize_scalar(
        neg, bounds=(np.log(_MIN_STRENGTH), np.log(_MAX_STRENGTH)), method="bounded", options={"xatol": 1e-2}
    )
    return float(np.exp(res.x))


def _eb_dirichlet_strength(counts: np.ndarray, mean: np.ndarray, with_value: bool = False):
    """Precision ``s`` of ``Dirichlet(s * mean[a])`` maximising the Dirichlet-multinomial marginal likelihood.

    Args:
        counts: ``rows x K`` (expected) counts.
        mean: ``rows x K`` prior means (each row sums to 1, strictly positive).
    """
    n = counts.sum(axis=1)
    used = n > 1e-9
    if used.sum() < 2:
        return (_MAX_STRENGTH, 0.0) if with_value else _MAX_STRENGTH
    counts, n, mean = counts[used], n[used], mean[used]

    def neg(log_s: float) -> float:
        s = np.exp(log_s)
        sm = s * mean
        return -float(np.sum(gammaln(s) - gammaln(n + s)) + np.sum(gammaln(counts + sm) - gammaln(sm)))

    res = minimize_scalar(
        neg, bounds=(np.log(_MIN_STRENGTH), np.log(_MAX_STRENGTH)), method="bounded", options={"xatol": 1e-2}
    )
    if with_value:
        return float(np.exp(res.x)), -float(res.fun)
    return float(np.exp(res.x))
