"""A project made by `labelcycle init` runs the real pipeline with the installed package alone (no
checkout, no ``PYTHONPATH`` beyond the package): first without gold (no evaluation, no candidate, promote
refuses), then with gold (evaluated, registered)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from tests.conftest import BIN, SMALL_PARAMS, sh

import labelcycle
from labelcycle import catalog

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: where the installed package is imported from, and nothing else (not the repository's root)
PACKAGE_PATH = str(Path(labelcycle.__file__).resolve().parents[1])


def _env(uri: str) -> dict[str, str]:
    return {
        "PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "PYTHONPATH": PACKAGE_PATH,
        "MLFLOW_TRACKING_URI": uri,
    }


def _lc(root: Path, env: dict[str, str], *args: str, check: bool = True):
    return sh(root, sys.executable, "-m", "labelcycle.cli", *args, env=env, check=check)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """``labelcycle init``, the demo's annotations and items (no gold), ``dvc repro``."""
    base = tmp_path_factory.mktemp("new")
    root = base / "myproject"
    uri = f"sqlite:///{base / catalog.MLFLOW_DB}"
    env = _env(uri)
    _lc(base, env, "init", "myproject")
    params = (root / catalog.PARAMS).read_text()
    for old, new in SMALL_PARAMS.items():
        params = params.replace(old, new)
    (root / catalog.PARAMS).write_text(params)
    _lc(root, env, "demo", "--out", str(base / "demo"), "--items", "300", "--annotators", "12", "--seed", "4")
    first = _lc(
        root,
        env,
        *("ingest", "--annotations", str(base / "demo/annotations.csv"), "--items"),
        str(base / "demo/items.csv"),
    )
    assert "labels" in first.stdout  # discovered by the first ingest and written into params.yaml
    repro = sh(root, str(BIN / "dvc"), "repro", env=env, check=False, timeout=900)
    return root, base, uri, env, repro


def test_dvc_repro_passes_in_a_project_made_by_init_with_only_the_installed_package(fresh):
    root, _, _, _, repro = fresh
    labels = yaml.safe_load((root / catalog.PARAMS).read_text())["ingest"]["labels"]
    assert sorted(labels) == ["misleading", "ok", "prohibited"]  # discovered, none named by hand
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    assert not (root / catalog.SRC_DIR).exists()
    assert "Traceback" not in repro.stderr


def test_without_gold_split_and_evaluate_say_there_is_no_evaluation_and_what_to_do(fresh):
    root, *_, repro = fresh
    for stage in ("split", "evaluate"):
        line = next(x for x in repro.stdout.splitlines() if x.startswith(f"{stage}: no evaluation"))
        assert "labelcycle ingest --gold" in line and "review import FILE --as-gold" in line
    metrics = json.loads((root / catalog.METRICS).read_text())
    assert metrics["evaluated"] is False and metrics["eval_items"] == 0
    assert "no gold labels yet" in metrics["reason"]


def test_without_gold_no_model_version_is_registered(fresh):
    root, _, uri, *_ = fresh
    report = json.loads((root / catalog.TRAIN_QUALITY_REPORT).read_text())
    assert report["model_version"] is None and "no evaluation" in report["not_registered"]
    assert mlflow.MlflowClient(tracking_uri=uri).search_model_versions() == []


def test_without_gold_promote_refuses_with_the_reason(fresh):
    root, _, _, env, _ = fresh
    res = _lc(root, env, "promote", check=False)
    assert res.returncode == 3
    assert "promotion refused" in res.stderr and "no gold labels yet" in res.stderr
    assert "Traceback" not in res.stderr


def test_adding_gold_later_gives_an_evaluation_and_a_registered_candidate(fresh):
    root, base, uri, env, _ = fresh
    _lc(root, env, "ingest", "--gold", str(base / "demo/gold.csv"))  # a gold-only batch
    repro = sh(root, str(BIN / "dvc"), "repro", env=env, check=False, timeout=900)
    assert repro.returncode == 0, repro.stdout[-3000:] + repro.stderr[-3000:]
    metrics = json.loads((root / catalog.METRICS).read_text())
    assert metrics["eval_items"] > 0 and "evaluated" not in metrics
    versions = mlflow.MlflowClient(tracking_uri=uri).search_model_versions()
    assert len(versions) == 1
