"""A new labelcycle project: the pipeline's files for a folder of one's own data (``labelcycle init``).

One source of truth: the files a project gets are made from the package itself, so a project runs with the
installed package alone (no checkout of this repository, no ``PYTHONPATH``):

* ``stages/<name>.py``: :data:`STAGE_FILE` for every stage of ``dvc.yaml`` (the thin file dvc runs; the
  stage's code is ``labelcycle.stages.<name>``);
* ``dvc.yaml``: the repository's own ``dvc.yaml`` (shipped as ``labelcycle/template/dvc.yaml``) less the
  deps under ``src/`` (a project has no ``src/``; its stages rerun when their data or params change, not
  when the installed package changes);
* ``params.yaml``: the repository's own ``params.yaml`` (``labelcycle/template/params.yaml``, the params
  dataclasses' defaults with a comment per key) with ``ingest.labels: []``, the label set left to the
  first ingest;
* ``.gitignore``: the local MLflow and Optuna stores.

A test holds the repository's files equal to what :func:`project_files` writes, these differences aside.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from labelcycle import catalog
from labelcycle.errors import ConfigError, StateError

#: the thin file dvc runs for stage ``{name}``
STAGE_FILE = '''"""DVC entry point of the ``{name}`` stage; its code is ``labelcycle.stages.{name}`` (shipped with the package)."""

from labelcycle.pipeline import run_stage
from labelcycle.stages.{name} import main

if __name__ == "__main__":  # not when a worker process of the stage imports this file again
    run_stage(main)
'''
#: what a project keeps out of git (DVC ignores its own outputs itself)
GITIGNORE = """# labelcycle: local stores (MLflow runs and artifacts, Optuna studies)
mlflow.db
mlflow.db-*
mlartifacts/
mlruns/
optuna.db
__pycache__/
"""
#: the value of the label set in params.yaml (its first ``labels:`` line), and a new project's value
_LABELS_VALUE = re.compile(r"^(?P<key>\s+labels:\s*)\[[^\]]*\]", re.MULTILINE)
NEW_LABELS = "[]"
#: dvc.yaml dep lines naming the package's source (only this repository has them)
_SRC_DEP = re.compile(rf"^\s*- {catalog.SRC_DIR}/.*\n", re.MULTILINE)


def template_text(name: str) -> str:
    """The repository's ``dvc.yaml`` or ``params.yaml`` as the package ships it."""
    return (resources.files("labelcycle") / "template" / name).read_text()


def stage_names(dvc_yaml: str) -> list[str]:
    """The stages of a ``dvc.yaml`` text, in pipeline order."""
    return list((yaml.safe_load(dvc_yaml) or {}).get("stages", {}))


def project_dvc_yaml(repo_text: str) -> str:
    """The repository's ``dvc.yaml`` without the deps under ``src/``."""
    return _SRC_DEP.sub("", repo_text)


def project_params_yaml(repo_text: str) -> str:
    """The repository's ``params.yaml`` with ``ingest.labels: []`` (its first ``labels:`` line)."""
    new, n = _LABELS_VALUE.subn(lambda m: m["key"] + NEW_LABELS, repo_text, count=1)
    if n != 1:  # pragma: no cover - a packaging fault, caught by the tests
        raise StateError("the packaged params.yaml has no `labels: [...]` line; reinstall labelcycle")
    return new


def project_files() -> dict[str, str]:
    """Every file a new project gets, by its path relative to the project root."""
    dvc_yaml = template_text(catalog.DVC_YAML)
    files = {
        catalog.DVC_YAML: project_dvc_yaml(dvc_yaml),
        catalog.PARAMS: project_params_yaml(template_text(catalog.PARAMS)),
        ".gitignore": GITIGNORE,
    }
    for name in stage_names(dvc_yaml):
        files[f"{catalog.STAGES_DIR}/{name}.py"] = STAGE_FILE.format(name=name)
    return files


def _run(root: Path, *args: str) -> str:
    try:
        res = subprocess.run(list(args), cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise StateError(f"`{args[0]}` is not installed or not on PATH; install it, then rerun") from None
    if res.returncode != 0:
        what = " ".join(a for a in args if not a.startswith("-c"))
        raise StateError(f"{root}: `{what}` failed: {(res.stderr or res.stdout).strip()[-500:]}")
    return res.stdout


def _git_identity(root: Path) -> list[str]:
    """``-c user.name=... -c user.email=...`` when git has no identity configured (else nothing)."""
    res = subprocess.run(["git", "config", "user.email"], cwd=root, capture_output=True, text=True)
    if res.returncode == 0 and res.stdout.strip():
        return []
    return ["-c", "user.name=labelcycle init", "-c", "user.email=labelcycle@localhost"]


def init_project(root: Path, force: bool = False) -> list[str]:
    """Create a project in ``root``: the pipeline's files, a git repository, DVC with its cache in
    ``.dvc/cache``, and a first commit. Returns the files written.

    Raises:
        ConfigError: ``root`` exists and is not empty (and not ``force``), or is not a folder.
    """
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: exists and is not a folder; name a new folder for the project")
    if root.exists() and any(root.iterdir()) and not force:
        raise ConfigError(
            f"{root}: the folder is not empty; name a new or empty folder, or pass --force to write the "
            "project's files into it (dvc.yaml, params.yaml, stages/ and .gitignore are overwritten)"
        )
    root.mkdir(parents=True, exist_ok=True)
    files = project_files()
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not (root / ".git").exists():
        _run(root, "git", "init", "-q")
    if not (root / ".dvc").exists():
        _run(root, sys.executable, "-m", "dvc", "init", "-q")
    _run(root, sys.executable, "-m", "dvc", "config", "core.autostage", "true")
    _run(root, "git", "add", *files, ".dvc")
    staged = _run(root, "git", "diff", "--cached", "--name-only")
    if staged.strip():
        _run(root, "git", *_git_identity(root), "commit", "-q", "-m", "labelcycle init: a new project")
    return list(files)
