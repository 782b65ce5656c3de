"""One-coin Dawid-Skene: one accuracy per annotator, errors spread evenly over the other classes."""

from __future__ import annotations

from dataclasses import field

import numpy as np
import pandas as pd

from labelcycle.aggregation import _em
from labelcycle.aggregation.dawid_skene import DawidSkene, em_hyperparameters


@em_hyperparameters
class OneCoinDawidSkene(DawidSkene):
    """Dawid-Skene with ``confusion[a, t, g] = p_a`` if ``g == t`` else ``(1 - p_a) / (K - 1)``.

    The accuracy ``p_a`` is the MAP estimate under a ``Beta(alpha + 1, beta + 1)`` prior: the
    expected number of correct labels plus ``alpha`` over the annotator's label count plus
    ``alpha + beta``. One parameter per annotator makes it steadier than full Dawid-Skene when
    annotators give few labels, at the price of ignoring class-specific confusions.

    Args:
        classes, max_iter, tol, prior_alpha: as in :class:`DawidSkene`.
        alpha: pseudo-count of correct labels per annotator.
        beta: pseudo-count of wrong labels per annotator.
    """

    name = "one_coin_dawid_skene"

    alpha: float = 1.0
    #: every class is a possible true class (not a parameter here)
    support: str = field(default="all", init=False)
    beta: float = 1.0

    def fit(self, annotations: pd.DataFrame) -> OneCoinDawidSkene:
        super().fit(annotations)
        return self

    def _m_step(self, codes: _em.Codes, posteriors: np.ndarray) -> np.ndarray:
        k = codes.n_classes
        counts = _em.soft_confusion_counts(codes, posteriors)
        correct = np.trace(counts, axis1=1, axis2=2)
        total = counts.sum(axis=(1, 2))
        accuracy = (correct + self.alpha) / (total + self.alpha + self.beta)
        if k == 1:
            return np.ones((codes.n_annotators, 1, 1))
        off = (1.0 - accuracy) / (k - 1)
        confusions = np.repeat(off[:, None, None], k, axis=1).repeat(k, axis=2)
        idx = np.arange(k)
        confusions[:, idx, idx] = accuracy[:, None]
        return confusions
