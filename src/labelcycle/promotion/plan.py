"""The promotion plan (pip-tools' ``diff``): gates, the state change, and the actions that make it.

The registry and git state a release touches is a :class:`RegistryState` (``production`` aliases,
labelcycle's model-version tags, ``dataset/vN`` git tags). A promotion's actions are the difference
between the state before and the state after, plus the records; a rollback's are the difference between
now and the state recorded before the promotion it undoes, so it restores aliases and tags exactly.

Every action carries in its ``data`` all that carrying it out needs (:mod:`labelcycle.promotion.execute`
reads nothing else), so the plan that is shown and audited is exactly what is done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.errors import EvalSetMismatchError
from labelcycle.evaluation.paired import PredictionSet, compare_paired
from labelcycle.evaluation.slices import slice_paired
from labelcycle.params import PromoteParams
from labelcycle.promotion import gates as g
from labelcycle.promotion.release import Release, release_id

ALIAS = "production"
# tags on promoted model versions and on the records
TAG_RELEASE = "labelcycle.release"
TAG_DATASET_DIGEST = "labelcycle.dataset_digest"
TAG_GIT_REV = "labelcycle.git_rev"
TAG_EVAL_DIGEST = "labelcycle.eval_digest"
TAG_DVC_PREFIX = "labelcycle.dvc."
# tags on audit records
TAG_ACTION = "labelcycle.action"
TAG_FROM = "labelcycle.from_release"
TAG_AT = "labelcycle.at"
TAG_BY = "labelcycle.by"
TAG_UNDONE = "labelcycle.undone"
TAG_ROLLED_BACK = "labelcycle.rolled_back"

# action kinds, in the order a plan carries them out
CONFIGURE_REMOTE = "configure-remote"
DVC_PUSH = "dvc-push"
GIT_TAG = "git-tag"
MODEL_TAGS = "model-version-tags"
SET_ALIAS = "alias"
RELEASE_RECORD = "release-record"
AUDIT_RECORD = "audit-record"


@dataclass(frozen=True)
class RegistryState:
    """The state a release is made of, outside the data itself.

    Attributes:
        aliases: registered model name -> version the ``production`` alias points at (None: no alias).
        version_tags: ``"name/version"`` -> {tag: value, None when absent} for labelcycle's tags.
        git_tags: ``dataset/vN`` git tag -> commit.
    """

    aliases: Mapping[str, str | None] = field(default_factory=dict)
    version_tags: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    git_tags: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "aliases": dict(sorted(self.aliases.items())),
            "version_tags": {k: dict(sorted(v.items())) for k, v in sorted(self.version_tags.items())},
            "git_tags": dict(sorted(self.git_tags.items())),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegistryState:
        return cls(
            aliases=dict(d.get("aliases") or {}),
            version_tags={k: dict(v) for k, v in (d.get("version_tags") or {}).items()},
            git_tags=dict(d.get("git_tags") or {}),
        )


@dataclass(frozen=True)
class Action:
    """One change the plan makes.

    Attributes:
        kind: one of the action kinds (:data:`CONFIGURE_REMOTE` ... :data:`AUDIT_RECORD`).
        target: what it changes (model name, git tag, remote).
        detail: one line for people.
        data: what the executor needs (versions, tags, commit, ...).
    """

    kind: str
    target: str
    detail: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "detail": self.detail, "data": dict(self.data)}


@dataclass(frozen=True)
class Plan:
    """What ``promote`` (or ``rollback``) would do, and why.

    Attributes:
        action: ``promote`` or ``rollback``.
        candidate: the release that would become production (with its new ``release_id``).
        production: the current production release (None before the first promotion).
        gates: every gate's result (empty for a rollback).
        actions: the changes, in execution order (empty for a no-op).
        before: the registry/git state now.
        after: the state once carried out.
        noop: the candidate already is production.
        force: ``--force`` was given.
        reason: ``--reason`` text.
        undoes: a rollback's audit record of the promotion it undoes.
        metric: the primary metric the gates judged (None for a rollback).
        notes: what was found before planning, for people (e.g. an interrupted promotion completed).
    """

    action: str
    candidate: Release | None
    production: Release | None
    gates: tuple[g.Gate, ...]
    actions: tuple[Action, ...]
    before: RegistryState
    after: RegistryState
    noop: bool = False
    force: bool = False
    reason: str | None = None
    undoes: str | None = None
    metric: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def failed(self) -> list[g.Gate]:
        return [x for x in self.gates if not x.passed]

    @property
    def unforceable(self) -> list[g.Gate]:
        """Failed gates that ``--force`` cannot override (:data:`~labelcycle.promotion.gates.UNFORCEABLE`)."""
        return [x for x in self.failed if x.name in g.UNFORCEABLE]

    @property
    def allowed(self) -> bool:
        """The plan may be carried out: a no-op, every gate passed, or forced past evidence gates only."""
        return self.noop or not self.failed or (self.force and not self.unforceable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "noop": self.noop,
            "force": self.force,
            "reason": self.reason,
            "undoes": self.undoes,
            "metric": self.metric,
            "allowed": self.allowed,
            "failed_gates": [x.name for x in self.failed],
            "candidate": self.candidate.to_manifest() if self.candidate else None,
            "production": self.production.to_manifest() if self.production else None,
            "gates": [x.to_dict() for x in self.gates],
            "actions": [a.to_dict() for a in self.actions],
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
        }


@dataclass(frozen=True)
class Evidence:
    """Everything :func:`build_plan` judges, gathered by :mod:`labelcycle.promotion.facts`.

    Attributes:
        candidate: the candidate release (no ``release_id`` yet).
        production: the production release, or None.
        candidate_predictions: ``item_id, gold_label, label, proba_*`` on the eval split.
        production_predictions: the same for production (None when there is none).
        classes: the label set.
        slice_features: ``item_id`` plus categorical item features (None: none).
        ingest_passed: reports/ingest.json ``validation_passed``.
        split_digest: digest of the workspace eval split (None when unknown).
        commit: git facts.
        remote: DVC remote facts.
        registered: ``(name, version) -> source run id`` ("" unknown) or None when absent.
        state: the registry/git state now, for every model name and version involved.
        next_release_number: N of the ``dataset/vN`` this promotion would create.
    """

    candidate: Release
    production: Release | None
    candidate_predictions: pd.DataFrame
    production_predictions: pd.DataFrame | None
    classes: Sequence[str]
    slice_features: pd.DataFrame | None
    ingest_passed: bool | None
    split_digest: str | None
    commit: g.CommitFacts
    remote: g.RemoteFacts
    registered: Mapping[tuple[str, str], str | None]
    state: RegistryState
    next_release_number: int
    positive_labels: Sequence[str] = ()  # evaluate.positive_labels: the binary metrics are compared too
    flag_threshold: float | None = None  # evaluate.flag_threshold


GOLD = "gold_label"


def prediction_set(frame: pd.DataFrame, classes: Sequence[str], eval_digest: str | None) -> PredictionSet:
    """A :class:`PredictionSet` from the evaluate stage's ``reports/predictions.parquet`` layout."""
    f = (
        frame.drop(columns=[schema.LABEL]).rename(columns={GOLD: schema.LABEL})
        if GOLD in frame.columns
        else frame
    )
    return PredictionSet.from_frame(f, classes, eval_digest=eval_digest)


