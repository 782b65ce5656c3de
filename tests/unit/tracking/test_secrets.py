"""Secrets never reach MLflow params/tags or messages; a password in params.yaml is refused (issue 16, 4)."""

from __future__ import annotations

import os

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from tests.conftest import runs_of

from labelcycle.databases import refuse_password
from labelcycle.errors import ConfigError, TrackingError
from labelcycle.tracking import runs
from labelcycle.tracking.runs import configure, stage_run

PG = "postgresql://optuna:hunter2@db.internal:5432/optuna"


def test_stage_params_tags_and_child_runs_are_logged_with_passwords_masked(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELCYCLE_PIPELINE_RUN", raising=False)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    with stage_run(tmp_path, "tune", {"tune": {"storage": PG, "n_trials": 3}}) as run:
        run.set_tags({"storage": PG})
        child = run.log_child("trial-0", {"storage": PG}, {"m": 1.0}, tags={"where": PG})
    (stage,) = [r for r in runs_of(uri) if r.info.run_name == "tune"]
    trial = mlflow.MlflowClient(tracking_uri=uri).get_run(child)
    texts = [
        *stage.data.params.values(),
        *stage.data.tags.values(),
        *trial.data.params.values(),
        *trial.data.tags.values(),
    ]
    assert not any("hunter2" in t for t in texts)
    assert stage.data.params["tune.storage"] == "postgresql://optuna:***@db.internal:5432/optuna"
    assert trial.data.tags["where"] == "postgresql://optuna:***@db.internal:5432/optuna"


def test_cannot_reach_message_masks_the_tracking_uri_password(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://admin:hunter2@127.0.0.1:1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(TrackingError) as err:
        configure(tmp_path)
    assert "hunter2" not in str(err.value) and "http://admin:***@127.0.0.1:1" in str(err.value)


def test_a_password_in_tune_storage_is_refused_saying_where_to_put_it():
    with pytest.raises(ConfigError, match=r"tune\.storage: .*:\*\*\*@.*PGPASSWORD or ~/\.pgpass") as err:
        refuse_password(PG, "tune.storage")
    assert "hunter2" not in str(err.value)
    assert refuse_password("postgresql://optuna@db/optuna", "tune.storage") == "postgresql://optuna@db/optuna"


def test_a_store_failing_mid_run_says_once_what_state_the_run_is_in(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "_end_run", lambda status, reason: False)
    with pytest.raises(TrackingError) as err, stage_run(tmp_path, "demo"):
        raise MlflowException("Connection refused")
    text = str(err.value)
    assert "could not be closed; the next stage that reaches the store marks it FAILED" in text
    assert "is FAILED" not in text and "is marked FAILED" not in text
