"""Moderation-grade metrics: the binary question "is it one of the positive labels?" and per-class recall.

With ``evaluate.positive_labels`` (e.g. ``[mild, strong, very_strong]``) the multi-class prediction is also
read as a binary one: P(positive) is the sum of the positive labels' probabilities, and an item is flagged
when P(positive) reaches a threshold: ``evaluate.flag_threshold`` when set, else the threshold that
maximises the binary macro-F1 *expected under the model's own probabilities* of the items scored
(label-free; :func:`expected_f1_threshold`: the plug-in rule for F-measures, which moves the threshold
below 0.5 when positives are rare and the model is calibrated, and keeps it near 0.5 when they are not).
The binary metrics are the same definitions as every other metric here (:mod:`labelcycle.evaluation.metrics`
on the two-class problem ``negative, positive``), plus the recall a moderator gets at a fixed precision
(the best recall over thresholds on P(positive) whose precision reaches ``target_precision``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from labelcycle.errors import ConfigError
from labelcycle.evaluation.bootstrap import bootstrap_metrics
from labelcycle.evaluation.metrics import check_proba, compute_metrics, encode_labels

NEGATIVE, POSITIVE = "negative", "positive"
BINARY_CLASSES = (NEGATIVE, POSITIVE)
#: binary metric name -> the two-class metric it is
BINARY_METRICS = {
    "binary_precision": f"precision__{POSITIVE}",
    "binary_recall": f"recall__{POSITIVE}",
    "binary_f1": f"f1__{POSITIVE}",
    "binary_macro_f1": "macro_f1",
    "binary_accuracy": "accuracy",
    "binary_pr_auc": f"pr_auc__{POSITIVE}",
}
RECALL_AT_PRECISION = "recall_at_precision"
THRESHOLD = "binary_threshold"


def check_positive_labels(positive_labels: Sequence[str], classes: Sequence[str]) -> list[str]:
    """The positive labels as strings, each one of ``classes``, not all of them.

    Raises:
        ConfigError: a positive label is not in the label set, or every label is positive.
    """
    positive = [str(x) for x in positive_labels]
    unknown = [x for x in positive if x not in classes]
    if unknown:
        raise ConfigError(
            f"evaluate.positive_labels {unknown} are not in the label set {list(classes)}; fix params.yaml"
        )
    if set(positive) >= set(classes):
        raise ConfigError("evaluate.positive_labels names every label; leave at least one negative label")
    return positive


def binary_view(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    positive_labels: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Gold as ``negative``/``positive``, and ``n x 2`` probabilities ``[1 - P(positive), P(positive)]``."""
    classes = [str(c) for c in classes]
    positive = check_positive_labels(positive_labels, classes)
    p = check_proba(proba, len(encode_labels(y_true, classes)), len(classes))
    is_pos = np.isin(np.asarray(classes), positive)
    score = np.clip(p[:, is_pos].sum(axis=1), 0.0, 1.0)
    gold = np.where(np.isin(np.asarray(y_true, dtype=object).astype(str), positive), POSITIVE, NEGATIVE)
    return gold, np.column_stack([1.0 - score, score])


def expected_f1_threshold(score: np.ndarray) -> float:
    """The flag threshold on P(positive) that maximises the binary macro-F1 expected under these
    probabilities (label-free).

    Flagging the ``k`` highest scores, with ``c`` their sum and ``s`` the sum of all ``n`` scores:
    E[TP] = c, E[FP] = k - c, E[FN] = s - c, E[TN] = n - k - s + c, so F1(positive) = 2c / (k + s) and
    F1(negative) = 2 E[TN] / (2n - k - s); the macro-F1 is their mean. Flagging nobody is a candidate
    (threshold just above the highest score).
    """
    s = np.sort(np.asarray(score, dtype=np.float64))[::-1]
    n, total = len(s), float(s.sum())
    if not n:
        return 0.5
    k = np.arange(0, n + 1, dtype=np.float64)
    c = np.r_[0.0, np.cumsum(s)]
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_pos = np.nan_to_num(2 * c / (k + total))
        f1_neg = np.nan_to_num(2 * (n - k - total + c) / (2 * n - k - total))
    ok = np.r_[True, s[1:] != s[:-1], True]  # a threshold flags every item tied with it
    best = int(np.argmax(np.where(ok, (f1_pos + f1_neg) / 2, -1.0)))
    return float(np.nextafter(s[0], np.inf)) if best == 0 else float(s[best - 1])


