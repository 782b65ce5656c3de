"""Carry a plan out, action by action (pip-tools' ``sync``).

Each action is done from its own fields (``Action.data``), so what was shown and audited is what
happens: the remote it configures, the revision it pushes, the tags and aliases it sets, and the
records it writes. Data goes to the DVC remote first (adding objects changes no release); if any later
step fails, the aliases, model-version tags and git tags are put back to the plan's ``before`` state.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from labelcycle.errors import LabelcycleError, PromotionRefusedError, StateError, TrackingError
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.tracking.registry import Registry
from labelcycle.versioning import dvc, git

#: actions that only add data to the DVC remote: done first, never undone
DATA_ACTIONS = (P.CONFIGURE_REMOTE, P.DVC_PUSH)


@dataclass
class Context:
    """What carrying a plan out needs beside the plan.

    Attributes:
        root: the project root.
        predictions: the candidate's per-item predictions, stored with its release record.
    """

    root: Path
    predictions: pd.DataFrame | None = None


class _Executor:
    """One execution of one plan: a handler per action kind, and the record run ids written."""

    def __init__(self, plan: P.Plan, ctx: Context, registry: Registry) -> None:
        self.plan, self.ctx, self.registry = plan, ctx, registry
        self.at = datetime.now(UTC).isoformat(timespec="seconds")
        self.who = getpass.getuser()
        self.written: dict[str, str] = {}
        self.handlers: dict[str, Callable[[P.Action], None]] = {
            P.CONFIGURE_REMOTE: self.configure_remote,
            P.DVC_PUSH: self.push,
            P.GIT_TAG: self.git_tag,
            P.MODEL_TAGS: self.model_tags,
            P.SET_ALIAS: self.alias,
            P.RELEASE_RECORD: self.release_record,
            P.AUDIT_RECORD: self.audit_record,
        }

    def do(self, a: P.Action) -> None:
        handler = self.handlers.get(a.kind)
        if handler is None:
            raise StateError(
                f"the plan holds an action of unknown kind {a.kind!r} ({a.detail}); nothing of it was done. "
                "Plan again with this version of labelcycle"
            )
        handler(a)

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

    def release_record(self, a: P.Action) -> None:
        manifest = {**a.data["manifest"], "promoted_at": self.at}
        files: dict[str, object] = {records.MANIFEST: manifest}
        if self.ctx.predictions is not None:
            files[records.PREDICTIONS] = self.ctx.predictions
        metrics = (manifest.get("evaluation") or {}).get("metrics") or {}
        self.written["release_record"] = self.registry.write_record(
            "release", a.data["tags"], files, metrics, run_name=a.data.get("run_name")
        )

    def audit_record(self, a: P.Action) -> None:
        """The audit record holds the whole plan it belongs to, with when and by whom."""
        record = {**self.plan.to_dict(), "at": self.at, "by": self.who}
        if self.plan.action == "promote" and record.get("candidate"):
            record["candidate"] = {**record["candidate"], "promoted_at": self.at}
        tags = {**a.data["tags"], P.TAG_AT: self.at, P.TAG_BY: self.who}
        self.written["audit_record"] = self.registry.write_record(
            "audit", tags, {records.AUDIT_PLAN: record}, run_name=a.data.get("run_name")
        )

    def mark_undone(self, a: P.Action) -> None:
        """After a rollback: its audit action's ``undoes`` record is undone, ``rolled_back`` release too."""
        if a.data.get("undoes"):
            self.registry.tag_run(a.data["undoes"], P.TAG_UNDONE, "true")
        if a.data.get("rolled_back"):
            record = records.find_release_record(self.registry, a.data["rolled_back"])
            if record is not None:
                self.registry.tag_run(record.run_id, P.TAG_ROLLED_BACK, self.at)

    def restore(self) -> None:
        """Put aliases, model-version tags and git tags back to the plan's ``before`` state."""
        before, after = self.plan.before, self.plan.after
        names = set(before.aliases) | set(after.aliases)
        versions = {_name_version(k) for k in set(before.version_tags) | set(after.version_tags)}
        keys = {k for s in (before, after) for tags in s.version_tags.values() for k in tags}
        now = records.registry_state(self.registry, self.ctx.root, names, versions, keys)
        for a in P.diff_states(now, before):
            self.do(a)


def _name_version(key: str) -> tuple[str, str]:
    name, _, version = key.rpartition("/")
    return name, version


def execute(plan: P.Plan, ctx: Context) -> dict[str, str]:
    """Carry out an allowed plan, each action by its own fields; a no-op changes nothing.

    Returns:
        The record run ids written: ``release_record`` (a promotion) and ``audit_record``.

    Raises:
        PromotionRefusedError: gates failed and the plan was not forced.
        TrackingError: a step failed (the registry and git tags were put back as they were); a
            :class:`~labelcycle.errors.LabelcycleError` from a step is raised as it is, after the same.
    """
    if plan.noop:
        return {}
    if not plan.allowed:
        names = ", ".join(x.name for x in plan.failed)
        raise PromotionRefusedError(
            f"refusing to carry out a plan whose gate(s) {names} failed; nothing was changed. "
            "Fix the cause, or plan again with --force --reason TEXT"
        )
    run = _Executor(plan, ctx, Registry(ctx.root))
    n_data = next((i for i, a in enumerate(plan.actions) if a.kind not in DATA_ACTIONS), len(plan.actions))
    for a in plan.actions[:n_data]:
        run.do(a)
    try:
        for a in plan.actions[n_data:]:
            run.do(a)
    except Exception as exc:
        try:
            run.restore()
        finally:
            if not isinstance(exc, LabelcycleError):
                raise TrackingError(
                    f"{plan.action} failed ({type(exc).__name__}: {exc}); the aliases, model "
                    "tags and git tags were put back as they were"
                ) from exc
        raise
    for a in plan.actions:
        if a.kind == P.AUDIT_RECORD:
            run.mark_undone(a)
    return run.written
