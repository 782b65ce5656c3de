"""The beats-baseline gate: a candidate whose primary metric does not beat the majority-class baseline on
the eval split is refused, with both figures; exact outcomes on hand-made facts, and a real refused
promotion against a real MLflow registry."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from labelcycle import catalog
from labelcycle.errors import PromotionRefusedError
from labelcycle.promotion import gates as g
from labelcycle.promotion.execute import execute
from labelcycle.promotion.release import ModelRef, Release


def test_a_candidate_above_the_baseline_passes_and_the_evidence_gives_both_figures():
    gate = g.baseline_gate("macro_f1", 0.62, 0.31)
    assert gate.passed and gate.applies
    assert "macro_f1 0.6200 vs majority-class baseline 0.3100" in gate.evidence
    assert "beats it by 0.3100" in gate.evidence


@pytest.mark.parametrize("candidate", [0.31, 0.2])
def test_a_candidate_level_with_or_below_the_baseline_fails_with_both_figures(candidate):
    gate = g.baseline_gate("binary_f1", candidate, 0.31)
    assert not gate.passed and gate.applies
    assert f"binary_f1 {candidate:.4f} vs majority-class baseline 0.3100" in gate.evidence
    assert "does not beat it" in gate.evidence and "--force" in gate.evidence


def test_for_a_loss_the_candidate_must_be_lower_than_the_baseline():
    assert g.baseline_gate("log_loss", 0.4, 0.69).passed
    worse = g.baseline_gate("log_loss", 0.8, 0.69)
    assert not worse.passed and "lower is better" in worse.evidence


def test_an_evaluation_without_a_recorded_baseline_is_not_judged_and_says_how_to_judge_it():
    gate = g.baseline_gate("accuracy", 0.9, None)
    assert gate.passed and not gate.applies and "dvc repro evaluate" in gate.evidence


def test_a_candidate_without_the_metric_fails():
    gate = g.baseline_gate("accuracy", None, 0.5)
    assert not gate.passed and catalog.METRICS in gate.evidence


def test_the_baseline_is_read_from_metrics_json_and_kept_in_the_release_manifest():
    data = {"accuracy": 0.8, "eval_items": 10, "eval_digest": "e1", "ci95": {}, "baseline": {"accuracy": 0.7}}
    report = catalog.MetricsReport.from_dict(json.loads(json.dumps(data)))
    assert report.baseline == {"accuracy": 0.7} and "baseline" not in report.values
    rel = Release("d", "c" * 40, {}, (), "e1", {"accuracy": 0.8}, {}, (ModelRef("quality", "q", "1"),))
    rel = replace(rel, baseline=report.baseline)
    assert Release.from_manifest(rel.to_manifest()).baseline == {"accuracy": 0.7}


def test_a_candidate_level_with_the_baseline_is_refused_and_production_is_unchanged(lab, monkeypatch):
    made = lab.candidate
    # the lab's candidates score accuracy 1.0: a baseline of 1.0 (every eval item one class) is not beaten
    monkeypatch.setattr(lab, "candidate", lambda v, rev: replace(made(v, rev), baseline={"accuracy": 1.0}))
    plan = lab.plan(lab.version())
    assert [x.name for x in plan.failed] == [g.BASELINE]
    assert "accuracy 1.0000 vs majority-class baseline 1.0000" in plan.failed[0].evidence
    with pytest.raises(PromotionRefusedError, match="beats-baseline failed; nothing was changed"):
        execute(plan, lab.ctx())
    assert lab.production() is None and lab.tags() == {}
