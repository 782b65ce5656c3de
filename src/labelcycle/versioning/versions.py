"""Dataset versions on the DVC/git side: name -> version, and a version's artefacts.

A version is named by the user as one of:

* ``workspace``: the current working tree of the project;
* a folder holding a project's outputs (``reports/predictions.parquet``, ``data/curated/...``);
* a DVC experiment name (``dvc exp run -n NAME`` or the generated name): the experiment's commit;
* a git revision or tag.

MLflow run ids are resolved by :mod:`labelcycle.tracking.versions`. Artefacts at a git revision are
read through DVC's file system (git-tracked files and DVC-cached outputs alike).
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

WORKSPACE = "workspace"

#: what compare reads of a version, by role
ARTEFACTS: dict[str, str] = {
    "labels": "data/curated/labels.parquet",
    "annotations": "data/interim/annotations.parquet",
    "predictions": "reports/predictions.parquet",
    "metrics": "reports/metrics.json",
    "params": "params.yaml",
    "items": "data/interim/items.parquet",
}


@dataclass(frozen=True)
class Version:
    """A resolved version.

    Attributes:
        spec: what the user typed.
        kind: ``workspace``, ``folder``, ``dvc_exp``, ``git`` or ``mlflow_run``.
        rev: the full git commit (git revisions and DVC experiments; for MLflow runs the commit the
            runs were made at, when recorded).
        exp_name: the DVC experiment name, when known.
        pipeline_run: the ``labelcycle.pipeline_run`` tag, when known.
        run_ids: MLflow run id per stage, when known.
        path: the folder read (workspace and folders).
    """

    spec: str
    kind: str
    rev: str | None = None
    exp_name: str | None = None
    pipeline_run: str | None = None
    run_ids: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kind": self.kind,
            "rev": self.rev,
            "exp_name": self.exp_name,
            "pipeline_run": self.pipeline_run,
            "run_ids": dict(self.run_ids),
            "path": str(self.path) if self.path else None,
        }


@dataclass
class VersionData:
    """The artefacts of one version that compare reads (None where the version lacks one)."""

    version: Version
    labels: pd.DataFrame | None = None
    annotations: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def experiment_refs(root: Path) -> dict[str, str]:
    """DVC experiment name -> commit, from the ``refs/exps/<baseline>/<name>`` refs git holds."""
    out = _git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps/")
    refs: dict[str, str] = {}
    for line in (out or "").splitlines():
        ref, _, sha = line.partition(" ")
        parts = ref.split("/")
        if len(parts) == 5 and parts[2] not in ("exec", "celery", "temp", "runs", "stash"):
            refs[parts[4]] = sha
    return refs


def experiment_baseline(root: Path, name: str) -> str | None:
    """The baseline commit of a DVC experiment (from its ref path)."""
    out = _git(root, "for-each-ref", "--format=%(refname)", "refs/exps/")
    for ref in (out or "").splitlines():
        parts = ref.split("/")
        if len(parts) == 5 and parts[4] == name:
            return parts[2] + parts[3]
    return None


def resolve_local(root: Path, spec: str) -> Version | None:
    """Resolve ``workspace``, a folder, a DVC experiment name or a git revision; None when none fits."""
    if spec == WORKSPACE:
        return Version(spec=spec, kind="workspace", rev=_git(root, "rev-parse", "HEAD"), path=root)
    folder = Path(spec)
    if folder.is_dir() and any(
        (folder / rel).exists() for rel in (ARTEFACTS["predictions"], ARTEFACTS["labels"])
    ):
        return Version(spec=spec, kind="folder", path=folder.resolve())
    exps = experiment_refs(root)
    if spec in exps:
        return Version(spec=spec, kind="dvc_exp", rev=exps[spec], exp_name=spec)
    rev = _git(root, "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}")
    if rev:
        return Version(spec=spec, kind="git", rev=rev)
    return None


def _parse(role: str, raw: bytes) -> Any:
    if role == "metrics":
        return json.loads(raw.decode())
    if role == "params":
        return yaml.safe_load(raw.decode()) or {}
    return pd.read_parquet(io.BytesIO(raw))


def load_local(root: Path, version: Version, roles: tuple[str, ...] = tuple(ARTEFACTS)) -> VersionData:
    """Read a local version's artefacts (missing ones stay None / empty)."""
    found: dict[str, Any] = {}
    if version.path is not None:
        for role in roles:
            p = version.path / ARTEFACTS[role]
            if p.is_file():
                found[role] = _parse(role, p.read_bytes())
    else:
        found = _read_at_rev(root, version.rev or version.spec, roles)
    return VersionData(
        version=version,
        labels=found.get("labels"),
        annotations=found.get("annotations"),
        predictions=found.get("predictions"),
        items=found.get("items"),
        metrics=found.get("metrics") or {},
        params=found.get("params") or {},
    )


def _read_at_rev(root: Path, rev: str, roles: tuple[str, ...]) -> dict[str, Any]:
    """Artefacts at a git revision: git-tracked files via git, DVC outputs via DVC's file system."""
    found: dict[str, Any] = {}
    pending = []
    for role in roles:
        try:
            out = subprocess.run(
                ["git", "show", f"{rev}:{ARTEFACTS[role]}"],
                cwd=root,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and not out.stdout.startswith(b"version https://git-lfs"):
            found[role] = _parse(role, out.stdout)
        else:
            pending.append(role)
    if pending:
        from dvc.api import DVCFileSystem

        try:
            fs = DVCFileSystem(str(root), rev=rev, subrepos=False)
        except Exception:  # not a DVC project at that revision: nothing more to read
            return found
        for role in pending:
            try:
                if fs.exists(ARTEFACTS[role]):
                    found[role] = _parse(role, fs.read_bytes(ARTEFACTS[role]))
            except Exception:  # output not in the local cache (never pulled): treated as absent
                continue
    return found


def predictions_md5(root: Path, version: Version) -> str | None:
    """DVC md5 of the version's ``reports/predictions.parquet`` (what its evaluate run tagged), if known."""
    rel = ARTEFACTS["predictions"]
    if version.path is not None:
        from labelcycle.versioning.digest import file_md5

        p = version.path / rel
        return file_md5(p) if p.is_file() else None
    if not version.rev:
        return None
    text = _git(root, "show", f"{version.rev}:dvc.lock")
    if not text:
        return None
    lock = yaml.safe_load(text) or {}
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs", []) or []:
            if out.get("path") == rel and out.get("md5"):
                return str(out["md5"])
    return None
