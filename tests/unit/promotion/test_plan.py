"""The promotion plan: exact actions, no-ops, refusals, --force, and rollback restoring state exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labelcycle.errors import PromotionRefusedError, WorkspaceError
from labelcycle.params import PromoteParams
from labelcycle.promotion import plan as P
from labelcycle.promotion import rollback as R
from labelcycle.promotion.execute import Context, execute
from labelcycle.promotion.gates import CommitFacts, RemoteFacts
from labelcycle.promotion.release import ModelRef, Release
from labelcycle.promotion.render import render_plan

CLASSES = ["a", "b"]
PARAMS = PromoteParams(n_boot=200, min_slice_size=5)
METRIC = "accuracy"
GOLD = ["a"] * 10 + ["b"] * 10


def _preds(pred: list[str], confidence: float = 0.9) -> pd.DataFrame:
    p = np.array([confidence if x == "a" else 1 - confidence for x in pred])
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(20)],
            "gold_label": GOLD,
            "label": pred,
            "proba_a": p,
            "proba_b": 1 - p,
        }
    )


def _release(version: str, digest: str = "ds1", rid: str | None = None) -> Release:
    return Release(
        dataset_digest=digest,
        git_rev="c" * 40,
        dvc_hashes={"data/raw": "r1.dir"},
        raw_batches=("b1",),
        eval_digest="e1",
        metrics={"accuracy": 0.9},
        intervals={},
        models=(ModelRef("quality", "q", version, f"run{version}"),),
        release_id=rid,
        baseline={"accuracy": 0.5},
    )


def _evidence(
    cand: Release,
    prod: Release | None,
    cand_pred: list[str],
    prod_pred: list[str] | None = None,
    state: P.RegistryState | None = None,
    **kw,
) -> P.Evidence:
    features = pd.DataFrame({"item_id": [f"i{k}" for k in range(20)], "region": ["EU", "US"] * 10})
    args = dict(
        candidate=cand,
        production=prod,
        candidate_predictions=_preds(cand_pred),
        production_predictions=_preds(prod_pred) if prod_pred else None,
        classes=CLASSES,
        slice_features=features,
        ingest_passed=True,
        split_digest="e1",
        commit=CommitFacts("c" * 40),
        remote=RemoteFacts("r", "/remote", True, True, total=3, to_push=3),
        registered={(m.name, m.version): m.run_id for m in cand.models},
        state=state or P.RegistryState({"q": None}, {}, {}),
        next_release_number=1,
    )
    args.update(kw)
    return P.Evidence(**args)


def test_first_promotion_checks_what_applies_and_plans_push_tag_tags_alias_and_records():
    plan = P.build_plan(_evidence(_release("1"), None, GOLD), PARAMS, METRIC)
    assert plan.allowed and not plan.noop and plan.candidate.release_id == "dataset/v1"
    assert [x.name for x in plan.gates] == list(P.g.ORDER)
    assert {x.name for x in plan.gates if not x.applies} == {"non-inferiority", "slices"}
    assert [a.kind for a in plan.actions] == [
        P.DVC_PUSH,
        P.GIT_TAG,
        P.MODEL_TAGS,
        P.SET_ALIAS,
        P.RELEASE_RECORD,
        P.AUDIT_RECORD,
    ]
    assert plan.after.aliases == {"q": "1"}
    assert plan.after.git_tags == {"dataset/v1": "c" * 40}
    assert plan.after.version_tags["q/1"][P.TAG_RELEASE] == "dataset/v1"
    assert plan.after.version_tags["q/1"][P.TAG_DVC_PREFIX + "data/raw"] == "r1.dir"


def test_an_unconfigured_remote_is_configured_first():
    remote = RemoteFacts("labelcycle-local", "/p-dvc-remote", False, True, total=3, to_push=3)
    plan = P.build_plan(_evidence(_release("1"), None, GOLD, remote=remote), PARAMS, METRIC)
    assert [a.kind for a in plan.actions][:2] == [P.CONFIGURE_REMOTE, P.DVC_PUSH]


def test_a_worse_candidate_is_refused_naming_the_gate():
    prod = _release("1", rid="dataset/v1")
    state = P.RegistryState({"q": "1"}, {}, {"dataset/v1": "c" * 40})
    plan = P.build_plan(_evidence(_release("2", "ds2"), prod, ["a"] * 20, GOLD, state=state), PARAMS, METRIC)
    assert not plan.allowed
    assert {x.name for x in plan.failed} == {"non-inferiority", "slices"}
    text = render_plan(plan)
    assert "[FAIL] non-inferiority" in text and "refused: gate(s) failed: non-inferiority, slices" in text


def test_the_gates_judge_the_primary_metric_they_are_given_and_name_it():
    # same labels as production (equal accuracy), but far less confident: a much worse log loss
    prod = _release("1", rid="dataset/v1")
    ev = _evidence(_release("2", "ds2"), prod, GOLD, GOLD, candidate_predictions=_preds(GOLD, confidence=0.6))
    on_accuracy = P.build_plan(ev, PARAMS, "accuracy")
    on_log_loss = P.build_plan(ev, PARAMS, "log_loss")
    assert on_accuracy.allowed and not on_accuracy.failed
    assert {x.name for x in on_log_loss.failed} == {"non-inferiority", "slices"}
    for plan, metric in ((on_accuracy, "accuracy"), (on_log_loss, "log_loss")):
        assert plan.metric == metric and plan.to_dict()["metric"] == metric
        compared = [x for x in plan.gates if x.name in ("non-inferiority", "slices")]
        assert all(metric in x.evidence for x in compared)
    assert "[FAIL] non-inferiority: log_loss" in render_plan(on_log_loss)


def test_every_action_carries_what_carrying_it_out_needs():
    remote = RemoteFacts("labelcycle-local", "/p-dvc-remote", False, True, total=3, to_push=3)
    plan = P.build_plan(_evidence(_release("1"), None, GOLD, remote=remote), PARAMS, METRIC, reason="first")
    by_kind = {a.kind: a for a in plan.actions}
    assert by_kind[P.CONFIGURE_REMOTE].data == {"name": "labelcycle-local", "url": "/p-dvc-remote"}
    assert by_kind[P.DVC_PUSH].data == {"remote": "labelcycle-local", "rev": "c" * 40}
    assert by_kind[P.GIT_TAG].data["commit"] == "c" * 40
    record = by_kind[P.RELEASE_RECORD].data
    assert record["manifest"] == plan.candidate.to_manifest() and record["run_name"] == "release dataset/v1"
    assert record["tags"][P.TAG_RELEASE] == "dataset/v1" and record["tags"]["labelcycle.models"] == "q/1"
    audit = by_kind[P.AUDIT_RECORD].data
    assert audit["run_name"] == "promote dataset/v1"
    assert {k: audit["tags"][k] for k in (P.TAG_ACTION, P.TAG_RELEASE, P.TAG_FROM, "labelcycle.reason")} == {
        P.TAG_ACTION: "promote",
        P.TAG_RELEASE: "dataset/v1",
        P.TAG_FROM: "",
        "labelcycle.reason": "first",
    }


def test_a_forced_plan_audits_the_gates_it_overrode():
    prod = _release("1", rid="dataset/v1")
    plan = P.build_plan(
        _evidence(_release("2", "ds2"), prod, ["a"] * 20, GOLD), PARAMS, METRIC, force=True, reason="hotfix"
    )
    audit = plan.actions[-1]
    assert audit.kind == P.AUDIT_RECORD and audit.data["tags"]["labelcycle.forced"] == "true"
    assert audit.data["tags"]["labelcycle.failed_gates"] == "non-inferiority,slices"
    assert audit.data["tags"][P.TAG_FROM] == "dataset/v1"


def test_force_allows_a_refused_plan_and_marks_the_release_forced():
    prod = _release("1", rid="dataset/v1")
    plan = P.build_plan(
        _evidence(_release("2", "ds2"), prod, ["a"] * 20, GOLD), PARAMS, METRIC, force=True, reason="hotfix"
    )
    assert plan.allowed and plan.candidate.forced and "FORCED" in render_plan(plan)


def test_force_cannot_override_the_data_committed_gate():
    commit = CommitFacts("c" * 40, dirty=("params.yaml",))
    plan = P.build_plan(
        _evidence(_release("1"), None, GOLD, commit=commit), PARAMS, METRIC, force=True, reason="hurry"
    )
    assert [x.name for x in plan.failed] == ["data-committed"] and not plan.allowed
    assert "--force cannot override data-committed" in render_plan(plan)
    with pytest.raises(PromotionRefusedError, match="--force cannot override data-committed"):
        execute(plan, Context(Path("/nonexistent")))


def test_the_same_release_again_is_a_no_op():
    prod = _release("1", rid="dataset/v1")
    plan = P.build_plan(_evidence(_release("1"), prod, GOLD, GOLD), PARAMS, METRIC)
    assert plan.noop and plan.actions == () and plan.allowed
    assert "no-op" in render_plan(plan)


def test_a_better_candidate_moves_the_alias_and_adds_a_tag():
    prod = _release("1", rid="dataset/v1")
    base = GOLD[:]
    base[0] = "b"
    state = P.RegistryState({"q": "1"}, {"q/2": {P.TAG_RELEASE: None}}, {"dataset/v1": "c" * 40})
    ev = _evidence(_release("2", "ds2"), prod, GOLD, base, state=state, next_release_number=2)
    plan = P.build_plan(ev, PARAMS, METRIC)
    assert plan.allowed and not plan.failed
    alias = [a for a in plan.actions if a.kind == P.SET_ALIAS]
    assert [a.detail for a in alias] == ["move alias q@production: v1 -> v2"]
    assert plan.after.git_tags == {"dataset/v1": "c" * 40, "dataset/v2": "c" * 40}


def _apply(state: P.RegistryState, actions) -> P.RegistryState:
    aliases, vt, tags = (
        dict(state.aliases),
        {k: dict(v) for k, v in state.version_tags.items()},
        dict(state.git_tags),
    )
    for a in actions:
        if a.kind == P.SET_ALIAS:
            aliases[a.data["name"]] = a.data["version"]
        elif a.kind == P.GIT_TAG:
            if a.data["commit"] is None:
                tags.pop(a.target)
            else:
                tags[a.target] = a.data["commit"]
        elif a.kind == P.MODEL_TAGS:
            vt.setdefault(a.target, {}).update(a.data["tags"])
    return P.RegistryState(aliases, vt, tags)


def test_rollback_actions_restore_the_state_before_the_promotion_exactly():
    before = P.RegistryState(
        {"q": "1", "err": "4"},
        {"q/2": {P.TAG_RELEASE: None}, "q/1": {P.TAG_RELEASE: "dataset/v1"}},
        {"dataset/v1": "a" * 40},
    )
    prev = _release("1", rid="dataset/v1")
    after = P.promoted_state(before, _release("2").with_id("dataset/v2"), prev)
    assert after.aliases == {"q": "2", "err": "4"}
    restored = _apply(after, P.diff_states(after, before))
    assert restored.aliases == before.aliases and restored.git_tags == before.git_tags
    assert restored.version_tags["q/2"][P.TAG_RELEASE] is None
    entry = R.AuditEntry("run9", "promote", "dataset/v2", "dataset/v1", before, "2030")
    plan = R.build_rollback_plan(entry, after, _release("2", rid="dataset/v2"), prev, "bad")
    assert plan.after == before and plan.actions[-1].kind == P.AUDIT_RECORD


def test_a_rollback_audit_action_names_the_promotion_it_undoes_and_the_release_it_rolls_back():
    entry = R.AuditEntry("run9", "promote", "dataset/v2", "dataset/v1", P.RegistryState(), "2030")
    plan = R.build_rollback_plan(
        entry, P.RegistryState(), _release("2", rid="dataset/v2"), _release("1", rid="dataset/v1"), "bad"
    )
    audit = plan.actions[-1]
    assert audit.data["undoes"] == "run9" and audit.data["rolled_back"] == "dataset/v2"
    assert (
        audit.data["tags"][P.TAG_ACTION] == "rollback" and audit.data["tags"][P.TAG_RELEASE] == "dataset/v1"
    )
    assert audit.data["tags"]["labelcycle.reason"] == "bad"


def test_a_role_missing_from_the_new_release_loses_its_alias():
    prev = Release(
        "d",
        "c",
        {},
        (),
        "e",
        {},
        {},
        (ModelRef("quality", "q", "1"), ModelRef("error", "err", "3")),
        release_id="dataset/v1",
    )
    after = P.promoted_state(
        P.RegistryState({"q": "1", "err": "3"}), _release("2").with_id("dataset/v2"), prev
    )
    assert after.aliases == {"q": "2", "err": None}


def test_rollback_walks_back_through_promotions_like_a_stack():
    s = P.RegistryState()
    history = [
        R.AuditEntry("r1", "promote", "dataset/v1", None, s, "2030-01-01"),
        R.AuditEntry("r2", "promote", "dataset/v2", "dataset/v1", s, "2030-01-02"),
        R.AuditEntry("r3", "promote", "dataset/v3", "dataset/v2", s, "2030-01-03", undone=True),
        R.AuditEntry("r4", "rollback", "dataset/v2", "dataset/v3", s, "2030-01-04"),
    ]
    assert R.promotion_to_undo(history, "dataset/v2").run_id == "r2"
    with pytest.raises(WorkspaceError, match="first release"):
        R.promotion_to_undo(history, "dataset/v1")
    with pytest.raises(WorkspaceError, match="no production release"):
        R.promotion_to_undo(history, None)


def test_manifest_round_trips():
    rel = _release("3", rid="dataset/v3")
    assert Release.from_manifest(rel.to_manifest()) == rel


def test_a_binary_primary_metric_is_judged_on_the_positive_labels_in_every_comparison_gate():
    prod = _release("1", rid="dataset/v1")
    worse = GOLD[:10] + ["a"] * 10  # misses every positive ("b") item production caught
    ev = _evidence(_release("2", "ds2"), prod, worse, GOLD, positive_labels=["b"], flag_threshold=0.5)
    plan = P.build_plan(ev, PARAMS, "binary_f1")
    gates = {x.name: x for x in plan.gates}
    assert not gates["non-inferiority"].passed and not gates["slices"].passed
    assert "binary_f1 0.0000 vs production 1.0000" in gates["non-inferiority"].evidence
    assert "binary_f1" in gates["slices"].evidence
