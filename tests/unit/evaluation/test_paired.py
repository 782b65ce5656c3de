from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from labelcycle.errors import EvalSetMismatchError, SchemaError
from labelcycle.evaluation.paired import (
    BETTER,
    NO_CHANGE,
    WORSE,
    PredictionSet,
    check_same_eval_digest,
    compare_paired,
    mcnemar_test,
    verdict,
)


def _pair(make_preds, n=400, shift=0.0, seed=0):
    y, p, cls = make_preds(n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    logit = np.log(p) + rng.normal(scale=0.3, size=p.shape)
    logit[np.arange(n), pd.Index(cls).get_indexer(y)] += shift
    q = np.exp(logit)
    q /= q.sum(axis=1, keepdims=True)
    ids = np.array([f"item{i}" for i in range(n)])
    return PredictionSet(ids, y, p, cls, "digest-1"), PredictionSet(ids, y, q, cls, "digest-1")


def test_mcnemar_matches_hand_computation():
    # 3 base-only correct, 9 candidate-only correct, 8 concordant
    base = np.array([1] * 3 + [0] * 9 + [1] * 5 + [0] * 3, dtype=bool)
    cand = np.array([0] * 3 + [1] * 9 + [1] * 5 + [0] * 3, dtype=bool)
    r = mcnemar_test(base, cand)
    assert (r.base_only, r.candidate_only) == (3, 9)
    # P(X <= 3), X ~ Bin(12, 1/2) = (1 + 12 + 66 + 220) / 4096 = 299 / 4096
    assert r.p_exact == pytest.approx(2 * 299 / 4096)
    assert r.p_mid == pytest.approx(2 * 299 / 4096 - 220 / 4096)
    assert r.p_exact == pytest.approx(stats.binomtest(3, 12, 0.5).pvalue)


def test_mcnemar_without_discordant_items_is_one():
    r = mcnemar_test(np.ones(5, bool), np.ones(5, bool))
    assert r.p_exact == r.p_mid == 1.0


def test_comparison_of_identical_predictions_has_zero_deltas(make_preds):
    base, _ = _pair(make_preds)
    r = compare_paired(base, base, n_boot=100, random_state=0)
    assert np.allclose(r.table["delta"].dropna(), 0)
    assert np.allclose(r.table[["ci_low", "ci_high"]].dropna(), 0)
    assert verdict(r) == NO_CHANGE


def test_clearly_better_candidate_is_judged_better_and_worse_when_swapped(make_preds):
    base, cand = _pair(make_preds, n=600, shift=1.5)
    r = compare_paired(base, cand, n_boot=200, random_state=0)
    row = r.row("macro_f1")
    assert row["delta"] > 0 and row["ci_low"] > 0 and row["p_value"] < 0.05
    assert verdict(r) == BETTER
    assert verdict(r, "log_loss") == BETTER  # lower loss is better
    assert r.row("accuracy")["p_method"] == "mcnemar_midp"
    assert r.row("accuracy")["p_value"] == pytest.approx(r.mcnemar.p_mid)
    assert verdict(compare_paired(cand, base, n_boot=200, random_state=0)) == WORSE


def test_comparison_aligns_items_by_id_regardless_of_row_order(make_preds):
    base, cand = _pair(make_preds, n=200, shift=0.5)
    rev = PredictionSet(cand.item_ids[::-1], cand.y_true[::-1], cand.proba[::-1], cand.classes, "digest-1")
    a = compare_paired(base, cand, n_boot=50, random_state=3).table
    b = compare_paired(base, rev, n_boot=50, random_state=3).table
    pd.testing.assert_frame_equal(a, b)


def test_different_item_sets_are_refused_with_counts(make_preds):
    base, cand = _pair(make_preds, n=100)
    keep = np.arange(100) >= 3  # drop 3 items...
    ids = cand.item_ids[keep].copy()
    ids[:2] = ["new1", "new2"]  # ...and replace 2 more by unknown ids
    other = PredictionSet(ids, cand.y_true[keep], cand.proba[keep], cand.classes, "digest-1")
    with pytest.raises(
        EvalSetMismatchError, match=r"5 base item id\(s\) missing from the candidate.*2 extra"
    ):
        compare_paired(base, other, n_boot=10, random_state=0)


def test_different_gold_labels_are_refused(make_preds):
    base, cand = _pair(make_preds, n=50)
    y = cand.y_true.copy()
    y[0] = "neu" if y[0] != "neu" else "pos"
    with pytest.raises(EvalSetMismatchError, match="different gold labels"):
        compare_paired(
            base, PredictionSet(cand.item_ids, y, cand.proba, cand.classes, "digest-1"), random_state=0
        )


def test_duplicated_item_ids_are_refused(make_preds):
    base, cand = _pair(make_preds, n=20)
    ids = cand.item_ids.copy()
    ids[1] = ids[0]
    dup = PredictionSet(ids, cand.y_true, cand.proba, cand.classes, "digest-1")
    with pytest.raises(EvalSetMismatchError, match="duplicated item id"):
        compare_paired(base, dup, random_state=0)


def test_different_eval_digests_are_refused(make_preds):
    base, cand = _pair(make_preds, n=20)
    other = PredictionSet(cand.item_ids, cand.y_true, cand.proba, cand.classes, "digest-2")
    with pytest.raises(EvalSetMismatchError, match=r"different gold eval splits.*'digest-1'.*'digest-2'"):
        compare_paired(base, other, random_state=0)
    with pytest.raises(EvalSetMismatchError, match="different gold eval splits"):
        check_same_eval_digest("abc", "abd")
    with pytest.raises(EvalSetMismatchError, match="cannot confirm"):
        check_same_eval_digest("abc", None)
    check_same_eval_digest("abc", "abc")


def test_prediction_set_from_frame_reads_schema_columns():
    frame = pd.DataFrame(
        {"item_id": ["1", "2"], "label": ["a", "b"], "proba_a": [0.9, 0.2], "proba_b": [0.1, 0.8]}
    )
    ps = PredictionSet.from_frame(frame, ["a", "b"], eval_digest="d")
    assert ps.n == 2 and ps.proba.shape == (2, 2)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['proba_b'\]"):
        PredictionSet.from_frame(frame.drop(columns="proba_b"), ["a", "b"])


def test_hundred_thousand_item_comparison_is_fast(make_preds):
    import time

    base, cand = _pair(make_preds, n=100_000, shift=0.05)
    t0 = time.perf_counter()
    compare_paired(base, cand, n_boot=200, random_state=0)
    assert time.perf_counter() - t0 < 10  # 200 resamples here; see the report for 1,000
