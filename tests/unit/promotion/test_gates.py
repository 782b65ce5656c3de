"""Promotion gates on tiny hand-made inputs with exact outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.evaluation.paired import PredictionSet, compare_paired
from labelcycle.promotion import gates as g
from labelcycle.promotion.release import ModelRef

CLASSES = ("a", "b")


def _set(pred: list[str], gold: list[str]) -> PredictionSet:
    proba = np.array([[0.9, 0.1] if p == "a" else [0.1, 0.9] for p in pred])
    return PredictionSet([f"i{k}" for k in range(len(gold))], gold, proba, CLASSES, eval_digest="d1")


GOLD = ["a"] * 10 + ["b"] * 10


def test_eval_digest_gate_passes_on_equal_digests_and_names_both_when_they_differ():
    assert g.eval_digest_gate("d1", "d1", True).passed
    bad = g.eval_digest_gate("d2", "d1", True)
    assert not bad.passed and "d2" in bad.evidence and "d1" in bad.evidence


def test_eval_digest_gate_on_first_promotion_still_checks_the_candidate_digest():
    assert g.eval_digest_gate("d1", None, False, split_digest="d1").passed
    assert not g.eval_digest_gate(None, None, False).passed
    stale = g.eval_digest_gate("d1", None, False, split_digest="d9")
    assert not stale.passed and "d9" in stale.evidence


def test_non_inferiority_passes_an_identical_candidate_with_a_zero_interval():
    same = compare_paired(_set(GOLD, GOLD), _set(GOLD, GOLD), n_boot=200, random_state=0)
    gate = g.non_inferiority_gate(same, "accuracy", 0.01)
    assert gate.passed and "delta +0.0000" in gate.evidence and "[+0.0000, +0.0000]" in gate.evidence


def test_non_inferiority_passes_a_candidate_that_only_fixes_items():
    base = GOLD[:]
    base[0] = base[1] = "b"  # production gets two items wrong; the candidate fixes them
    cmp = compare_paired(_set(base, GOLD), _set(GOLD, GOLD), n_boot=200, random_state=0)
    gate = g.non_inferiority_gate(cmp, "accuracy", 0.01)
    assert gate.passed and cmp.row("accuracy")["ci_low"] >= 0


def test_non_inferiority_refuses_a_candidate_that_breaks_half_the_items_and_states_the_rule():
    worse = ["a"] * 20  # predicts one class: every "b" item wrong
    cmp = compare_paired(_set(GOLD, GOLD), _set(worse, GOLD), n_boot=200, random_state=0)
    gate = g.non_inferiority_gate(cmp, "accuracy", 0.01)
    assert not gate.passed
    assert "delta -0.5000" in gate.evidence and "<= -margin -0.0100" in gate.evidence


def test_non_inferiority_mirrors_the_rule_for_a_loss():
    worse = ["a"] * 20
    cmp = compare_paired(_set(GOLD, GOLD), _set(worse, GOLD), n_boot=200, random_state=0)
    gate = g.non_inferiority_gate(cmp, "log_loss", 0.01)
    assert not gate.passed and "lower is better" in gate.evidence


def test_non_inferiority_does_not_apply_without_production_and_fails_on_a_mismatch():
    first = g.non_inferiority_gate(None, "accuracy", 0.01, candidate_value=0.8)
    assert first.passed and not first.applies and "0.8000" in first.evidence
    assert not g.non_inferiority_gate(None, "accuracy", 0.01, mismatch="different items").passed


def _slice_rows(deltas: dict[str, tuple[int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "slice_column": "region",
                "slice_value": k,
                "n": n,
                "metric": "accuracy",
                "base": 0.8,
                "candidate": 0.8 + d,
                "delta": d,
                "ci_low": d - 0.05,
                "ci_high": d + 0.05,
                "p_value": 0.5,
            }
            for k, (n, d) in deltas.items()
        ]
    )


def test_slices_gate_fails_on_a_large_slice_that_loses_more_than_the_margin_and_names_it():
    table = _slice_rows({"EU": (60, -0.06), "US": (80, 0.02)})
    gate = g.slices_gate(table, "accuracy", 0.05, 50)
    assert (
        not gate.passed
        and "region=EU (n=60)" in gate.evidence
        and "US" not in gate.evidence.split("regress")[1]
    )


def test_slices_gate_ignores_small_slices_and_losses_within_the_margin():
    table = _slice_rows({"EU": (49, -0.30), "US": (80, -0.05)})
    gate = g.slices_gate(table, "accuracy", 0.05, 50)
    assert gate.passed and "1 slice(s)" in gate.evidence and "region=US" in gate.evidence


def test_slices_gate_without_judgeable_slices_does_not_apply():
    assert not g.slices_gate(_slice_rows({"EU": (10, -0.5)}), "accuracy", 0.05, 50).applies
    assert not g.slices_gate(None, "accuracy", 0.05, 50).applies


def test_ingest_gate():
    assert g.ingest_gate(True).passed
    assert not g.ingest_gate(False).passed
    assert "no validation result" in g.ingest_gate(None).evidence


def test_committed_gate_lists_every_problem():
    ok = g.committed_gate(g.CommitFacts("abc123"))
    assert ok.passed
    bad = g.committed_gate(
        g.CommitFacts(
            "abc123",
            untracked=("data/raw.dvc",),
            dirty=("dvc.lock",),
            out_of_sync=("reports/metrics.json changed since dvc.lock",),
        )
    )
    assert not bad.passed
    assert "not committed: data/raw.dvc" in bad.evidence and "uncommitted changes in dvc.lock" in bad.evidence
    assert "reports/metrics.json" in bad.evidence
    assert not g.committed_gate(g.CommitFacts(None)).passed


def test_remote_gate():
    assert g.remote_gate(g.RemoteFacts("r", "/x", True, True, total=5, to_push=0)).evidence.startswith(
        "all 5"
    )
    push = g.remote_gate(g.RemoteFacts("r", "/x", True, True, total=5, to_push=2))
    assert push.passed and "2 of 5" in push.evidence
    first = g.remote_gate(g.RemoteFacts("labelcycle-local", "/x", False, True, total=5, to_push=5))
    assert first.passed and "will be configured" in first.evidence
    assert not g.remote_gate(
        g.RemoteFacts("r", "s3://b", True, False, total=5, to_push=5, error="timeout")
    ).passed
    missing = g.remote_gate(g.RemoteFacts("r", "/x", True, True, total=5, missing=("abc",)))
    assert not missing.passed and "abc" in missing.evidence


def test_models_gate():
    m = ModelRef("quality", "q", "2", "run2")
    assert g.models_gate([m], {("q", "2"): "run2"}).passed
    assert "not in the model registry" in g.models_gate([m], {("q", "2"): None}).evidence
    assert "trained by run other" in g.models_gate([m], {("q", "2"): "other"}).evidence
    assert not g.models_gate([], {}).passed


@pytest.mark.parametrize("name", g.ORDER)
def test_gate_names_are_stable(name):
    assert name == name.lower() and " " not in name


def test_comparison_gates_name_the_metric_they_judge_in_every_outcome():
    cmp = compare_paired(_set(GOLD, GOLD), _set(GOLD, GOLD), n_boot=50, random_state=0)
    non_inferiority = [
        g.non_inferiority_gate(None, "log_loss", 0.01),
        g.non_inferiority_gate(None, "log_loss", 0.01, candidate_value=0.3),
        g.non_inferiority_gate(None, "log_loss", 0.01, mismatch="different items"),
        g.non_inferiority_gate(cmp, "log_loss", 0.01),
    ]
    table = _slice_rows({"EU": (60, 0.0)}).assign(metric="log_loss")
    slices = [
        g.slices_gate(None, "log_loss", 0.05, 50),
        g.slices_gate(None, "log_loss", 0.05, 50, no_features=True),
        g.slices_gate(None, "log_loss", 0.05, 50, mismatch="different items"),
        g.slices_gate(table, "log_loss", 0.05, 100),
        g.slices_gate(table, "log_loss", 0.05, 50),
    ]
    assert [gate.evidence for gate in non_inferiority + slices if "log_loss" not in gate.evidence] == []
