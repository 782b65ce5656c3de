"""Params in words: what changed between two versions, and how status and rollback say it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labelcycle import catalog
from labelcycle.versioning.git import show_file

if TYPE_CHECKING:
    from labelcycle.versioning.versions import Version


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        out[prefix] = value
    return out


def params_diff(base: Mapping[str, Any], candidate: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Flattened params that differ: key -> (base value, candidate value); None where a side lacks it."""
    a, b = flatten(base), flatten(candidate)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if str(a.get(k)) != str(b.get(k))}


def describe_changes(
    diff: Mapping[str, tuple[Any, Any]], limit: int | None = None, arrows: bool = False
) -> str:
    """``aggregate.method=majority_vote, sample.fraction=0.5`` (``arrows``: ``a.b 1 -> 2``); ``+N more``."""
    items = list(diff.items())
    picked = items if limit is None else items[:limit]
    if arrows:
        parts = [f"{k} {_text(old)} -> {_text(new)}" for k, (old, new) in picked]
    else:
        parts = [f"{k}={_text(new)}" for k, (_, new) in picked]
    if len(items) > len(picked):
        parts.append(f"+{len(items) - len(picked)} more")
    return ", ".join(parts)


def _text(value: Any) -> str:
    return "(unset)" if value is None else str(value)


def params_at(root: Path, rev: str) -> dict[str, Any]:
    """``params.yaml`` committed at ``rev``, flattened (empty when absent or unreadable)."""
    raw = show_file(root, rev, catalog.PARAMS)
    try:
        data = yaml.safe_load(raw) if raw else {}
    except yaml.YAMLError:
        return {}
    return flatten(data) if isinstance(data, dict) else {}


def release_words(
    root: Path,
    release_id: str,
    rev: str | None,
    previous: tuple[str, str | None] | None,
    parent: Version | None = None,
) -> dict[str, Any]:
    """The production release named in words: its id, how its labels were made, what it was trained on, the
    params that differ from the previous release, and its MLflow parent run (what ``status`` prints).

    Args:
        root: the project.
        release_id: e.g. ``dataset/v3``.
        rev: the release's git commit (its ``params.yaml`` is read there).
        previous: the previous release's id and commit (None: this is the first release).
        parent: the release's version as MLflow knows it (its parent run and name), when found.

    Returns:
        ``release, aggregation_method, curate_action, sample, previous, changed`` (param -> [previous,
        this]), ``parent_run``, ``name`` and ``lines`` (the same in sentences).
    """
    now = params_at(root, rev) if rev else {}
    method, action = now.get("aggregate.method"), now.get("curate.action")
    sample = {k.split(".", 1)[1]: v for k, v in now.items() if k.startswith("sample.")}
    lines = [
        f"version: {release_id}"
        + (
            f" = MLflow parent run {parent.parent_run} ({parent.name})"
            if parent and parent.parent_run
            else ""
        )
    ]
    made = ", ".join(
        filter(
            None,
            [
                f"labels by {method}" if method else "",
                f"curated with {action}" if action else "",
                f"trained on a {sample.get('strategy', '')} sample of fraction {sample['fraction']}"
                if "fraction" in sample
                else "",
            ],
        )
    )
    if made:
        lines.append(f"  {made}")
    changed: dict[str, list[Any]] = {}
    if previous is None:
        lines.append("  the first release")
    elif not rev or not previous[1]:
        lines.append(f"  previous release {previous[0]}: params unknown (no git commit recorded)")
    else:
        diff = params_diff(params_at(root, previous[1]), now)
        changed = {k: [old, new] for k, (old, new) in diff.items()}
        what = describe_changes(diff, arrows=True) if diff else "no params changed (the data or code did)"
        lines.append(f"  since the previous release {previous[0]}: {what}")
    return {
        "release": release_id,
        "aggregation_method": method,
        "curate_action": action,
        "sample": sample,
        "previous": previous[0] if previous else None,
        "changed": changed,
        "parent_run": parent.parent_run if parent else None,
        "name": parent.name if parent else None,
        "lines": lines,
    }


def rollback_words(
    moved: Sequence[str], restored: str | None, restored_rev: str | None, head: str | None, branch: str | None
) -> list[str]:
    """What a rollback moved and what it did not, in sentences.

    Args:
        moved: one line per change carried out (aliases, model-version tags, git tags, records).
        restored: the release production serves now.
        restored_rev: its git commit.
        head, branch: the workspace's commit and branch (which a rollback leaves alone).
    """
    lines = ["moved (the production pointers only):", *(f"  - {m}" for m in moved)]
    where = (
        f"git HEAD {head[:10]}" + (f" on {branch}" if branch and branch != "HEAD" else "")
        if head
        else "the folder"
    )
    lines.append(
        f"not moved: the workspace ({where}, {catalog.PARAMS}, {catalog.DVC_LOCK} and the data and models "
        "checked out there) stays as it is; `dvc repro` there still builds the version you were working on"
    )
    if restored and restored_rev:
        lines.append(
            f"to work on {restored}'s data: git checkout {restored} && dvc checkout "
            f"(commit {restored_rev[:10]})"
        )
    return lines
