"""Comparing two prediction sets on the binary moderation metrics: the same values the evaluate stage
reports for each, paired intervals, and a verdict on a binary primary metric."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.evaluation.moderation import binary_metrics
from labelcycle.evaluation.paired import PredictionSet, compare_paired, verdict
from labelcycle.evaluation.slices import slice_paired

CLASSES = ("not_abusive", "mild", "strong")
POSITIVE = ["mild", "strong"]


def _sets(n: int = 300, seed: int = 0) -> tuple[PredictionSet, PredictionSet]:
    rng = np.random.default_rng(seed)
    y = rng.choice(CLASSES, size=n, p=[0.7, 0.2, 0.1])
    pos = np.isin(y, POSITIVE)
    good = np.where(pos, 0.8, 0.15) + rng.normal(0, 0.05, n)  # P(positive) of a sharp model
    weak = np.where(pos, 0.55, 0.4) + rng.normal(0, 0.15, n)  # of a weak one
    sets = []
    for p_pos in (weak, good):
        p_pos = np.clip(p_pos, 0.01, 0.99)
        proba = np.column_stack([1 - p_pos, p_pos / 2, p_pos / 2])
        sets.append(PredictionSet([f"i{k}" for k in range(n)], y, proba, CLASSES))
    return sets[0], sets[1]


def test_binary_rows_hold_each_sets_evaluate_stage_values_and_the_verdict_reads_them():
    base, cand = _sets()
    cmp = compare_paired(base, cand, n_boot=200, random_state=0, positive_labels=POSITIVE)
    for name in ("binary_f1", "binary_precision", "binary_recall", "binary_macro_f1", "binary_pr_auc"):
        row = cmp.row(name)
        assert row["base"] == pytest.approx(binary_metrics(base.y_true, base.proba, CLASSES, POSITIVE)[name])
        assert row["candidate"] == pytest.approx(
            binary_metrics(cand.y_true, cand.proba, CLASSES, POSITIVE)[name]
        )
        assert row["ci_low"] <= row["delta"] <= row["ci_high"]
    assert verdict(cmp, "binary_f1") == "better"
    assert (
        verdict(compare_paired(cand, base, n_boot=200, random_state=0, positive_labels=POSITIVE), "binary_f1")
        == "worse"
    )


def test_without_positive_labels_there_are_no_binary_rows():
    base, cand = _sets()
    cmp = compare_paired(base, cand, n_boot=50, random_state=0)
    assert not cmp.table["metric"].str.startswith("binary_").any()


def test_slices_compare_the_binary_metric_at_the_thresholds_of_all_eval_items():
    base, cand = _sets()
    slices = pd.DataFrame({"item_id": base.item_ids, "region": ["EU", "US"] * 150})
    table = slice_paired(
        base, cand, slices, metrics=["binary_f1"], n_boot=50, random_state=0, positive_labels=POSITIVE
    )
    assert set(table["slice_value"]) == {"EU", "US"} and set(table["metric"]) == {"binary_f1"}
    eu = np.asarray(slices["region"] == "EU")
    t_base = binary_metrics(base.y_true, base.proba, CLASSES, POSITIVE)["binary_threshold"]
    expected = binary_metrics(base.y_true[eu], base.proba[eu], CLASSES, POSITIVE, threshold=t_base)
    assert table.set_index("slice_value").loc["EU", "base"] == pytest.approx(expected["binary_f1"])
