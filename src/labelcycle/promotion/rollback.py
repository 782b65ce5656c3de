"""Rollback planning: which promotion a rollback undoes, and the plan that restores the state before it.

Pure, like :mod:`labelcycle.promotion.plan`: the audit history and the registry state are gathered by
:mod:`labelcycle.promotion.status`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labelcycle.errors import WorkspaceError
from labelcycle.promotion.plan import Plan, RegistryState, audit_record_action, diff_states
from labelcycle.promotion.release import Release


@dataclass(frozen=True)
class AuditEntry:
    """One promotion or rollback as recorded in MLflow.

    Attributes:
        run_id: the audit record's run.
        action: ``promote`` or ``rollback``.
        release: the release that became production.
        from_release: the release that was production before.
        before: the state before.
        at: when (ISO time; entries sort by it).
        undone: a later rollback undid this promotion.
    """

    run_id: str
    action: str
    release: str | None
    from_release: str | None
    before: RegistryState
    at: str
    undone: bool = False


def promotion_to_undo(history: Sequence[AuditEntry], current: str | None) -> AuditEntry:
    """The promotion a rollback undoes: the latest not yet undone promotion to the current release.

    Raises:
        WorkspaceError: no production release, or it has no earlier release to return to.
    """
    if not current:
        raise WorkspaceError("there is no production release to roll back (`labelcycle status` shows it)")
    for entry in sorted(history, key=lambda e: e.at, reverse=True):
        if entry.action == "promote" and entry.release == current and not entry.undone:
            if entry.from_release is None:
                raise WorkspaceError(
                    f"{current} was the first release; there is no previous release to roll back to"
                )
            return entry
    raise WorkspaceError(
        f"no recorded promotion to {current} that is not already undone; cannot tell which release "
        "preceded it"
    )


def build_rollback_plan(
    entry: AuditEntry,
    now: RegistryState,
    current: Release | None,
    previous: Release | None,
    reason: str | None,
) -> Plan:
    """Restore the state recorded before ``entry``'s promotion, exactly, and audit it."""
    actions = diff_states(now, entry.before)
    actions.append(
        audit_record_action(
            "rollback",
            entry.from_release,
            current.release_id if current else entry.release,
            reason=reason,
            undoes=entry.run_id,
        )
    )
    return Plan(
        "rollback",
        previous,
        current,
        (),
        tuple(actions),
        now,
        entry.before,
        reason=reason,
        undoes=entry.run_id,
    )
