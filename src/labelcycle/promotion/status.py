"""The production release as it is recorded (``labelcycle status``), and planning its rollback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from labelcycle import catalog
from labelcycle.params import load as load_params
from labelcycle.promotion import plan as P
from labelcycle.promotion import records
from labelcycle.promotion.recovery import noted, recover_if_free
from labelcycle.promotion.release import Release
from labelcycle.promotion.rollback import build_rollback_plan, promotion_to_undo
from labelcycle.promotion.steps import Context
from labelcycle.tracking.registry import Registry

#: the DVC output of each model role, for models a release holds without registering them
MODEL_OUTPUTS = {"quality": catalog.QUALITY_MODEL, "error": catalog.ERROR_MODEL}


def _lineage(rel: Release) -> dict[str, Any]:
    unregistered = [
        f"{path} (dvc md5 {rel.dvc_hashes[path]}; not registered)"
        for role, path in sorted(MODEL_OUTPUTS.items(), key=lambda kv: kv[1])
        if path in rel.dvc_hashes and role != "quality" and rel.model(role) is None
    ]
    return {
        "raw_batches": list(rel.raw_batches),
        "raw": {"path": catalog.RAW, "dvc_md5": rel.dvc_hashes.get(catalog.RAW)},
        "curated": {
            "path": catalog.DATASET,
            "digest": rel.dataset_digest,
            "dvc_md5": rel.dvc_hashes.get(catalog.DATASET),
        },
        "models": [f"{m.name} v{m.version} (run {m.run_id})" for m in rel.models] + unregistered,
    }


def status(root: Path) -> dict[str, Any] | None:
    """The production release as a dict (None when there is none and nothing is to be said).

    A plan an interrupted command left is first completed or undone; ``notes`` says which (and whether
    another command is changing the release right now). With no production release the dict then holds
    only ``release`` (None) and ``notes``.
    """
    notes = recover_if_free(root, "labelcycle status")
    with noted(notes):
        s = _production(root)
    if notes:
        return {**(s or {"release": None}), "notes": notes}
    return s


def _production(root: Path) -> dict[str, Any] | None:
    registry = Registry(root)
    rid = records.current_release_id(registry, load_params(root).train_quality.registered_model)
    if rid is None:
        return None
    rel, _, record = records.load_release(registry, rid)
    models = [
        {
            **m.to_dict(),
            "alias": f"models:/{m.name}@{P.ALIAS}",
            "alias_version": registry.alias(m.name, P.ALIAS),
        }
        for m in rel.models
    ]
    return {
        "release": rid,
        "promoted_at": rel.promoted_at,
        "forced": rel.forced,
        "source": rel.source,
        "release_record_run": record,
        "models": models,
        "dataset": {
            "digest": rel.dataset_digest,
            "git_tag": rid,
            "git_tag_commit": records.release_git_tags(root).get(rid),
            "git_rev": rel.git_rev,
            "dvc_hashes": dict(rel.dvc_hashes),
        },
        "evaluation": {
            "eval_digest": rel.eval_digest,
            "eval_items": rel.eval_items,
            "evaluate_run_id": rel.evaluate_run_id,
            "metrics": {k: {"value": v, **(rel.intervals.get(k) or {})} for k, v in rel.metrics.items()},
        },
        "lineage": _lineage(rel),
    }


def plan_rollback(root: Path, reason: str | None = None) -> tuple[P.Plan, Context]:
    """Undo the promotion that made the current release production; changes nothing, except that a plan
    an interrupted command left is first completed or undone (the plan's ``notes`` say which)."""
    notes = recover_if_free(root, "labelcycle rollback")
    with noted(notes):
        registry = Registry(root)
        current = records.current_release_id(registry, load_params(root).train_quality.registered_model)
        entry = promotion_to_undo(records.audit_history(registry), current)
        before = P.RegistryState.from_dict(registry.read_json(entry.run_id, records.AUDIT_PLAN)["before"])
        entry = replace(entry, before=before)
        cur = records.load_release(registry, current)[0] if current else None
        prev = records.load_release(registry, entry.from_release)[0] if entry.from_release else None
        names = set(before.aliases) | ({m.name for m in cur.models} if cur else set())
        versions = {(name, version) for name, _, version in (k.rpartition("/") for k in before.version_tags)}
        if cur:
            versions |= {(m.name, m.version) for m in cur.models}
        keys = {k for tags in before.version_tags.values() for k in tags}
        now = records.registry_state(registry, root, names, versions, keys)
    plan = build_rollback_plan(entry, now, cur, prev, reason)
    return replace(plan, notes=tuple(notes)), Context(root)
