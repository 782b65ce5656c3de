"""The majority-class baseline: what a model must beat to be worth anything.

The baseline is a constant predictor on the same eval split: every item gets the eval split's class
frequencies as probabilities, so its label is the most frequent gold class (ties: the earlier class).
Its accuracy is the majority share, its ROC-AUC 0.5, its PR-AUC the prevalence, its log loss the entropy
of the class mix; a model that does not beat it has learnt nothing usable from the items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labelcycle.evaluation.metrics import compute_metrics, encode_labels
from labelcycle.evaluation.moderation import binary_metrics

NAME = "majority_class"


def majority_proba(y_true: Sequence[str] | np.ndarray | pd.Series, classes: Sequence[str]) -> np.ndarray:
    """``n x k`` constant probabilities: the gold class frequencies of ``y_true``."""
    codes = encode_labels(y_true, classes)
    freq = np.bincount(codes, minlength=len(classes)) / max(len(codes), 1)
    return np.tile(freq, (len(codes), 1))


def majority_label(y_true: Sequence[str] | np.ndarray | pd.Series, classes: Sequence[str]) -> str:
    """The label the baseline always answers."""
    codes = encode_labels(y_true, classes)
    return str(list(classes)[int(np.bincount(codes, minlength=len(classes)).argmax())])


def baseline_metrics(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    classes: Sequence[str],
    metrics: Sequence[str],
    positive_labels: Sequence[str] = (),
    target_precision: float = 0.9,
) -> dict[str, float]:
    """The baseline's value of each of ``metrics`` (and of the binary metrics with positive labels)."""
    proba = majority_proba(y_true, classes)
    values = compute_metrics(y_true, proba, classes)
    out = {m: float(values[m]) for m in metrics}
    if positive_labels:
        # the majority answer: flag nobody (everybody when positives are the majority)
        out.update(binary_metrics(y_true, proba, classes, positive_labels, target_precision, threshold=0.5))
    return out
