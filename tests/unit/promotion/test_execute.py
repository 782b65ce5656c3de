"""Carrying a plan out: every action is done from its own fields, against a real MLflow store and git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from labelcycle.errors import PromotionRefusedError, TrackingError
from labelcycle.promotion import plan as P
from labelcycle.promotion.execute import Context, execute
from labelcycle.promotion.gates import Gate
from labelcycle.promotion.records import AUDIT_PLAN, MANIFEST, PREDICTIONS, next_release_number
from labelcycle.promotion.release import ModelRef, Release, release_id
from labelcycle.tracking.registry import TAG_KIND, Registry
from labelcycle.versioning import dvc, git

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def _release(rid: str, digest: str) -> Release:
    return Release(
        dataset_digest=digest,
        git_rev="c" * 40,
        dvc_hashes={"data/raw": "r1.dir"},
        raw_batches=("b1",),
        eval_digest="e1",
        metrics={"accuracy": 0.9},
        intervals={},
        models=(ModelRef("quality", "q", "1", "run1"),),
        release_id=rid,
    )


def _plan(
    actions,
    action: str = "promote",
    candidate: Release | None = None,
    gates=(),
    force: bool = False,
    before: P.RegistryState | None = None,
    after: P.RegistryState | None = None,
) -> P.Plan:
    return P.Plan(
        action,
        candidate,
        None,
        tuple(gates),
        tuple(actions),
        before or P.RegistryState(),
        after or P.RegistryState(),
        force=force,
        reason="why",
    )


@pytest.fixture(scope="module")
def store_uri(tmp_path_factory) -> str:
    """One MLflow store for the module (creating one takes seconds); tests tell their records apart by id."""
    return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}"


@pytest.fixture
def root(tmp_path, store_uri, monkeypatch) -> Path:
    """A git repository with one commit, its MLflow store the module's."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    path = tmp_path / "proj"
    path.mkdir()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True, env=env)
    (path / "f.txt").write_text("x")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "one"], cwd=path, check=True, env=env)
    return path


def _next(root: Path) -> str:
    """The release id a promotion planned now would take (the store is shared by the module's tests)."""
    return release_id(next_release_number(Registry(root), root))


def test_the_release_record_is_written_from_its_action_not_from_the_plan_candidate(root):
    recorded = _release("dataset/v9", "ds-recorded")
    plan = _plan([P.release_record_action(recorded)], candidate=_release(_next(root), "ds-candidate"))
    predictions = pd.DataFrame({"item_id": ["i1", "i2"], "label": ["a", "b"]})
    registry = Registry(root)
    n_before = len(registry.records("release"))
    out = execute(plan, Context(root, predictions))
    assert list(out) == ["release_record"] and len(registry.records("release")) == n_before + 1
    run = registry.run(out["release_record"])
    assert (
        run.tags[TAG_KIND] == "release"
        and run.tags[P.TAG_RELEASE] == "dataset/v9"
        and run.tags[P.TAG_DATASET_DIGEST] == "ds-recorded"
    )
    manifest = registry.read_json(run.run_id, MANIFEST)
    assert manifest == {**recorded.to_manifest(), "promoted_at": manifest["promoted_at"]}
    assert manifest["promoted_at"]
    pd.testing.assert_frame_equal(registry.read_table(run.run_id, PREDICTIONS), predictions)


def test_a_plan_without_a_release_record_action_writes_no_release_record(root):
    rel = _release(_next(root), "ds1")
    plan = _plan([P.audit_record_action("promote", rel.release_id, None)], candidate=rel)
    registry = Registry(root)
    n_before = len(registry.records("release"))
    out = execute(plan, Context(root))
    assert len(registry.records("release")) == n_before and list(out) == ["audit_record"]


