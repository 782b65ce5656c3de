"""Dawid-Skene: one full confusion matrix per annotator, fitted by EM (Dawid & Skene, 1979)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labelcycle.aggregation import _em
from labelcycle.aggregation.base import BaseAggregator, Encoded

#: where an item's true class may lie: any class, or only the labels its annotators gave
SUPPORTS = ("all", "voted")

#: the one constructor of the EM aggregators: ``__init__`` stores the hyperparameters declared as class
#: fields (``classes`` positional, the rest by keyword); a subclass redeclares a field to change its default
#: and declares its own. Identity equality and the plain repr stay, as for every estimator.
em_hyperparameters = dataclass(eq=False, repr=False, kw_only=True)


@em_hyperparameters
class DawidSkene(BaseAggregator):
    """Classic Dawid-Skene with additive (Dirichlet) smoothing of the confusion matrices.

    EM starts from majority-vote shares. The M-step adds ``alpha`` to every confusion cell and
    ``prior_alpha`` to every class count (a MAP estimate under symmetric Dirichlet priors), so an
    annotator with one label never gets a zero probability. A class in ``classes`` that no
    annotator ever gave keeps its column with probability 0: nothing in the data can identify it. The E-step is
    ``log P(true = t | item) = log prior_t + sum_rows log confusion[annotator, t, given]``.

    Duplicate (item, annotator) rows are counted as separate votes.

    With ``support="voted"`` an item's true class is sought only among the labels its annotators gave:
    the E-steps of the fit give the other classes probability 0 and the label is the most probable of
    the given labels. Plain Dawid-Skene can pick a class nobody voted for when the off-diagonal cells of
    a few confusion rows, the least identified parameters of the model, happen to favour it; on real
    crowd data those picks are mostly wrong (see ``benchmarks/results/aggregation.md``). ``probas_``
    is still the fitted model's posterior over every class (one last E-step without the restriction),
    so an item with one label from an unreliable annotator keeps a low confidence, and the rare item
    where a class nobody gave is more probable than its label shows it.

    Args:
        classes: the label set in order; inferred (sorted) when None.
        max_iter: EM iteration cap.
        tol: stop when the log marginal likelihood per annotation row (log-posterior, with the
            priors, for the smoothed models) gains less than ``tol`` in one iteration.
        alpha: pseudo-count added to every confusion cell.
        prior_alpha: pseudo-count added to every class when estimating class priors.
        support: ``"all"`` (every class, the classic model) or ``"voted"`` (only the classes an item's
            annotators gave).

    Attributes:
        labels_, probas_, skills_: see :mod:`labelcycle.aggregation.base`; skills are expected
            accuracies ``sum_t prior_t * confusion[a, t, t]``.
        confusions_: ``annotators x true x given`` array.
        priors_: ``pd.Series`` of class priors.
        n_iter_: EM iterations run; ``converged_``: whether ``tol`` was reached.
        log_likelihood_: log marginal likelihood of the data at the final parameters.
    """

    name = "dawid_skene"

    classes: tuple[str, ...] | list[str] | None = field(default=None, kw_only=False)
    max_iter: int = 100
    tol: float = 1e-5
    alpha: float = 0.01
    prior_alpha: float = 1.0
    support: str = "all"

    def fit(self, annotations: pd.DataFrame) -> DawidSkene:
        _em.check_em_params(self.tol, self.max_iter)
        if self.support not in SUPPORTS:
            from labelcycle.errors import ConfigError

            raise ConfigError(f"support must be one of {SUPPORTS}, got {self.support!r}")
        enc = _em.encode_nonempty(annotations, self.classes)
        codes = _em.Codes.from_encoded(enc)
        posteriors = _em.vote_shares(codes)
        votes = _em.vote_matrix(codes)
        # a class no annotator ever gave has no evidence and an unidentified confusion row: prior 0
        given = votes.sum(axis=0) > 0
        outside = votes == 0 if self.support == "voted" else None
        confusions = priors = None
        log_lik = previous = -np.inf
        self.converged_ = False
        self.n_iter_ = 0
        for _ in range(int(self.max_iter)):
            self.n_iter_ += 1
            priors = _em.class_priors(posteriors, self.prior_alpha, given)
            confusions = self._m_step(codes, posteriors)
            log_joint = _log_joint(codes, confusions, priors)
            if outside is not None:
                log_joint[outside] = -np.inf
            new_post, log_lik = _em.normalise_log(log_joint)
            posteriors = new_post
            per_row = log_lik / max(codes.n_rows, 1)
            if per_row - previous < self.tol:
                self.converged_ = True
                break
            previous = per_row
        decide = None
        if outside is not None and confusions is not None and priors is not None:
            decide = posteriors  # the label: the most probable given label
            posteriors, _ = _em.normalise_log(_log_joint(codes, confusions, priors))
        self._store(enc, posteriors, confusions, priors, log_lik, decide)
        return self

    def _m_step(self, codes: _em.Codes, posteriors: np.ndarray) -> np.ndarray:
        return self._confusions_from_counts(_em.soft_confusion_counts(codes, posteriors))

    def _confusions_from_counts(self, counts: np.ndarray) -> np.ndarray:
        """The M-step from expected counts ``A x K (true) x K (given)`` (shared with the streaming fit)."""
        counts = counts + self.alpha
        return counts / counts.sum(axis=2, keepdims=True)

    def _store(
        self,
        enc: Encoded,
        posteriors: np.ndarray,
        confusions: np.ndarray | None,
        priors: np.ndarray | None,
        log_lik: float,
        decide: np.ndarray | None = None,
    ) -> None:
        k = enc.n_classes
        if confusions is None or priors is None:  # max_iter guard makes this unreachable
            confusions = np.full((enc.n_annotators, k, k), 1.0 / k)
            priors = np.full(k, 1.0 / k)
        self.confusions_ = confusions
        self.priors_ = pd.Series(priors, index=list(enc.classes), name="prior")
        self.log_likelihood_ = log_lik
        self._set_results(enc, posteriors, _em.expected_accuracy(confusions, priors), decide)


def _log_joint(codes: _em.Codes, confusions: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Items x classes ``log prior_t + sum over the item's rows of log confusion[annotator, t, given]``."""
    with np.errstate(divide="ignore"):  # a class nobody gave has prior 0
        return _em.item_log_likelihoods(codes, np.log(confusions)) + np.log(priors)
