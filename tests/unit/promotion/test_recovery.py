"""A promotion or rollback cut short (the process killed at a step) is completed or undone by the next
command, under the project lock, and that command says which.

A kill is simulated by a step raising :class:`Killed`, a ``BaseException`` that ``execute`` does not
catch, like the process dying there: the lock is let go and the intent stays. The slow fault suite
(tests/e2e/test_promote_faults.py) kills real processes.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from labelcycle.errors import StateError, TrackingError
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.promotion.execute import execute
from labelcycle.promotion.intent import Intent, intent_path
from labelcycle.promotion.recovery import recover_if_free
from labelcycle.promotion.status import plan_rollback, status
from labelcycle.promotion.steps import TAG_INTENT
from labelcycle.tracking.registry import TAG_KIND, Registry


class Killed(BaseException):
    """The process died here."""


def _kill_at(monkeypatch, owner, name: str, after: bool = False, nth: int = 1) -> None:
    """Make the ``nth`` call of ``owner.name`` die (after doing its work when ``after``)."""
    original = getattr(owner, name)
    calls = []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) != nth:
            return original(*args, **kwargs)
        if after:
            original(*args, **kwargs)
        raise Killed(name)

    monkeypatch.setattr(owner, name, dying)


def _cut_short(lab, plan, monkeypatch, owner, name, **kw) -> None:
    with monkeypatch.context() as m:
        _kill_at(m, owner, name, **kw)
        with pytest.raises(Killed):
            execute(plan, lab.ctx())
    assert intent_path(lab.root).exists()


def _consistent(lab, version: str, rid: str) -> None:
    """Tag, alias, model-version tags and records agree on ``rid`` = ``version``; no intent is left."""
    assert lab.production() == version and lab.release_tag(version) == rid
    assert rid in lab.tags()
    assert len(lab.release_records(rid)) == 1 and len(lab.audit_records(rid)) == 1
    assert not intent_path(lab.root).exists()


def test_a_promotion_killed_after_its_git_tag_is_completed_by_the_next_command(lab, monkeypatch):
    v = lab.version()
    plan = lab.plan(v, lab.commit())
    rid = plan.candidate.release_id
    _cut_short(lab, plan, monkeypatch, Registry, "set_version_tags")
    assert rid in lab.tags() and lab.production() is None
    notes = recover_if_free(lab.root, "test")
    assert len(notes) == 1 and f"interrupted promotion of {rid}" in notes[0] and "completed" in notes[0]
    _consistent(lab, v, rid)


def test_a_step_done_but_not_yet_marked_done_is_not_done_twice(lab, monkeypatch):
    v = lab.version()
    plan = lab.plan(v, lab.commit())
    rid = plan.candidate.release_id
    step = str(next(i for i, a in enumerate(plan.actions) if a.kind == P.RELEASE_RECORD))
    original = Intent.mark

    def dying(self, s):
        if s == step:
            raise Killed("mark")
        original(self, s)

    with monkeypatch.context() as m:
        m.setattr(Intent, "mark", dying)
        with pytest.raises(Killed):
            execute(plan, lab.ctx())
    assert len(lab.release_records(rid)) == 1
    recover_if_free(lab.root, "test")
    _consistent(lab, v, rid)


def test_a_record_cut_short_is_replaced_by_one_whole_record(lab, monkeypatch):
    v = lab.version()
    plan = lab.plan(v, lab.commit())
    rid = plan.candidate.release_id
    _cut_short(lab, plan, monkeypatch, MlflowClient, "set_terminated")  # the release record's
    assert lab.release_records(rid) == []  # a record without its kind tag is not a record
    recover_if_free(lab.root, "test")
    _consistent(lab, v, rid)
    left = lab.registry.search_records(f"tags.`{TAG_INTENT}` LIKE '%/release'")
    assert all(TAG_KIND in r.tags for r in left if r.tags.get(P.TAG_RELEASE) == rid)


def test_a_promotion_that_can_no_longer_be_completed_is_undone_and_says_why(lab, monkeypatch):
    v, other = lab.version(), lab.version()
    plan = lab.plan(v, lab.commit())
    rid = plan.candidate.release_id
    _cut_short(lab, plan, monkeypatch, Registry, "write_record")
    lab.registry.set_alias(lab.model, P.ALIAS, other)  # set by hand meanwhile
    notes = recover_if_free(lab.root, "test")
    assert f"@production is now v{other}" in notes[0] and "so it was undone" in notes[0]
    assert lab.production() is None and lab.release_tag(v) is None and rid not in lab.tags()
    assert lab.release_records(rid) == []
    assert not intent_path(lab.root).exists()


def test_an_undone_promotion_leaves_one_audit_record_saying_what_was_tried_why_and_what_was_undone(
    lab, monkeypatch
):
    v, other = lab.version(), lab.version()
    plan = lab.plan(v, lab.commit())
    rid = plan.candidate.release_id
    _cut_short(lab, plan, monkeypatch, Registry, "write_record")
    lab.registry.set_alias(lab.model, P.ALIAS, other)
    recover_if_free(lab.root, "test")
    recover_if_free(lab.root, "test")  # nothing left: no second record
    audits = [r for r in lab.registry.records("audit") if r.tags.get(P.TAG_RELEASE) == rid]
    assert [r.tags[P.TAG_ACTION] for r in audits] == ["promote-undone"]
    record = lab.registry.read_json(audits[0].run_id, records.AUDIT_PLAN)
    assert record["action"] == "promote" and record["candidate"]["release"] == rid
    assert any(f"@production is now v{other}" in why for why in record["why_undone"])
    assert any(rid in step for step in record["undone_steps"])
    assert record["by"] and record["at"] and record["undone_at"]
    # an undone promotion is not one a rollback can undo
    assert all(e.action != "promote" for e in records.audit_history(lab.registry) if e.release == rid)


def test_a_rollback_killed_after_moving_the_alias_is_completed_with_its_audit_and_marks(lab, monkeypatch):
    v1, v2 = lab.version(), lab.version()
    p1 = lab.plan(v1, lab.commit())
    execute(p1, lab.ctx())
    p2 = lab.plan(v2, lab.commit())
    execute(p2, lab.ctx())
    rollback, _ = plan_rollback(lab.root, "bad")
    _cut_short(lab, rollback, monkeypatch, Registry, "set_alias", after=True)
    assert lab.production() == v1  # the alias moved; the audit record and the marks were not written
    notes = recover_if_free(lab.root, "test")
    assert f"interrupted rollback to {p1.candidate.release_id}" in notes[0] and "completed" in notes[0]
    audits = lab.registry.records("audit")
    promoted_v2 = next(r for r in audits if r.tags.get(P.TAG_RELEASE) == p2.candidate.release_id)
    assert promoted_v2.tags.get(P.TAG_UNDONE) == "true"
    assert [r.tags[P.TAG_ACTION] for r in audits if r.tags.get(P.TAG_FROM) == p2.candidate.release_id] == [
        "rollback"
    ]
    assert lab.production() == v1 and p2.candidate.release_id not in lab.tags()


def test_execute_first_completes_what_a_killed_command_left_then_refuses_its_own_stale_plan(lab, monkeypatch):
    va, vb = lab.version(), lab.version()
    plan_a, plan_b = lab.plan(va, lab.commit()), lab.plan(vb, lab.commit())
    rid = plan_a.candidate.release_id
    _cut_short(lab, plan_a, monkeypatch, Registry, "set_alias")
    with pytest.raises(
        StateError, match=rf"interrupted promotion of {rid} .*completed.* plan is out of date"
    ):
        execute(plan_b, lab.ctx())
    _consistent(lab, va, rid)


def test_status_completes_an_interrupted_promotion_and_says_so(lab, monkeypatch):
    v = lab.version()
    plan = lab.plan(v, lab.commit())
    _cut_short(lab, plan, monkeypatch, Registry, "set_alias")
    s = status(lab.root)
    assert s["release"] == plan.candidate.release_id and "completed" in s["notes"][0]
    _consistent(lab, v, plan.candidate.release_id)


def test_an_intent_of_a_command_still_running_is_left_alone(lab, monkeypatch):
    v = lab.version()
    _cut_short(lab, lab.plan(v, lab.commit()), monkeypatch, Registry, "set_alias")
    code = (
        "import sys, time; from pathlib import Path; from labelcycle.locking import project_lock\n"
        "with project_lock(Path(sys.argv[1]), 'labelcycle promote'):\n"
        "    print('held', flush=True); time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(lab.root)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        notes = recover_if_free(lab.root, "test")
        assert time.monotonic() - started < 5
        assert f"pid {holder.pid} (labelcycle promote" in notes[0] and "right now" in notes[0]
        assert intent_path(lab.root).exists() and lab.production() is None
    finally:
        holder.kill()
        holder.wait()


def test_a_step_that_fails_puts_everything_back_and_leaves_no_intent(lab, monkeypatch):
    v = lab.version()
    plan = lab.plan(v, lab.commit())
    rid = plan.candidate.release_id

    def broken(*args, **kwargs):
        raise RuntimeError("registry down")

    monkeypatch.setattr(Registry, "write_record", broken)
    with pytest.raises(TrackingError, match="registry down.*put back as they were"):
        execute(plan, lab.ctx())
    assert lab.production() is None and lab.release_tag(v) is None and rid not in lab.tags()
    assert not intent_path(lab.root).exists()
