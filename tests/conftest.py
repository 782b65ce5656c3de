"""Shared fixtures: tiny tables, a demo data set, and an isolated MLflow store per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# the same examples on every run, so CI is reproducible (explore with --hypothesis-seed=N)
settings.register_profile("labelcycle", derandomize=True)
settings.load_profile("labelcycle")

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# tools installed beside this interpreter (dvc, labelcycle) come first, as with an activated venv
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = Path(os.environ.get("LABELCYCLE_SHARED_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory, monkeypatch):
    """Every test gets its own SQLite MLflow store unless it sets one itself."""
    store = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")


@pytest.fixture
def tiny_annotations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i1", "i1", "i2", "i2", "i3"],
            "annotator_id": ["a", "b", "c", "a", "b", "c"],
            "label": ["ok", "ok", "misleading", "prohibited", "misleading", "ok"],
        }
    )


@pytest.fixture(scope="session")
def small_demo():
    from labelcycle.demo import generate

    return generate(n_items=600, n_annotators=24, seed=3)


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def make_project(path: Path) -> Path:
    """A fresh git + DVC project holding this repository's pipeline (dvc.yaml, params, stages)."""
    import shutil
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, path / name)
    shutil.copytree(REPO_ROOT / "stages", path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    # stage deps name src/labelcycle/...: link the package so the pipeline's code deps resolve
    (path / "src").mkdir()
    (path / "src" / "labelcycle").symlink_to(REPO_ROOT / "src" / "labelcycle")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True, env=env)
    subprocess.run(["dvc", "init", "-q"], cwd=path, check=True, env=env)
    subprocess.run(["dvc", "config", "core.autostage", "true"], cwd=path, check=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True, env=env)
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def project_factory():
    """``make_project`` for fixtures of wider scope than a test."""
    return make_project
