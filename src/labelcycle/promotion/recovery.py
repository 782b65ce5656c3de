"""Checks made under the project lock: an interrupted plan is finished first, and a plan made before the
lock was taken must still describe production.

:func:`recover` finds the intent an interrupted ``promote`` or ``rollback`` left
(:mod:`labelcycle.promotion.intent`) and completes it when every remaining step is still valid, or
undoes what it did otherwise, and says which. :func:`revalidate` refuses a plan that is out of date:
production, the git tags or the next release number changed since it was made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from labelcycle.errors import LabelcycleError, StateError, TrackingError
from labelcycle.locking import holder, lock_if_free
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.promotion.intent import Intent, intent_path
from labelcycle.promotion.release import release_id
from labelcycle.promotion.steps import Context, Steps
from labelcycle.tracking.registry import Registry

T = TypeVar("T")


def guarded(what: str, fn: Callable[[], T]) -> T:
    """``fn()``, with any failure that is not a :class:`~labelcycle.errors.LabelcycleError` (MLflow or git
    unreachable) turned into a :class:`~labelcycle.errors.TrackingError` saying what could not be done.
    """
    try:
        return fn()
    except LabelcycleError:
        raise
    except Exception as exc:
        raise TrackingError(
            f"could not {what} ({type(exc).__name__}: {exc}); nothing was changed by it. Check that the "
            "MLflow tracking store is reachable, then run the command again"
        ) from exc


@contextmanager
def noted(notes: Sequence[str]) -> Iterator[None]:
    """Re-raise a :class:`~labelcycle.errors.LabelcycleError` of the block with ``notes`` (what recovery
    did first) in front of its message, so the one ``error:`` line still says it."""
    try:
        yield
    except LabelcycleError as exc:
        if not notes:
            raise
        raise type(exc)(" ".join([*notes, str(exc)])) from exc


def recover(root: Path, registry: Registry) -> list[str]:
    """Finish an interrupted plan, if one was left; the caller holds the project lock.

    Returns:
        One line for people saying what was found and done (empty when nothing was left).

    Raises:
        StateError: the plan can be neither completed nor undone (the message says what to set right).
    """
    intent = Intent.load(root)
    if intent is None:
        return []
    plan = intent.to_plan()
    steps = Steps(plan, Context(root, intent.predictions()), registry, intent)
    why_not = steps.cannot_complete()
    if not why_not:
        try:
            steps.complete()
        except Exception as exc:  # any failure: fall back to undoing it
            why_not = [f"completing it failed ({type(exc).__name__}: {exc})"]
        else:
            intent.remove()
            done = "; ".join(steps.log) or "nothing was left to do"
            return [f"an interrupted {intent.describe()} was found and completed: {done}"]
    try:
        steps.undo()
    except Exception as exc:
        raise StateError(
            f"an interrupted {intent.describe()} can be neither completed ({'; '.join(why_not)}) nor undone "
            f"({type(exc).__name__}: {exc}). Set the `{P.ALIAS}` aliases, the model-version tags and the "
            f"dataset/v* git tags right by hand (`labelcycle status`), then delete {intent_path(root)}"
        ) from exc
    record = steps.undone_record(why_not)
    intent.remove()
    undone = "; ".join(steps.log) or "nothing had been changed"
    return [
        f"an interrupted {intent.describe()} was found; it could not be completed ({'; '.join(why_not)}), "
        f"so it was undone: {undone} (audit record run {record})"
    ]


def recover_if_free(root: Path, command: str) -> list[str]:
    """:func:`recover` when an intent was left and nobody holds the lock; a note when one is in progress."""
    if not intent_path(root).exists():
        return []
    with lock_if_free(root, command) as free:
        if free:
            return guarded("finish an interrupted promotion", lambda: recover(root, Registry(root)))
    who = holder(root)
    return [
        f"{who.describe() if who else 'another command'} is changing the production release right now; "
        "what is shown may change when it finishes"
    ]


def _production_release(now: P.RegistryState, plan: P.Plan) -> str | None:
    """The release the candidate's models are now production as (None: they are not)."""
    cand = plan.candidate
    if cand is None or not cand.models:
        return None
    rids = set()
    for m in cand.models:
        if now.aliases.get(m.name) != m.version:
            return None
        rids.add(now.version_tags.get(f"{m.name}/{m.version}", {}).get(P.TAG_RELEASE))
    return next(iter(rids)) if len(rids) == 1 else None


def _changes(before: P.RegistryState, now: P.RegistryState) -> list[str]:
    """What differs between two states, for people."""
    out = []
    for name in sorted(set(before.aliases) | set(now.aliases)):
        b, n = before.aliases.get(name), now.aliases.get(name)
        if b != n:
            out.append(
                f"{name}@{P.ALIAS} moved from {f'v{b}' if b else '(none)'} to {f'v{n}' if n else '(none)'}"
            )
    for key in sorted(set(before.version_tags) | set(now.version_tags)):
        b_t, n_t = before.version_tags.get(key, {}), now.version_tags.get(key, {})
        changed = sorted(k for k in set(b_t) | set(n_t) if b_t.get(k) != n_t.get(k))
        if changed:
            out.append(f"the tags {', '.join(changed)} of {key} changed")
    for tag in sorted(set(before.git_tags) | set(now.git_tags)):
        b, n = before.git_tags.get(tag), now.git_tags.get(tag)
        if b != n:
            out.append(f"git tag {tag} " + (f"was created at {n[:10]}" if n else "was deleted"))
    return out


def revalidate(plan: P.Plan, registry: Registry, root: Path) -> None:
    """Refuse ``plan`` when what it was planned against has changed; the caller holds the project lock.

    Raises:
        StateError: production, the release tags, the next release number or the promotion a rollback
            undoes changed since the plan was made; nothing was changed.
    """
    now = records.state_for(registry, root, plan.before, plan.after)
    changes = _changes(plan.before, now)
    if plan.action == "promote" and plan.candidate is not None and plan.candidate.release_id:
        next_id = release_id(records.next_release_number(registry, root))
        if next_id != plan.candidate.release_id:
            changes.append(f"the next release is {next_id}, not {plan.candidate.release_id}")
    if plan.undoes:
        run = registry.run(plan.undoes)
        if run is None or run.tags.get(P.TAG_UNDONE) == "true":
            changes.append(f"the promotion it undoes (audit record {plan.undoes}) was already rolled back")
    if not changes:
        return
    since = "; ".join(changes)
    if plan.action == "promote" and (rid := _production_release(now, plan)):
        raise StateError(
            f"this candidate is already production as {rid}: another command promoted it while this one "
            f"was planning ({since}); nothing was changed. `labelcycle status` shows it"
        )
    raise StateError(
        f"the {plan.action} plan is out of date: since it was made, {since}; nothing was changed. Run "
        f"`labelcycle {plan.action}` again to plan against the current production"
    )
