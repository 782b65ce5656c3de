"""Majority vote with deterministic tie-breaking."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle.aggregation.base import BaseAggregator, argmax_first, encode, vote_counts


class MajorityVote(BaseAggregator):
    """One label per item: the most frequent label; ties go to the earlier class in the label set (to the
    later one with ``ties_to_last``, e.g. the more severe label of an ordinal scale).

    ``probas_`` are vote shares; ``skills_`` are each annotator's agreement with the majority label.
    """

    name = "majority_vote"

    def fit(self, annotations: pd.DataFrame) -> MajorityVote:
        enc = encode(annotations, self.classes)
        counts = vote_counts(enc)
        probas = counts / counts.sum(axis=1, keepdims=True)
        winners = argmax_first(probas, self.ties_to_last)
        agree = (winners[enc.item] == enc.label).astype(np.float64)
        skills = np.bincount(enc.annotator, weights=agree, minlength=enc.n_annotators) / np.bincount(
            enc.annotator, minlength=enc.n_annotators
        )
        self._set_results(enc, probas, skills)
        return self
