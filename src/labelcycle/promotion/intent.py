"""The recorded intent of a promotion or rollback being carried out.

Before its first side effect, :func:`~labelcycle.promotion.execute.execute` writes the whole plan to
``labelcycle-intent.json`` beside the project lock (with the candidate's predictions beside it); each step
marks itself done; the file is removed once the plan is carried out. A file still there means the command
was interrupted: the next ``promote``, ``rollback`` or ``status`` finds it under the lock and completes or
undoes it (:mod:`labelcycle.promotion.recovery`).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle.errors import StateError
from labelcycle.locking import lock_dir
from labelcycle.promotion.gates import Gate
from labelcycle.promotion.plan import Action, Plan, RegistryState
from labelcycle.promotion.release import Release

INTENT_FILE = "labelcycle-intent.json"
PREDICTIONS_FILE = "labelcycle-intent-predictions.parquet"
#: the step that marks, after a rollback's audit record, what the rollback undid
MARKS_STEP = "marks"


def intent_path(root: Path) -> Path:
    return lock_dir(root) / INTENT_FILE


def _release(d: Mapping[str, Any] | None) -> Release | None:
    return Release.from_manifest(d) if d else None


def plan_from_dict(d: Mapping[str, Any]) -> Plan:
    """The :class:`~labelcycle.promotion.plan.Plan` that :meth:`Plan.to_dict` wrote."""
    return Plan(
        action=str(d["action"]),
        candidate=_release(d.get("candidate")),
        production=_release(d.get("production")),
        gates=tuple(
            Gate(x["name"], bool(x["passed"]), x["evidence"], bool(x.get("applies", True)))
            for x in d.get("gates") or ()
        ),
        actions=tuple(
            Action(a["kind"], a["target"], a["detail"], dict(a.get("data") or {}))
            for a in d.get("actions") or ()
        ),
        before=RegistryState.from_dict(d.get("before") or {}),
        after=RegistryState.from_dict(d.get("after") or {}),
        noop=bool(d.get("noop", False)),
        force=bool(d.get("force", False)),
        reason=d.get("reason"),
        undoes=d.get("undoes"),
        metric=d.get("metric"),
    )


def now() -> str:
    """The time now, as intents and records write it (UTC, ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` so that a reader sees the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class Intent:
    """A plan being carried out, as recorded on disk.

    Attributes:
        root: the project root.
        id: unique id; the records the plan writes carry it, so a repeated step finds them.
        plan: the plan (as :meth:`Plan.to_dict` wrote it).
        at: when the plan's records say it was carried out.
        by: who carried it out.
        pid: the process that carried it out.
        command: its command.
        started: when it started.
        done: the steps done (action indexes as text, and :data:`MARKS_STEP`).
        has_predictions: the candidate's predictions were saved beside the intent.
    """

    root: Path
    id: str
    plan: dict[str, Any]
    at: str
    by: str
    pid: int
    command: str
    started: str
    done: list[str] = field(default_factory=list)
    has_predictions: bool = False

    @classmethod
    def start(cls, root: Path, plan: Plan, predictions: pd.DataFrame | None, command: str) -> Intent:
        """Record the intent to carry out ``plan`` (before any of it is done)."""
        at = now()
        intent = cls(
            root,
            uuid.uuid4().hex,
            plan.to_dict(),
            at,
            getpass.getuser(),
            os.getpid(),
            command,
            at,
            has_predictions=predictions is not None,
        )
        path = intent_path(root)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if predictions is not None:
                predictions.to_parquet(path.with_name(PREDICTIONS_FILE), index=False)
            intent.save()
        except OSError as exc:
            raise StateError(
                f"cannot write the promotion intent {path}: {exc}; nothing was changed. Check that the "
                "folder is writable and has space"
            ) from exc
        return intent

    @classmethod
    def load(cls, root: Path) -> Intent | None:
        """The intent left in the project (None when there is none).

        Raises:
            StateError: the file cannot be read.
        """
        path = intent_path(root)
        if not path.exists():
            return None
        try:
            d = json.loads(path.read_text())
            return cls(
                root,
                str(d["id"]),
                dict(d["plan"]),
                str(d["at"]),
                str(d["by"]),
                int(d["pid"]),
                str(d["command"]),
                str(d["started"]),
                list(d.get("done") or []),
                bool(d.get("has_predictions", False)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateError(
                f"{path}: an interrupted promotion's intent cannot be read ({exc}). Check `labelcycle "
                "status` against the MLflow registry and the dataset/v* git tags, set them right, then "
                "delete the file"
            ) from exc

    def save(self) -> None:
        data = {
            "id": self.id,
            "plan": self.plan,
            "at": self.at,
            "by": self.by,
            "pid": self.pid,
            "command": self.command,
            "started": self.started,
            "done": self.done,
            "has_predictions": self.has_predictions,
        }
        _write_json(intent_path(self.root), data)

    def mark(self, step: str) -> None:
        """Record ``step`` as done."""
        if step not in self.done:
            self.done.append(step)
            self.save()

    def predictions(self) -> pd.DataFrame | None:
        path = intent_path(self.root).with_name(PREDICTIONS_FILE)
        if not self.has_predictions or not path.exists():
            return None
        return pd.read_parquet(path)

    def remove(self) -> None:
        """The plan is carried out (or undone): forget it."""
        intent_path(self.root).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            intent_path(self.root).with_name(PREDICTIONS_FILE).unlink(missing_ok=True)

    def to_plan(self) -> Plan:
        return plan_from_dict(self.plan)

    def describe(self) -> str:
        p = self.plan
        what = (p.get("candidate") or {}).get("release") or "?"
        head = f"rollback to {what}" if p.get("action") == "rollback" else f"promotion of {what}"
        return f"{head} (`{self.command}`, pid {self.pid}, started {self.started})"
