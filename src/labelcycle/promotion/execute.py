"""Carry a plan out, action by action (pip-tools' ``sync``), under the project lock.

Each action is done from its own fields (``Action.data``), so what was shown and audited is what
happens: the remote it configures, the revision it pushes, the tags and aliases it sets, and the
records it writes. Under the project lock (:mod:`labelcycle.locking`), :func:`execute` first finishes
any plan an interrupted command left, then checks that the plan still describes production
(:mod:`labelcycle.promotion.recovery`), records its intent, and carries it out. Data goes to the DVC
remote first (adding objects changes no release); if a later step fails, the aliases, model-version tags
and git tags are put back to the plan's ``before`` state and its records are deleted. A command killed
part-way leaves its intent, which the next ``promote``, ``rollback`` or ``status`` completes or undoes.
"""

from __future__ import annotations

from labelcycle.errors import LabelcycleError, PromotionRefusedError, StateError, TrackingError
from labelcycle.locking import project_lock
from labelcycle.promotion import plan as P
from labelcycle.promotion.intent import Intent, intent_path
from labelcycle.promotion.recovery import guarded, noted, recover, revalidate
from labelcycle.promotion.steps import DATA_ACTIONS, Context, Steps
from labelcycle.tracking.registry import Registry

__all__ = ["DATA_ACTIONS", "Context", "execute"]


def _refuse(plan: P.Plan) -> PromotionRefusedError:
    names = ", ".join(x.name for x in plan.failed)
    if plan.force and plan.unforceable:
        fixed = ", ".join(x.name for x in plan.unforceable)
        return PromotionRefusedError(
            f"refusing to carry out a plan whose gate(s) {names} failed; --force cannot override {fixed}: "
            "a release must name a commit that describes it. Nothing was changed. Commit, then plan again"
        )
    return PromotionRefusedError(
        f"refusing to carry out a plan whose gate(s) {names} failed; nothing was changed. "
        "Fix the cause, or plan again with --force --reason TEXT"
    )


def execute(plan: P.Plan, ctx: Context) -> dict[str, str]:
    """Carry out an allowed plan, each action by its own fields; a no-op changes nothing.

    Returns:
        The record run ids written: ``release_record`` (a promotion) and ``audit_record``.

    Raises:
        PromotionRefusedError: gates failed and the plan was not forced (or a gate ``--force`` cannot
            override failed).
        StateError: the project lock stayed held by another command, or the plan is out of date
            (production changed since it was made); nothing was changed.
        TrackingError: a step failed (the registry and git tags were put back as they were); a
            :class:`~labelcycle.errors.LabelcycleError` from a step is raised as it is, after the same.
    """
    if plan.noop:
        return {}
    if not plan.allowed:
        raise _refuse(plan)
    command = f"labelcycle {plan.action}"
    registry = Registry(ctx.root)
    with project_lock(ctx.root, command):
        notes = guarded("finish an interrupted promotion", lambda: recover(ctx.root, registry))
        with noted(notes):
            guarded("check the plan against production", lambda: revalidate(plan, registry, ctx.root))
        intent = Intent.start(ctx.root, plan, ctx.predictions, command)
        steps = Steps(plan, ctx, registry, intent)
        try:
            steps.forward()
        except Exception as exc:
            try:
                steps.undo()
            except Exception as undo_exc:
                raise StateError(
                    f"{plan.action} failed ({type(exc).__name__}: {exc}) and putting things back failed too "
                    f"({type(undo_exc).__name__}: {undo_exc}); the next `labelcycle status` completes or "
                    f"undoes it (its intent is {intent_path(ctx.root)})"
                ) from exc
            intent.remove()
            if isinstance(exc, LabelcycleError):
                raise
            raise TrackingError(
                f"{plan.action} failed ({type(exc).__name__}: {exc}); the aliases, model "
                "tags and git tags were put back as they were"
            ) from exc
        intent.remove()
    return steps.written
