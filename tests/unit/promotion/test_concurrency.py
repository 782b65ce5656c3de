"""Two promotions planned against the same production; only one may happen.

The second plan is carried out after the first (as the second of two concurrent ``labelcycle promote``
commands is, once it gets the project lock): it must be refused, never move the first one's git tag,
write a second release or audit record, or tag a second model version with the same release.
"""

from __future__ import annotations

import pytest

from labelcycle.errors import StateError
from labelcycle.promotion import plan as P
from labelcycle.promotion.execute import execute
from labelcycle.promotion.status import plan_rollback


def test_of_two_plans_for_different_candidates_the_second_is_refused_and_moves_no_tag(lab):
    va, vb = lab.version(), lab.version()
    rev_a = lab.commit("a")
    rev_b = lab.commit("b")
    plan_a, plan_b = lab.plan(va, rev_a), lab.plan(vb, rev_b)
    rid = plan_a.candidate.release_id
    assert plan_b.candidate.release_id == rid  # both planned the same release number

    execute(plan_a, lab.ctx())
    with pytest.raises(
        StateError, match=rf"plan is out of date: .*git tag {rid} was created.*nothing was changed"
    ):
        execute(plan_b, lab.ctx())

    assert lab.tags() == {rid: rev_a}
    assert lab.production() == va and lab.release_tag(va) == rid and lab.release_tag(vb) is None
    assert len(lab.release_records(rid)) == 1 and len(lab.audit_records(rid)) == 1


def test_the_same_candidate_planned_twice_is_promoted_once_and_recorded_once(lab):
    v = lab.version()
    first, second = lab.plan(v), lab.plan(v)
    rid = first.candidate.release_id
    execute(first, lab.ctx())
    with pytest.raises(StateError, match=rf"already production as {rid}.*nothing was changed"):
        execute(second, lab.ctx())
    assert len(lab.release_records(rid)) == 1 and len(lab.audit_records(rid)) == 1
    assert len(lab.tags()) == 1


def test_a_plan_made_before_a_rollback_is_refused_after_it(lab):
    v1, v2, v3 = lab.version(), lab.version(), lab.version()
    execute(lab.plan(v1, lab.commit()), lab.ctx())
    execute(lab.plan(v2, lab.commit()), lab.ctx())
    late = lab.plan(v3, lab.commit())
    rollback, ctx = plan_rollback(lab.root, "bad")
    execute(rollback, ctx)
    with pytest.raises(StateError, match="out of date"):
        execute(late, lab.ctx())
    assert lab.production() == v1 and lab.release_tag(v3) is None


def test_a_rollback_planned_twice_is_carried_out_once(lab):
    v1, v2 = lab.version(), lab.version()
    execute(lab.plan(v1, lab.commit()), lab.ctx())
    plan2 = lab.plan(v2, lab.commit())
    execute(plan2, lab.ctx())
    (first, ctx), (second, _) = plan_rollback(lab.root, "one"), plan_rollback(lab.root, "two")
    execute(first, ctx)
    with pytest.raises(StateError, match="already rolled back"):
        execute(second, ctx)
    audits = lab.registry.records("audit")
    rid2 = plan2.candidate.release_id
    assert [r.tags[P.TAG_ACTION] for r in audits if r.tags.get(P.TAG_FROM) == rid2] == ["rollback"]
    assert lab.production() == v1


def test_release_numbers_count_every_record_and_tag_so_a_new_plan_takes_the_next_free_one(lab):
    v1, v2 = lab.version(), lab.version()
    plan1 = lab.plan(v1, lab.commit())
    execute(plan1, lab.ctx())
    n1 = int(plan1.candidate.release_id.rpartition("v")[2])
    lab.git("tag", f"dataset/v{n1 + 5}", "HEAD")  # a tag made by hand
    plan2 = lab.plan(v2, lab.commit())
    assert plan2.candidate.release_id == f"dataset/v{n1 + 6}"