def judge(ev: Evidence, params: PromoteParams, metric: str) -> tuple[g.Gate, ...]:
    """Every gate, in :data:`~labelcycle.promotion.gates.ORDER`."""
    cand, prod = ev.candidate, ev.production
    comparison = slice_table = None
    mismatch = None
    if prod is not None:
        if ev.production_predictions is None:
            mismatch = f"production release {prod.release_id} has no per-item predictions recorded"
        else:
            try:
                base = prediction_set(ev.production_predictions, ev.classes, prod.eval_digest)
                new = prediction_set(ev.candidate_predictions, ev.classes, cand.eval_digest)
                comparison = compare_paired(
                    base,
                    new,
                    n_boot=params.n_boot,
                    random_state=params.seed,
                    positive_labels=ev.positive_labels,
                    flag_threshold=ev.flag_threshold,
                )
                if ev.slice_features is not None and ev.slice_features.shape[1] > 1:
                    slice_table = slice_paired(
                        base,
                        new,
                        ev.slice_features,
                        metrics=[metric],
                        n_boot=params.n_boot,
                        random_state=params.seed,
                        min_n=params.min_slice_size,
                        positive_labels=ev.positive_labels if metric in catalog.BINARY_HEADLINE else (),
                        flag_threshold=ev.flag_threshold,
                    )
            except EvalSetMismatchError as exc:
                mismatch = str(exc)
    no_features = ev.slice_features is None or ev.slice_features.shape[1] <= 1
    return (
        g.eval_digest_gate(
            cand.eval_digest, prod.eval_digest if prod else None, prod is not None, ev.split_digest
        ),
        g.baseline_gate(metric, cand.metrics.get(metric), cand.baseline.get(metric)),
        g.non_inferiority_gate(comparison, metric, params.margin, cand.metrics.get(metric), mismatch),
        g.slices_gate(
            slice_table,
            metric,
            params.slice_margin,
            params.min_slice_size,
            mismatch,
            no_features=no_features and prod is not None,
        ),
        g.ingest_gate(ev.ingest_passed),
        g.committed_gate(ev.commit),
        g.remote_gate(ev.remote),
        g.models_gate(cand.models, ev.registered),
    )


