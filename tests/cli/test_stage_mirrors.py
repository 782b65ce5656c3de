"""CLI commands that mirror a stage use the project's params inside a project and the defaults outside one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from labelcycle import params as params_mod
from labelcycle.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"
ANN = (
    "item_id,annotator_id,label\ni1,a,ok\ni1,b,ok\ni1,c,misleading\ni2,a,prohibited\ni2,b,prohibited\n"
    "i3,c,ok\n"
)


def set_params(root: Path, **sections: dict) -> None:
    """Update params.yaml sections (nested mappings merged key by key)."""

    def merge(into: dict, new: dict) -> None:
        for k, v in new.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = v

    data = yaml.safe_load((root / "params.yaml").read_text())
    merge(data, sections)
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def detect_spy(monkeypatch):
    """Records the params `labelcycle errors` passes to the error model (and runs the real model)."""
    from labelcycle.detection import model

    seen: list = []
    real = model.detect_label_errors

    def spy(*args, **kwargs):
        seen.append(kwargs.get("params"))
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "detect_label_errors", spy)
    return seen


# --- errors -------------------------------------------------------------------------------------------


def test_errors_inside_a_project_uses_the_projects_error_model_params(project, monkeypatch, detect_spy):
    set_params(
        project,
        aggregate={"method": "majority_vote"},
        train_error_model={"n_estimators": 7, "threshold": 0.3, "features": {"n_folds": 3}},
    )
    (project / "a.csv").write_text(ANN)
    monkeypatch.chdir(project)

    res = invoke("errors", "a.csv", "-o", "e.csv")

    assert res.exit_code == 0, res.output
    expected = params_mod.load(project).error_model
    assert detect_spy == [expected]
    assert expected.features.aggregator == "majority_vote" and expected.n_estimators == 7
    assert "(score >= 0.3)" in res.stdout


def test_errors_outside_a_project_uses_the_dataclass_defaults(tmp_path, monkeypatch, detect_spy):
    (tmp_path / "a.csv").write_text(ANN)
    monkeypatch.chdir(tmp_path)

    res = invoke("errors", "a.csv", "--labels", "ok,misleading,prohibited", "-o", "e.csv")

    assert res.exit_code == 0, res.output
    assert detect_spy == [params_mod.Params().error_model]
    assert f"(score >= {params_mod.ErrorModelParams().threshold})" in res.stdout


def test_errors_method_and_threshold_options_override_the_projects_params(project, monkeypatch, detect_spy):
    set_params(project, train_error_model={"n_estimators": 7, "threshold": 0.3})
    (project / "a.csv").write_text(ANN)
    monkeypatch.chdir(project)

    res = invoke("errors", "a.csv", "-o", "e.csv", "--method", "one_coin_dawid_skene", "--threshold", "0.9")

    assert res.exit_code == 0, res.output
    (used,) = detect_spy
    project_params = params_mod.load(project).error_model
    assert used.features.aggregator == "one_coin_dawid_skene" and used.threshold == 0.9
    assert used.n_estimators == project_params.n_estimators == 7
    assert used.features.n_folds == project_params.features.n_folds


# --- aggregate and annotators ---------------------------------------------------------------------


def test_aggregate_inside_a_project_uses_the_projects_method_and_label_set(project, monkeypatch):
    set_params(
        project,
        aggregate={"method": "majority_vote"},
        ingest={"labels": ["ok", "misleading", "prohibited", "spam"]},
    )
    (project / "a.csv").write_text(ANN)
    monkeypatch.chdir(project)

    res = invoke("aggregate", "a.csv", "-o", "out.csv")

    assert res.exit_code == 0, res.output
    assert "by majority_vote" in res.stdout
    out = pd.read_csv(project / "out.csv")
    assert [c for c in out.columns if c.startswith("proba_")] == [
        "proba_ok",
        "proba_misleading",
        "proba_prohibited",
        "proba_spam",
    ]


def test_aggregate_outside_a_project_uses_the_default_method(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text(ANN)
    monkeypatch.chdir(tmp_path)

    res = invoke("aggregate", "a.csv", "-o", "out.csv")

    assert res.exit_code == 0, res.output
    assert f"by {params_mod.AggregateParams().method}" in res.stdout


def test_annotators_inside_a_project_uses_the_projects_method(project, monkeypatch):
    set_params(project, aggregate={"method": "majority_vote"})
    (project / "a.csv").write_text(ANN)
    monkeypatch.chdir(project)

    res = invoke("annotators", "a.csv")

    assert res.exit_code == 0, res.output
    assert "(consensus: majority_vote)" in res.stdout


# --- compare ------------------------------------------------------------------------------------------


def _predictions(n: int, seed: int) -> pd.DataFrame:
    classes = ["ok", "misleading", "prohibited"]
    rng = np.random.default_rng(seed)
    gold = np.asarray(classes)[np.arange(n) % 3]
    pred = np.where(rng.random(n) < 0.7, np.arange(n) % 3, (np.arange(n) + 1) % 3)
    frame = pd.DataFrame(
        {"item_id": [f"e{i}" for i in range(n)], "gold_label": gold, "label": np.asarray(classes)[pred]}
    )
    for j, c in enumerate(classes):
        frame[f"proba_{c}"] = np.where(pred == j, 0.7, 0.15)
    return frame


def _folder_version(folder: Path, seed: int) -> None:
    (folder / "reports").mkdir(parents=True)
    _predictions(90, seed).to_parquet(folder / "reports/predictions.parquet", index=False)
    (folder / "reports/metrics.json").write_text(json.dumps({"eval_digest": "d1"}))


def test_compare_verdict_metric_defaults_to_the_projects_primary_metric(project, monkeypatch):
    set_params(project, evaluate={"primary_metric": "accuracy"})
    _folder_version(project / "a", 0)
    _folder_version(project / "b", 1)
    monkeypatch.chdir(project)

    res = invoke("compare", "a", "b", "--json", "--no-log", "--n-boot", "20", "--n-boot-auc", "10")

    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["primary_metric"] == "accuracy"


def test_compare_verdict_metric_outside_a_project_is_the_default(tmp_path, monkeypatch):
    _folder_version(tmp_path / "a", 0)
    _folder_version(tmp_path / "b", 1)
    monkeypatch.chdir(tmp_path)

    res = invoke("compare", "a", "b", "--json", "--no-log", "--n-boot", "20", "--n-boot-auc", "10")

    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["primary_metric"] == params_mod.EvaluateParams().primary_metric


# --- tune-worker --------------------------------------------------------------------------------------


def _curated(project: Path, n: int = 240) -> None:
    rng = np.random.default_rng(0)
    labels = np.asarray(["ok", "misleading", "prohibited"])[rng.integers(0, 3, n)]
    dataset = pd.DataFrame(
        {
            "item_id": [f"i{i:04d}" for i in range(n)],
            "price": rng.normal(size=n) + (labels == "prohibited"),
            "length": rng.normal(size=n) + (labels == "misleading"),
            "label": labels,
            "confidence": rng.uniform(0.5, 1.0, n),
            "n_annotations": rng.integers(1, 5, n),
        }
    )
    (project / "data/curated").mkdir(parents=True)
    (project / "data/split").mkdir(parents=True)
    dataset.to_parquet(project / "data/curated/dataset.parquet", index=False)
    eval_ids = dataset["item_id"].iloc[::4]
    pd.DataFrame({"item_id": eval_ids, "label": dataset["label"].iloc[::4]}).to_parquet(
        project / "data/split/eval.parquet", index=False
    )


def _stage(project: Path, name: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(
        [sys.executable, f"stages/{name}.py"], cwd=project, capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_tune_worker_joins_the_study_the_tune_stage_opens_when_sample_fraction_is_half(project):
    import optuna

    set_params(
        project,
        sample={"fraction": 0.5},
        tune={"n_trials": 1, "n_estimators": 20, "timeout": None, "n_jobs": 1},
    )
    _curated(project)
    _stage(project, "sample")
    _stage(project, "tune")
    stage_study = json.loads((project / "reports/best_params.json").read_text())["study"]

    res = invoke("tune-worker", "--repo", str(project), "--n-trials", "1")

    assert res.exit_code == 0, res.output
    worker_study = re.search(r"tune-worker: study (\S+) on ", res.stdout).group(1)
    assert worker_study == stage_study
    study = optuna.load_study(study_name=stage_study, storage=f"sqlite:///{project / 'optuna.db'}")
    assert len(study.trials) == 2  # the stage's trial and the worker's, in one study