def test_the_audit_record_carries_its_action_tags_and_the_whole_plan(root):
    rid = _next(root)
    action = P.audit_record_action(
        "promote", rid, "dataset/v2", forced=True, failed=["slices"], reason="hotfix"
    )
    plan = _plan([action], candidate=_release(rid, "ds3"))
    out = execute(plan, Context(root))
    registry = Registry(root)
    run = registry.run(out["audit_record"])
    assert list(out) == ["audit_record"] and run.tags[TAG_KIND] == "audit"
    assert {k: run.tags[k] for k in action.data["tags"]} == action.data["tags"]
    assert run.tags[P.TAG_AT] and run.tags[P.TAG_BY]
    record = registry.read_json(run.run_id, AUDIT_PLAN)
    assert record["actions"] == [action.to_dict()] and record["at"] == run.tags[P.TAG_AT]
    assert record["candidate"]["release"] == rid and record["candidate"]["promoted_at"] == record["at"]


def test_dvc_actions_configure_and_push_exactly_the_remote_and_rev_they_name(root, monkeypatch):
    calls = []
    monkeypatch.setattr(
        dvc, "configure_default_remote", lambda r, name, url: calls.append(("configure", r, name, url))
    )
    monkeypatch.setattr(dvc, "push", lambda r, remote, rev: calls.append(("push", r, remote, rev)) or 3)
    plan = _plan(
        [
            P.Action(P.CONFIGURE_REMOTE, "r1", "configure", {"name": "r1", "url": "/remote/r1"}),
            P.Action(P.DVC_PUSH, "r1", "push", {"remote": "r1", "rev": "abc123"}),
            P.audit_record_action("promote", "dataset/v1", None),
        ]
    )
    execute(plan, Context(root))
    assert calls == [("configure", root, "r1", "/remote/r1"), ("push", root, "r1", "abc123")]


def test_a_failing_step_puts_the_alias_and_the_git_tag_back_as_they_were(root):
    registry = Registry(root)
    run = registry.client.create_run(registry.client.get_experiment_by_name("labelcycle").experiment_id)
    registry.client.create_registered_model("q")
    registry.client.create_model_version("q", source=str(root / "model"), run_id=run.info.run_id)
    head = git.head_commit(root)
    before = P.RegistryState({"q": None}, {}, {})
    after = P.RegistryState({"q": "1"}, {}, {"dataset/v1": head})
    failing = P.Action(
        P.MODEL_TAGS,
        "q/99",
        "tag a version that does not exist",
        {"name": "q", "version": "99", "tags": {P.TAG_RELEASE: "dataset/v1"}},
    )
    plan = _plan([*P.diff_states(before, after), failing], before=before, after=after)
    n_audits = len(registry.records("audit"))
    with pytest.raises(TrackingError, match="put back as they were"):
        execute(plan, Context(root))
    assert registry.alias("q", P.ALIAS) is None and git.tags(root, "dataset/v") == {}
    assert len(registry.records("audit")) == n_audits


def test_a_rollback_marks_the_promotion_it_undoes_and_the_release_it_rolls_back(root):
    registry = Registry(root)
    promoted = registry.write_record("audit", {P.TAG_ACTION: "promote", P.TAG_RELEASE: "dataset/v2"}, {})
    release_record = registry.write_record("release", {P.TAG_RELEASE: "dataset/v2"}, {})
    plan = _plan(
        [P.audit_record_action("rollback", "dataset/v1", "dataset/v2", undoes=promoted)], action="rollback"
    )
    execute(plan, Context(root))
    assert registry.run(promoted).tags[P.TAG_UNDONE] == "true"
    assert registry.run(release_record).tags[P.TAG_ROLLED_BACK]


def test_a_plan_with_failed_gates_is_refused_unless_forced_and_a_no_op_does_nothing(root):
    failed = [Gate("slices", False, "accuracy: EU loses 0.2")]
    with pytest.raises(PromotionRefusedError, match=r"gate\(s\) slices failed; nothing was changed"):
        execute(_plan([P.audit_record_action("promote", "dataset/v1", None)], gates=failed), Context(root))
    noop = P.Plan("promote", None, None, (), (), P.RegistryState(), P.RegistryState(), noop=True)
    assert execute(noop, Context(root)) == {}
