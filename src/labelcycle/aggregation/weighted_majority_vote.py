"""Weighted majority vote (Wawa-like): annotator weights from agreement with the vote, iterated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle.aggregation import _em
from labelcycle.aggregation.base import BaseAggregator, argmax_first


class WeightedMajorityVote(BaseAggregator):
    """Majority vote weighted by each annotator's agreement with the current aggregated labels.

    Start from the plain majority vote; an annotator's weight is the share of their labels that
    agree with the current aggregated labels; re-vote with those weights; repeat until the labels
    stop changing or ``max_iter`` rounds. With ``max_iter=1`` this is crowd-kit's Wawa. Ties go to
    the earlier class in the label set (the later one with ``ties_to_last``).

    Args:
        classes: the label set in order; inferred (sorted) when None.
        max_iter: cap on re-weighting rounds (>= 1).

    Attributes:
        labels_, probas_ (weighted vote shares), skills_ (the final weights), n_iter_.
    """

    name = "weighted_majority_vote"

    def __init__(self, classes: tuple[str, ...] | list[str] | None = None, max_iter: int = 10) -> None:
        super().__init__(classes=classes)
        self.max_iter = max_iter

    def fit(self, annotations: pd.DataFrame) -> WeightedMajorityVote:
        _em.check_em_params(1.0, self.max_iter)
        enc = _em.encode_nonempty(annotations, self.classes)
        codes = _em.Codes.from_encoded(enc)
        counts = codes.rows_per_annotator()
        shares = _em.vote_shares(codes)
        winners = argmax_first(shares, self.ties_to_last)
        skills = np.zeros(codes.n_annotators)
        self.n_iter_ = 0
        for _ in range(int(self.max_iter)):
            self.n_iter_ += 1
            agreeing = np.trace(
                _em.soft_confusion_counts(codes, np.eye(codes.n_classes)[winners]), axis1=1, axis2=2
            )
            skills = agreeing / np.maximum(counts, 1.0)
            shares = _em.vote_shares(codes, weights=skills)
            new_winners = argmax_first(shares, self.ties_to_last)
            if np.array_equal(new_winners, winners):
                break
            winners = new_winners
        self._set_results(enc, shares, skills)
        return self
