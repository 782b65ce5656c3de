from __future__ import annotations

import numpy as np
import pytest

from labelcycle.errors import ValidationError
from labelcycle.evaluation.bootstrap import bootstrap_metrics
from labelcycle.evaluation.metrics import compute_metrics, metric_names


def test_bootstrap_table_is_tidy_and_brackets_the_point_value(make_preds):
    y, p, cls = make_preds(500, seed=0)
    table = bootstrap_metrics(y, p, cls, n_boot=200, random_state=0)
    assert list(table.columns) == ["metric", "value", "ci_low", "ci_high", "n"]
    assert table["metric"].tolist() == metric_names(cls)
    assert (table["n"] == 500).all()
    point = compute_metrics(y, p, cls)
    assert table.set_index("metric")["value"].to_dict() == pytest.approx(point)
    # ECE is biased upwards under resampling, so its percentile interval may sit above the point value
    t = table[table["metric"] != "ece"]
    assert (t["ci_low"] <= t["value"] + 1e-12).all() and (t["value"] <= t["ci_high"] + 1e-12).all()


def test_bootstrap_is_reproducible_from_random_state(make_preds):
    y, p, cls = make_preds(200, seed=1)
    a = bootstrap_metrics(y, p, cls, n_boot=50, random_state=7)
    b = bootstrap_metrics(y, p, cls, n_boot=50, random_state=np.random.default_rng(7))
    assert a.equals(b)
    assert not a.equals(bootstrap_metrics(y, p, cls, n_boot=50, random_state=8))


def test_accuracy_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    # each simulated eval set: 200 items, each correct with probability 0.8
    rng = np.random.default_rng(123)
    n, true_acc, reps, hits = 200, 0.8, 120, 0
    cls = ["a", "b"]
    for _ in range(reps):
        correct = rng.random(n) < true_acc
        y = np.where(rng.random(n) < 0.5, "a", "b")
        pred_a = np.where(correct, y == "a", y != "a")
        conf = rng.uniform(0.55, 0.95, n)
        p = np.column_stack([np.where(pred_a, conf, 1 - conf), np.where(pred_a, 1 - conf, conf)])
        t = bootstrap_metrics(y, p, cls, n_boot=300, random_state=rng).set_index("metric")
        hits += t.loc["accuracy", "ci_low"] <= true_acc <= t.loc["accuracy", "ci_high"]
    # binomial(120, 0.95) lies in [106, 119] with probability > 0.99; percentile intervals run a bit narrow
    assert 104 <= hits <= 120, hits


def test_rare_class_missing_from_some_resamples_gives_intervals_not_errors(make_preds):
    y, p, cls = make_preds(60, seed=2)
    y = y.copy()
    y[:] = "neg"
    y[0] = "pos"  # one positive item: absent from about a third of resamples
    t = bootstrap_metrics(y, p, cls, n_boot=100, random_state=0).set_index("metric")
    assert np.isfinite(t.loc["roc_auc__pos", ["ci_low", "ci_high"]].astype(float)).all()
    assert t.loc["roc_auc__neu", ["value", "ci_low", "ci_high"]].isna().all()


def test_bootstrap_refuses_bad_n_boot(make_preds):
    y, p, cls = make_preds(20, seed=0)
    with pytest.raises(ValidationError, match="n_boot must be >= 1"):
        bootstrap_metrics(y, p, cls, n_boot=0, random_state=0)


def test_thousand_resamples_on_five_thousand_items_take_seconds_at_most(make_preds):
    import time

    y, p, cls = make_preds(5000, seed=0)
    t0 = time.perf_counter()
    bootstrap_metrics(y, p, cls, n_boot=1000, random_state=0)
    assert time.perf_counter() - t0 < 10  # typically ~0.5 s; generous for a shared 2-core machine
