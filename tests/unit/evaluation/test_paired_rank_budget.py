"""A smaller resample budget for the ranking metrics leaves every other metric's interval unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from labelcycle.evaluation.metrics import is_rank_metric
from labelcycle.evaluation.paired import PredictionSet, compare_paired

CLASSES = ("a", "b", "c")


def _set(seed: int) -> PredictionSet:
    rng = np.random.default_rng(seed)
    n = 400
    y = np.asarray(CLASSES)[np.arange(n) % 3]
    p = rng.dirichlet([1, 1, 1], n)
    p[np.arange(n), np.arange(n) % 3] += 0.3
    return PredictionSet(np.arange(n).astype(str), y, p / p.sum(axis=1, keepdims=True), CLASSES)


def test_rank_budget_changes_only_the_auc_intervals():
    full = compare_paired(_set(0), _set(1), n_boot=300, random_state=7).table.set_index("metric")
    cut = compare_paired(_set(0), _set(1), n_boot=300, random_state=7, n_boot_rank=50).table.set_index(
        "metric"
    )
    for metric in full.index:
        assert full.loc[metric, "delta"] == cut.loc[metric, "delta"]
        if not is_rank_metric(metric):
            assert full.loc[metric, "ci_low"] == cut.loc[metric, "ci_low"]
            assert full.loc[metric, "ci_high"] == cut.loc[metric, "ci_high"]
    assert cut.loc["roc_auc_ovr", "ci_low"] == pytest.approx(full.loc["roc_auc_ovr", "ci_low"], abs=0.02)
    assert cut.loc["roc_auc_ovr", "ci_low"] != full.loc["roc_auc_ovr", "ci_low"]
