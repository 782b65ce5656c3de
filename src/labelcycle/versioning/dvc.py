"""DVC access: track raw batches, read the hashes DVC recorded for stage outputs."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from labelcycle.errors import WorkspaceError


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds ``.dvc/`` (the project root)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    raise WorkspaceError(
        f"{here} is not inside a DVC project (no .dvc/ folder found above it); run labelcycle from the "
        "project folder, or create one with `git init && dvc init`"
    )


def track(root: Path, path: Path) -> None:
    """``dvc add`` a path (relative to root), staging the .dvc file in git where git is used."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            repo.add(str(path))
    except Exception as exc:  # DVC raises many types; turn them into one clear message
        raise WorkspaceError(f"dvc add {path} failed in {root}: {exc}") from exc


def recorded_hashes(root: Path) -> dict[str, str]:
    """Path -> md5 for every output recorded in ``dvc.lock`` and in ``*.dvc`` files at the top levels."""
    out: dict[str, str] = {}
    lock = root / "dvc.lock"
    if lock.exists():
        data = yaml.safe_load(lock.read_text()) or {}
        for stage in (data.get("stages") or {}).values():
            for entry in stage.get("outs", []) or []:
                if "md5" in entry:
                    out[entry["path"]] = entry["md5"]
    for dvc_file in [p for p in (*root.glob("*.dvc"), *root.glob("data/*.dvc")) if p.is_file()]:
        data = yaml.safe_load(dvc_file.read_text()) or {}
        for entry in data.get("outs", []) or []:
            if "md5" in entry:
                rel = (dvc_file.parent / entry["path"]).relative_to(root)
                out[str(rel)] = entry["md5"]
    return out


def stage_lock(root: Path, stage: str) -> dict:
    """The ``dvc.lock`` entry of one stage (empty before it first ran)."""
    lock = root / "dvc.lock"
    if not lock.exists():
        return {}
    data = yaml.safe_load(lock.read_text()) or {}
    return (data.get("stages") or {}).get(stage, {}) or {}
