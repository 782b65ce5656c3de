"""Moderation metrics: the positive-labels question, recall at precision, flag threshold, baseline."""

from __future__ import annotations

import numpy as np
import pytest

from labelcycle.errors import ConfigError
from labelcycle.evaluation.baseline import baseline_metrics, majority_label
from labelcycle.evaluation.moderation import (
    binary_metrics,
    expected_f1_threshold,
    per_class_recall,
    recall_at_precision,
)
from labelcycle.params import from_mapping

CLASSES = ["not_abusive", "ambiguous", "mild", "strong"]
POSITIVE = ["mild", "strong"]
Y = ["not_abusive"] * 6 + ["ambiguous", "mild", "strong", "strong"]
PROBA = np.array(
    [[0.9, 0.05, 0.03, 0.02]] * 5
    + [[0.3, 0.1, 0.4, 0.2]]  # a negative item flagged: P(positive) 0.6
    + [[0.5, 0.3, 0.1, 0.1]]
    + [[0.2, 0.1, 0.3, 0.4]]
    + [[0.1, 0.1, 0.1, 0.7]]
    + [[0.6, 0.1, 0.2, 0.1]]  # a positive item missed: P(positive) 0.3
)


def test_binary_metrics_read_every_positive_label_as_one_class():
    m = binary_metrics(Y, PROBA, CLASSES, POSITIVE, threshold=0.5)
    # flagged: rows 5, 7, 8 (P(positive) 0.6, 0.7, 0.8); positives: rows 7, 8, 9
    assert m["binary_precision"] == pytest.approx(2 / 3)
    assert m["binary_recall"] == pytest.approx(2 / 3)
    assert m["binary_f1"] == pytest.approx(2 / 3)
    assert m["binary_accuracy"] == pytest.approx(0.8)
    assert m["binary_macro_f1"] == pytest.approx((2 / 3 + 6 / 7) / 2)
    assert m["binary_threshold"] == 0.5


def test_recall_at_precision_is_the_best_recall_whose_precision_reaches_the_target():
    is_pos = np.array([1, 1, 0, 1, 0, 1], dtype=bool)
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert recall_at_precision(is_pos, score, 0.75) == (0.75, 0.6)  # 3 of top 4
    assert recall_at_precision(is_pos, score, 1.0) == (0.5, 0.8)
    assert recall_at_precision(is_pos, np.full(6, 0.5), 0.9) == (
        0.0,
        pytest.approx(float("nan"), nan_ok=True),
    )


def test_the_default_flag_threshold_maximises_the_expected_binary_macro_f1():
    # two confident positives, one doubtful item, seven clear negatives
    score = np.array([0.95, 0.9, 0.45, *[0.02] * 7])
    t = expected_f1_threshold(score)
    assert t == 0.45  # flagging the doubtful item too is worth it in expectation

    def expected_macro_f1(k: int) -> float:
        s = np.sort(score)[::-1]
        c, total, n = s[:k].sum(), s.sum(), len(s)
        return (2 * c / (k + total) + 2 * (n - k - total + c) / (2 * n - k - total)) / 2

    assert expected_macro_f1(3) == max(expected_macro_f1(k) for k in range(1, 11))
    # an uninformative model on a balanced set does not flag everything
    assert expected_f1_threshold(np.full(10, 0.5)) >= 0.5


def test_per_class_recall_is_reported_for_every_class():
    assert per_class_recall(Y, PROBA, CLASSES) == {
        "not_abusive": pytest.approx(5 / 6),
        "ambiguous": 0.0,
        "mild": 0.0,
        "strong": 0.5,
    }


def test_the_majority_baseline_answers_the_most_frequent_class_on_the_same_split():
    base = baseline_metrics(Y, CLASSES, ["accuracy", "macro_f1", "roc_auc_ovr"], POSITIVE)
    assert majority_label(Y, CLASSES) == "not_abusive"
    assert base["accuracy"] == pytest.approx(0.6)
    assert base["roc_auc_ovr"] == pytest.approx(0.5)
    assert base["binary_recall"] == 0.0 and base["binary_accuracy"] == pytest.approx(0.7)


def test_positive_labels_outside_the_label_set_are_refused():
    with pytest.raises(ConfigError, match=r"evaluate.positive_labels \['severe'\] are not in the label set"):
        binary_metrics(Y, PROBA, CLASSES, ["severe"])
    with pytest.raises(ConfigError, match=r"evaluate.positive_labels \['severe'\] are not in ingest.labels"):
        from_mapping({"evaluate": {"positive_labels": ["severe"]}})