def model_version_tags(release: Release) -> dict[str, str]:
    """The tags a promotion puts on each of the release's model versions."""
    tags = {
        TAG_RELEASE: release.release_id or "",
        TAG_DATASET_DIGEST: release.dataset_digest,
        TAG_GIT_REV: release.git_rev or "",
        TAG_EVAL_DIGEST: release.eval_digest or "",
    }
    for path in catalog.RELEASE_PATHS:
        if path in release.dvc_hashes:
            tags[TAG_DVC_PREFIX + path] = release.dvc_hashes[path]
    return tags


def promoted_state(before: RegistryState, release: Release, previous: Release | None) -> RegistryState:
    """The state once ``release`` (with its ``release_id``) is production."""
    aliases = dict(before.aliases)
    if previous is not None:
        for m in previous.models:  # a role the new release lacks loses its production alias
            aliases[m.name] = None
    version_tags = {k: dict(v) for k, v in before.version_tags.items()}
    tags = model_version_tags(release)
    for m in release.models:
        aliases[m.name] = m.version
        key = f"{m.name}/{m.version}"
        version_tags[key] = {**version_tags.get(key, {}), **tags}
    git_tags = dict(before.git_tags)
    if release.release_id and release.git_rev:
        git_tags[release.release_id] = release.git_rev
    return RegistryState(aliases, version_tags, git_tags)


def diff_states(before: RegistryState, after: RegistryState) -> list[Action]:
    """Actions that turn ``before`` into ``after`` (git tags, model-version tags, then aliases)."""
    actions: list[Action] = []
    for tag in sorted(set(before.git_tags) | set(after.git_tags)):
        old, new = before.git_tags.get(tag), after.git_tags.get(tag)
        if old == new:
            continue
        if new is None:
            actions.append(Action(GIT_TAG, tag, f"delete git tag {tag} (was {old[:10]})", {"commit": None}))
        else:
            verb = "create" if old is None else f"move (from {old[:10]})"
            actions.append(
                Action(GIT_TAG, tag, f"{verb} git tag {tag} -> {new[:10]}", {"commit": new, "old": old})
            )
    for key in sorted(set(before.version_tags) | set(after.version_tags)):
        old_t, new_t = before.version_tags.get(key, {}), after.version_tags.get(key, {})
        changes = {k: new_t.get(k) for k in sorted(set(old_t) | set(new_t)) if old_t.get(k) != new_t.get(k)}
        if not changes:
            continue
        name, _, version = key.rpartition("/")
        sets = [k for k, v in changes.items() if v is not None]
        dels = [k for k, v in changes.items() if v is None]
        text = ", ".join(
            filter(
                None, [f"set {', '.join(sets)}" if sets else "", f"delete {', '.join(dels)}" if dels else ""]
            )
        )
        shown = f"; {TAG_RELEASE}={changes[TAG_RELEASE]}" if changes.get(TAG_RELEASE) else ""
        actions.append(
            Action(
                MODEL_TAGS,
                key,
                f"{name} v{version}: {text}{shown}",
                {"name": name, "version": version, "tags": changes},
            )
        )
    for name in sorted(set(before.aliases) | set(after.aliases)):
        old_v, new_v = before.aliases.get(name), after.aliases.get(name)
        if old_v == new_v:
            continue
        if new_v is None:
            detail = f"remove alias {name}@{ALIAS} (was v{old_v})"
        else:
            detail = f"move alias {name}@{ALIAS}: {'v' + str(old_v) if old_v else '(none)'} -> v{new_v}"
        actions.append(Action(SET_ALIAS, name, detail, {"name": name, "version": new_v, "old": old_v}))
    return actions