def recall_at_precision(is_positive: np.ndarray, score: np.ndarray, target: float) -> tuple[float, float]:
    """Best recall over thresholds ``score >= t`` whose precision is at least ``target``, and that ``t``.

    ``(0.0, nan)`` when no threshold reaches the precision; ``(nan, nan)`` without positives.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    n_pos = int(is_positive.sum())
    if n_pos == 0:
        return float("nan"), float("nan")
    order = np.argsort(-score, kind="stable")
    s, hit = score[order], is_positive[order]
    tp, flagged = np.cumsum(hit), np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True]  # a threshold flags every item tied with it
    ok = last & (tp / flagged >= target)
    if not ok.any():
        return 0.0, float("nan")
    best = np.flatnonzero(ok)[np.argmax(tp[ok])]
    return float(tp[best] / n_pos), float(s[best])


def flagged_view(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    positive_labels: Sequence[str],
    threshold: float | None,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The :func:`binary_view`, the flag threshold (None: :func:`expected_f1_threshold` of the scores)
    and the flags as ``n x 2`` hard probabilities ``[not flagged, flagged]``."""
    gold, p2 = binary_view(y_true, proba, classes, positive_labels)
    t = expected_f1_threshold(p2[:, 1]) if threshold is None else float(threshold)
    flags = np.where(p2[:, 1] >= t, 1.0, 0.0)
    return gold, p2, t, np.column_stack([1 - flags, flags])


def binary_metrics(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    positive_labels: Sequence[str],
    target_precision: float = 0.9,
    threshold: float | None = None,
) -> dict[str, float]:
    """``binary_precision, binary_recall, binary_f1, binary_macro_f1, binary_accuracy, binary_pr_auc``,
    ``recall_at_precision`` (at ``target_precision``) and the ``binary_threshold`` items were flagged at
    (``threshold``; None: :func:`expected_f1_threshold` of the scores)."""
    gold, p2, t, flagged = flagged_view(y_true, proba, classes, positive_labels, threshold)
    values = compute_metrics(gold, flagged, BINARY_CLASSES)
    out = {name: float(values[key]) for name, key in BINARY_METRICS.items() if key != f"pr_auc__{POSITIVE}"}
    out["binary_pr_auc"] = float(compute_metrics(gold, p2, BINARY_CLASSES)[f"pr_auc__{POSITIVE}"])
    out[RECALL_AT_PRECISION] = recall_at_precision(gold == POSITIVE, p2[:, 1], target_precision)[0]
    out[THRESHOLD] = t
    return out


def binary_intervals(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    positive_labels: Sequence[str],
    *,
    n_boot: int,
    random_state: int | np.random.Generator,
    threshold: float | None = None,
) -> dict[str, dict[str, float]]:
    """95% percentile bootstrap intervals of the binary metrics (``{name: {ci_low, ci_high}}``), items
    flagged at the same threshold as :func:`binary_metrics` (PR-AUC: on the probabilities)."""
    gold, p2, _, flagged = flagged_view(y_true, proba, classes, positive_labels, threshold)
    table = bootstrap_metrics(gold, flagged, BINARY_CLASSES, n_boot=n_boot, random_state=random_state)
    ranked = bootstrap_metrics(gold, p2, BINARY_CLASSES, n_boot=n_boot, random_state=random_state)
    table = pd.concat(
        [table[table["metric"] != f"pr_auc__{POSITIVE}"], ranked[ranked["metric"] == f"pr_auc__{POSITIVE}"]]
    )
    by = table.set_index("metric")
    return {
        name: {"ci_low": float(by.loc[key, "ci_low"]), "ci_high": float(by.loc[key, "ci_high"])}
        for name, key in BINARY_METRICS.items()
    }


def per_class_recall(
    y_true: Sequence[str] | np.ndarray | pd.Series, proba: np.ndarray | pd.DataFrame, classes: Sequence[str]
) -> dict[str, float]:
    """Recall of every class (NaN for a class absent from the gold labels)."""
    values = compute_metrics(y_true, proba, classes)
    return {str(c): float(values[f"recall__{c}"]) for c in classes}
