from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from labelcycle.errors import ValidationError
from labelcycle.evaluation.metrics import (
    compute_metrics,
    evaluate,
    metric_names,
    prepare_eval,
    weighted_metrics,
)

CLS = ["a", "b"]
Y = np.array(["a", "a", "b", "b"])
P = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])


def test_metrics_match_hand_computed_values_on_four_items():
    m = compute_metrics(Y, P, CLS)
    # predictions a, b, b, a -> 2 of 4 right
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision__a"] == pytest.approx(0.5) and m["recall__a"] == pytest.approx(0.5)
    assert m["f1__b"] == pytest.approx(0.5) and m["macro_f1"] == pytest.approx(0.5)
    # class b scores: positives 0.7, 0.2; negatives 0.1, 0.6 -> pairs won: 0.7>0.1, 0.7>0.6, 0.2>0.1 = 3/4
    assert m["roc_auc__b"] == pytest.approx(0.75)
    # class b ranking 0.7(+), 0.6(-), 0.2(+), 0.1(-): AP = 1/2 * 1 + 1/2 * 2/3
    assert m["pr_auc__b"] == pytest.approx(0.5 + 1 / 3)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.7, 0.2])))
    assert m["brier"] == pytest.approx(np.mean([2 * 0.1**2, 2 * 0.6**2, 2 * 0.3**2, 2 * 0.8**2]))
    # 2 bins: conf 0.9 (right), 0.6 (wrong), 0.7 (right), 0.8 (wrong) all in (0.5, 1]: |0.5 - 0.75|
    assert compute_metrics(Y, P, CLS, n_bins=2)["ece"] == pytest.approx(0.25)


def test_metric_names_are_stable_and_complete():
    m = compute_metrics(Y, P, CLS)
    assert list(m) == metric_names(CLS)
    for name in ("accuracy", "macro_f1", "roc_auc_ovr", "pr_auc_ovr", "log_loss", "ece", "brier", "f1__a"):
        assert name in m


@pytest.mark.parametrize("rounding", [None, 1])
def test_metrics_agree_with_scikit_learn_on_random_data(rounding, make_preds):
    y, p, cls = make_preds(300, seed=3, k=4, signal=0.5)
    if rounding:  # many tied scores
        p = np.round(p, rounding)
        p[:, 0] += 1 - p.sum(axis=1)
        p = np.clip(p, 0, 1)
        p /= p.sum(axis=1, keepdims=True)
    m = compute_metrics(y, p, cls)
    pred = np.array(cls)[p.argmax(axis=1)]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["roc_auc_ovr"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", labels=cls))
    ap = np.mean([skm.average_precision_score(y == c, p[:, j]) for j, c in enumerate(cls)])
    assert m["pr_auc_ovr"] == pytest.approx(ap)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p, labels=cls))
    assert m["brier"] == pytest.approx(np.mean(((p - (y[:, None] == np.array(cls))) ** 2).sum(axis=1)))
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=cls, zero_division=np.nan)
    for j, c in enumerate(cls):
        assert m[f"recall__{c}"] == pytest.approx(rec[j])
        assert m[f"f1__{c}"] == pytest.approx(f1[j])


def test_weighted_metrics_equal_metrics_on_repeated_items(make_preds):
    y, p, cls = make_preds(50, seed=1)
    w = np.random.default_rng(2).integers(0, 4, 50)
    rows = np.repeat(np.arange(50), w)
    direct = compute_metrics(y[rows], p[rows], cls)
    for dtype in (np.float64, np.float32):
        weighted = weighted_metrics(prepare_eval(y, p, cls), w[None].astype(dtype))
        for name, v in direct.items():
            assert weighted[name][0] == pytest.approx(v, rel=1e-5, abs=1e-7, nan_ok=True), name


def test_class_absent_from_gold_is_skipped_and_reported_not_crashing():
    y = np.array(["a", "a", "b", "b"])
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    rep = evaluate(y, p, ["a", "b", "c"])
    assert rep.skipped_auc_classes == ("c",)
    assert any("absent from y_true" in note for note in rep.notes)
    assert np.isnan(rep.values["roc_auc__c"]) and np.isnan(rep.values["recall__c"])
    assert rep.values["roc_auc_ovr"] == pytest.approx(
        np.mean([rep.values["roc_auc__a"], rep.values["roc_auc__b"]])
    )
    # c is predicted once (wrongly): F1 0, included in the macro average
    assert rep.values["f1__c"] == 0.0
    assert rep.values["macro_f1"] == pytest.approx((rep.values["f1__a"] + rep.values["f1__b"]) / 3)


def test_log_loss_is_clipped_for_zero_probability():
    m = compute_metrics(["a", "b"], np.array([[1.0, 0.0], [1.0, 0.0]]), CLS)
    assert np.isfinite(m["log_loss"]) and m["log_loss"] > 10


def test_unknown_label_is_refused_with_its_name():
    with pytest.raises(ValidationError, match=r"outside the label set.*'z'"):
        compute_metrics(["a", "z"], np.array([[0.5, 0.5], [0.5, 0.5]]), CLS)


def test_proba_rows_not_summing_to_one_are_refused():
    with pytest.raises(ValidationError, match="do not sum to 1"):
        compute_metrics(["a", "b"], np.array([[0.5, 0.4], [0.5, 0.5]]), CLS)


def test_proba_of_wrong_shape_is_refused():
    with pytest.raises(ValidationError, match=r"shape \(n_items, n_classes\) = \(2, 2\)"):
        compute_metrics(["a", "b"], np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5]]), CLS)