def release_record_action(release: Release) -> Action:
    """Record ``release`` (with its id) in MLflow: its manifest, tags naming it, and its predictions."""
    rid = release.release_id or ""
    tags = {
        TAG_RELEASE: rid,
        TAG_DATASET_DIGEST: release.dataset_digest,
        TAG_GIT_REV: release.git_rev or "",
        TAG_EVAL_DIGEST: release.eval_digest or "",
        "labelcycle.forced": str(release.forced).lower(),
        "labelcycle.models": ", ".join(f"{m.name}/{m.version}" for m in release.models),
    }
    return Action(
        RELEASE_RECORD,
        rid,
        f"record release {rid} in MLflow (manifest + predictions)",
        {"run_name": f"release {rid}", "tags": tags, "manifest": release.to_manifest()},
    )


def audit_record_action(
    action: str,
    release: str | None,
    from_release: str | None,
    *,
    forced: bool = False,
    failed: Sequence[str] = (),
    reason: str | None = None,
    undoes: str | None = None,
) -> Action:
    """Write the audit record of ``action`` (``promote``, ``rollback``) that makes ``release`` production.

    A rollback's record also marks the audit record it ``undoes`` as undone and the release record of
    ``from_release`` as rolled back.
    """
    tags = {
        TAG_ACTION: action,
        TAG_RELEASE: release or "",
        TAG_FROM: from_release or "",
        "labelcycle.forced": str(forced).lower(),
        "labelcycle.failed_gates": ",".join(failed),
        "labelcycle.reason": (reason or "")[:4000],
        "labelcycle.undoes": undoes or "",
    }
    data: dict[str, Any] = {"run_name": f"{action} {release or ''}".strip(), "tags": tags}
    if undoes:
        data.update(undoes=undoes, rolled_back=from_release)
    return Action(
        AUDIT_RECORD, release or "", "write the audit record (plan, evidence, reason) to MLflow", data
    )


def build_plan(
    ev: Evidence,
    params: PromoteParams,
    metric: str,
    *,
    force: bool = False,
    reason: str | None = None,
    remote_path_note: str | None = None,
) -> Plan:
    """The promotion plan: gates judged on ``metric``; the actions that would make the candidate production.

    Pure: reads nothing, changes nothing. A no-op plan (the candidate already is production) has no
    actions. ``force`` marks the release as forced when some gate failed.

    Args:
        ev: the facts.
        params: the gates' margins and bootstrap settings.
        metric: the primary metric (``evaluate.primary_metric``) the comparison gates judge.
        force: carry the plan out although gates failed.
        reason: why (recorded in the audit record).
        remote_path_note: where an unconfigured remote will be configured, for the action's text.
    """
    gates = judge(ev, params, metric)
    prod = ev.production
    if prod is not None and ev.candidate.same_release(prod):
        return Plan(
            "promote",
            prod,
            prod,
            gates,
            (),
            ev.state,
            ev.state,
            noop=True,
            force=force,
            reason=reason,
            metric=metric,
        )
    failed = [x.name for x in gates if not x.passed]
    rid = release_id(ev.next_release_number)
    cand = ev.candidate.with_id(rid, forced=force and bool(failed))
    after = promoted_state(ev.state, cand, prod)
    actions: list[Action] = []
    r = ev.remote
    if not r.configured and r.name:
        actions.append(
            Action(
                CONFIGURE_REMOTE,
                r.name,
                f"configure default DVC remote {r.name!r} -> {r.url}"
                + (f" ({remote_path_note})" if remote_path_note else ""),
                {"name": r.name, "url": r.url},
            )
        )
    if r.name and (r.to_push or not r.configured):
        actions.append(
            Action(
                DVC_PUSH,
                r.name,
                f"dvc push {r.to_push} of {r.total} object(s) to {r.name!r}",
                {"remote": r.name, "rev": cand.git_rev},
            )
        )
    actions.extend(diff_states(ev.state, after))
    actions.append(release_record_action(cand))
    actions.append(
        audit_record_action(
            "promote",
            rid,
            prod.release_id if prod else None,
            forced=force and bool(failed),
            failed=failed,
            reason=reason,
        )
    )
    return Plan(
        "promote",
        cand,
        prod,
        gates,
        tuple(actions),
        ev.state,
        after,
        force=force,
        reason=reason,
        metric=metric,
    )
