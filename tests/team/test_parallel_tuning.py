"""Parallel Optuna tuning: workers share one study on PostgreSQL; a killed worker does not stop it."""

from __future__ import annotations

import signal
import subprocess
import time

import optuna
import pytest
from tests.conftest import BIN, demo_project, dvc

from labelcycle import catalog


def _prepared_project(tmp_path, n_items=400, rounds=30):
    project = demo_project(tmp_path / "proj", n_items=n_items)
    params = (project / catalog.PARAMS).read_text().replace("n_estimators: 30", f"n_estimators: {rounds}")
    (project / catalog.PARAMS).write_text(params)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / catalog.MLFLOW_DB}"}
    res = dvc(project, "repro", "sample", "split", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    return project


def _worker_default(project, *args):
    return subprocess.Popen(
        [str(BIN / "labelcycle"), "tune-worker", *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _worker(project, storage, *args):
    return subprocess.Popen(
        [str(BIN / "labelcycle"), "tune-worker", "--study", "quality", "--storage", storage, *args],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_tune_worker_outside_a_prepared_project_says_what_to_run(project):
    res = subprocess.run(
        [str(BIN / "labelcycle"), "tune-worker", "--storage", "sqlite:///o.db"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "train_sample.parquet: missing; run the upstream stage first" in res.stderr


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgres(pg_url, tmp_path):
    project = _prepared_project(tmp_path)
    workers = [_worker(project, pg_url, "--total-trials", "6", "--seed", str(i)) for i in range(2)]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    study = optuna.load_study(study_name="quality", storage=pg_url)
    finished = [
        t
        for t in study.trials
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    assert 6 <= len(finished) <= 7  # the last trial of the other worker may finish after the stop
    assert len({t.number for t in complete}) == len(complete)
    assert "dvc exp run -S train_quality." in outs[0] + outs[1]
    assert all(t.user_attrs["best_iteration"] >= 1 for t in complete)


@pytest.mark.slow
def test_workers_fill_the_tune_stage_study_and_train_quality_uses_its_best(pg_url, tmp_path):
    project = _prepared_project(tmp_path)
    params = (project / catalog.PARAMS).read_text().replace("  storage: null", f"  storage: {pg_url}")
    (project / catalog.PARAMS).write_text(params.replace("n_trials: 2", "n_trials: 4"))
    workers = [_worker_default(project, "--seed", str(i)) for i in range(2)]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs
    res = dvc(
        project,
        "repro",
        "train_quality",
        env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / catalog.MLFLOW_DB}"},
    )
    assert res.returncode == 0, res.stdout + res.stderr
    import json

    best = json.loads((project / catalog.BEST_PARAMS).read_text())
    (study_name,) = optuna.get_all_study_names(pg_url)
    study = optuna.load_study(study_name=study_name, storage=pg_url)
    assert best["study"] == study_name and best["params"] == study.best_params
    assert 4 <= best["n_complete"] + best["n_pruned"] <= 5  # the stage ran no further trials


@pytest.mark.slow
def test_a_killed_worker_does_not_stop_the_study(pg_url, tmp_path):
    # long trials so the kill lands inside one; a short heartbeat so the survivor notices quickly
    project = _prepared_project(tmp_path, rounds=3000)
    params = (
        (project / catalog.PARAMS)
        .read_text()
        .replace("early_stopping_rounds: 30", "early_stopping_rounds: 3000")
    )
    (project / catalog.PARAMS).write_text(params)
    victim = _worker(project, pg_url, "--n-trials", "5", "--heartbeat", "1", "--grace", "2")
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            study = optuna.load_study(study_name="quality", storage=pg_url)
            if any(t.state == optuna.trial.TrialState.RUNNING for t in study.trials):
                break
        except Exception:  # neither the database nor the study exists yet
            pass
        time.sleep(0.3)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    study = optuna.load_study(study_name="quality", storage=pg_url)
    assert [t.state for t in study.trials].count(optuna.trial.TrialState.RUNNING) == 1, study.trials
    time.sleep(3.5)  # heartbeat + grace have passed
    survivor = _worker(project, pg_url, "--n-trials", "1", "--heartbeat", "1", "--grace", "2")
    out = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, out
    study = optuna.load_study(study_name="quality", storage=pg_url)
    states = [t.state for t in study.trials]
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == 1 and optuna.trial.TrialState.RUNNING not in states
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == failed[0].number]
    # the retry re-uses every param the dead trial had drawn (it may have been killed before drawing all)
    assert len(retried) == 1 and failed[0].params.items() <= retried[0].params.items()
    assert optuna.trial.TrialState.COMPLETE in states
