"""The steps of a plan, each done from its own fields (``Action.data``), forwards or backwards.

:class:`Steps` carries a plan out step by step, marking each done in its
:class:`~labelcycle.promotion.intent.Intent`; it can also *complete* a plan that was cut short
(whatever state is left is brought to the plan's ``after``, and missing records are written) or *undo*
it (the state is brought back to the plan's ``before``, and its records are deleted). Each step may be
repeated: a git tag already at its commit, a tag or alias already set, and a record already written
(found by the intent id it carries) are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labelcycle.errors import StateError
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.promotion.intent import MARKS_STEP, Intent, now
from labelcycle.tracking.parents import tag_release
from labelcycle.tracking.registry import TAG_KIND, Registry
from labelcycle.versioning import dvc, git

#: actions that only add data to the DVC remote: done first, never undone
DATA_ACTIONS = (P.CONFIGURE_REMOTE, P.DVC_PUSH)
RECORD_ACTIONS = (P.RELEASE_RECORD, P.AUDIT_RECORD)
#: tag on every record a plan writes: ``<intent id>/<kind>``
TAG_INTENT = "labelcycle.intent"


@dataclass
class Context:
    """What carrying a plan out needs beside the plan.

    Attributes:
        root: the project root.
        predictions: the candidate's per-item predictions, stored with its release record.
    """

    root: Path
    predictions: pd.DataFrame | None = None


class Steps:
    """One plan's steps against one project, under its recorded intent.

    Attributes:
        written: the record run ids written (``release_record``, ``audit_record``).
        log: what was done, one line per change, for people.
    """

    def __init__(self, plan: P.Plan, ctx: Context, registry: Registry, intent: Intent) -> None:
        self.plan, self.ctx, self.registry, self.intent = plan, ctx, registry, intent
        self.written: dict[str, str] = {}
        self.log: list[str] = []
        self.handlers: dict[str, Callable[[P.Action], None]] = {
            P.CONFIGURE_REMOTE: self.configure_remote,
            P.DVC_PUSH: self.push,
            P.GIT_TAG: self.git_tag,
            P.MODEL_TAGS: self.model_tags,
            P.SET_ALIAS: self.alias,
            P.RELEASE_RECORD: self.release_record,
            P.AUDIT_RECORD: self.audit_record,
        }

    # -- one action ---------------------------------------------------------------------------------

    def do(self, a: P.Action) -> None:
        handler = self.handlers.get(a.kind)
        if handler is None:
            raise StateError(
                f"the plan holds an action of unknown kind {a.kind!r} ({a.detail}); nothing of it was done. "
                "Plan again with this version of labelcycle"
            )
        handler(a)
        self.log.append(a.detail)

    def configure_remote(self, a: P.Action) -> None:
        dvc.configure_default_remote(self.ctx.root, a.data["name"], a.data["url"])

    def push(self, a: P.Action) -> None:
        dvc.push(self.ctx.root, a.data["remote"], a.data.get("rev"))

    def git_tag(self, a: P.Action) -> None:
        message = f"labelcycle {self.plan.action} {a.target}: {self.plan.reason or ''}".strip(" :")
        git.set_tag(self.ctx.root, a.target, a.data.get("commit"), message)

    def model_tags(self, a: P.Action) -> None:
        self.registry.set_version_tags(a.data["name"], a.data["version"], a.data["tags"])

    def alias(self, a: P.Action) -> None:
        self.registry.set_alias(a.data["name"], P.ALIAS, a.data.get("version"))

    def _record(
        self, kind: str, tags: dict[str, str], files: dict[str, object], metrics=None, name=None
    ) -> str:
        """Write the plan's ``kind`` record once: a whole one already written is kept, a cut-short one
        replaced."""
        key = f"{self.intent.id}/{kind}"
        for run in self.registry.records_tagged(TAG_INTENT, key):
            if TAG_KIND in run.tags:
                return run.run_id
            self.registry.delete_run(run.run_id)
        return self.registry.write_record(kind, {**tags, TAG_INTENT: key}, files, metrics, run_name=name)

    def release_record(self, a: P.Action) -> None:
        manifest = {**a.data["manifest"], "promoted_at": self.intent.at}
        files: dict[str, object] = {records.MANIFEST: manifest}
        if self.ctx.predictions is not None:
            files[records.PREDICTIONS] = self.ctx.predictions
        metrics = (manifest.get("evaluation") or {}).get("metrics") or {}
        self.written["release_record"] = self._record(
            "release", dict(a.data["tags"]), files, metrics, a.data.get("run_name")
        )
        # the version's parent run is named for people by its release id from now on
        tag_release(
            self.ctx.root, (manifest.get("evaluation") or {}).get("pipeline_run"), manifest.get("release")
        )

    def audit_record(self, a: P.Action) -> None:
        """The audit record holds the whole plan it belongs to, with when and by whom."""
        at, who = self.intent.at, self.intent.by
        record = {**self.plan.to_dict(), "at": at, "by": who}
        if self.plan.action == "promote" and record.get("candidate"):
            record["candidate"] = {**record["candidate"], "promoted_at": at}
        tags = {**a.data["tags"], P.TAG_AT: at, P.TAG_BY: who}
        self.written["audit_record"] = self._record(
            "audit", tags, {records.AUDIT_PLAN: record}, None, a.data.get("run_name")
        )

    def mark_undone(self, a: P.Action, undone: bool = True) -> None:
        """After a rollback: its audit action's ``undoes`` record is undone, ``rolled_back`` release too
        (``undone`` False takes both marks off again)."""
        record = (
            records.find_release_record(self.registry, a.data["rolled_back"])
            if a.data.get("rolled_back")
            else None
        )
        if undone:
            if a.data.get("undoes"):
                self.registry.tag_run(a.data["undoes"], P.TAG_UNDONE, "true")
            if record is not None:
                self.registry.tag_run(record.run_id, P.TAG_ROLLED_BACK, self.intent.at)
        else:
            if a.data.get("undoes"):
                self.registry.untag_run(a.data["undoes"], P.TAG_UNDONE)
            if record is not None:
                self.registry.untag_run(record.run_id, P.TAG_ROLLED_BACK)

    # -- the whole plan -------------------------------------------------------------------------------

    def _audits(self) -> list[P.Action]:
        return [a for a in self.plan.actions if a.kind == P.AUDIT_RECORD and a.data.get("undoes")]

    def forward(self) -> None:
        """Carry the plan out: data first, then tags, aliases and records; each step marked done."""
        order = sorted(
            range(len(self.plan.actions)), key=lambda i: self.plan.actions[i].kind not in DATA_ACTIONS
        )
        for i in order:
            if str(i) not in self.intent.done:
                self.do(self.plan.actions[i])
                self.intent.mark(str(i))
        self._marks()

    def _marks(self) -> None:
        if MARKS_STEP not in self.intent.done:
            for a in self._audits():
                self.mark_undone(a)
            self.intent.mark(MARKS_STEP)

    def state_now(self) -> P.RegistryState:
        return records.state_for(self.registry, self.ctx.root, self.plan.before, self.plan.after)

    def converge(self, target: P.RegistryState) -> None:
        """Bring the aliases, model-version tags and git tags the plan touches to ``target``."""
        for a in P.diff_states(self.state_now(), target):
            self.do(a)

    def cannot_complete(self) -> list[str]:
        """Why completing the plan now would be wrong (empty: it may be completed)."""
        before, after, now = self.plan.before, self.plan.after, self.state_now()
        why = []
        for name in sorted(set(before.aliases) | set(after.aliases)):
            if now.aliases.get(name) not in (before.aliases.get(name), after.aliases.get(name)):
                why.append(f"{name}@{P.ALIAS} is now v{now.aliases.get(name)}")
        for key in sorted(set(before.version_tags) | set(after.version_tags)):
            b, f, n = (
                before.version_tags.get(key, {}),
                after.version_tags.get(key, {}),
                now.version_tags.get(key, {}),
            )
            for tag in sorted(set(b) | set(f)):
                if n.get(tag) not in (b.get(tag), f.get(tag)):
                    why.append(f"{key} tag {tag} is now {n.get(tag)!r}")
        for tag in sorted(set(before.git_tags) | set(after.git_tags)):
            if now.git_tags.get(tag) not in (before.git_tags.get(tag), after.git_tags.get(tag)):
                why.append(f"git tag {tag} now points at {(now.git_tags.get(tag) or 'nothing')[:10]}")
        cand = self.plan.candidate
        if self.plan.action == "promote" and cand is not None:
            for m in cand.models:
                if self.registry.version_source_run(m.name, m.version) is None:
                    why.append(f"{m.name} v{m.version} is no longer in the model registry")
        for a in self._audits():
            if self.registry.run(a.data["undoes"]) is None:
                why.append(f"the audit record {a.data['undoes']} it undoes is gone")
        return why

    def complete(self) -> None:
        """Do what the plan has left: data, then the state of its ``after``, then its records and marks."""
        actions = self.plan.actions
        for i, a in enumerate(actions):
            if a.kind in DATA_ACTIONS and str(i) not in self.intent.done:
                self.do(a)
                self.intent.mark(str(i))
        self.converge(self.plan.after)
        for i, a in enumerate(actions):
            if a.kind in RECORD_ACTIONS and str(i) not in self.intent.done:
                self.do(a)
                self.intent.mark(str(i))
        self._marks()

    def undo(self) -> None:
        """Bring the state back to the plan's ``before``, delete its records and take its marks off
        (data pushed to the DVC remote stays: it changes no release)."""
        self.converge(self.plan.before)
        for kind in ("audit", "release"):
            for run in self.registry.records_tagged(TAG_INTENT, f"{self.intent.id}/{kind}"):
                self.registry.delete_run(run.run_id)
                self.log.append(f"delete the {kind} record run {run.run_id}")
        for a in self._audits():
            self.mark_undone(a, undone=False)

    def undone_record(self, why: list[str]) -> str:
        """The audit record of an undone plan: the plan, who made it and when, why it could not be
        completed and what was undone. Its action is ``<action>-undone``, which no rollback undoes; a whole
        one already written for this intent is kept."""
        audit = next((a for a in self.plan.actions if a.kind == P.AUDIT_RECORD), None)
        tags = dict(audit.data["tags"]) if audit is not None else {}
        action = f"{self.plan.action}-undone"
        tags.update({P.TAG_ACTION: action, P.TAG_AT: self.intent.at, P.TAG_BY: self.intent.by})
        tags["labelcycle.reason"] = ("; ".join(why))[:4000]
        record = {
            **self.plan.to_dict(),
            "at": self.intent.at,
            "by": self.intent.by,
            "undone_at": now(),
            "why_undone": list(why),
            "undone_steps": list(self.log),
        }
        name = f"{action} {tags.get(P.TAG_RELEASE) or ''}".strip()
        key = f"{self.intent.id}/undone"
        for run in self.registry.records_tagged(TAG_INTENT, key):
            if TAG_KIND in run.tags:
                return run.run_id
            self.registry.delete_run(run.run_id)
        return self.registry.write_record(
            "audit", {**tags, TAG_INTENT: key}, {records.AUDIT_PLAN: record}, None, run_name=name
        )
