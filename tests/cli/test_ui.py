"""`labelcycle ui`: a lean MLflow UI on the project's store, opened on the project experiment's runs table."""

from __future__ import annotations

import mlflow
from click.testing import CliRunner

from labelcycle import catalog
from labelcycle.cli import main


def test_ui_dry_run_prints_a_lean_server_command_and_the_runs_table_url(tmp_path, monkeypatch):
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    res = CliRunner().invoke(main, ["ui", "--dry-run", "--port", "5123"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    command, url = res.stdout.strip().splitlines()[-2:]
    # the backend reaches MLflow through the environment, so argv never holds a password
    assert f"MLFLOW_BACKEND_STORE_URI=sqlite:///{tmp_path / catalog.MLFLOW_DB}" in command
    assert "--host 127.0.0.1" in command and "--port 5123" in command and "--workers 1" in command
    exp = mlflow.MlflowClient(f"sqlite:///{tmp_path / catalog.MLFLOW_DB}").get_experiment_by_name(
        "labelcycle"
    )
    assert url == f"http://127.0.0.1:5123/#/experiments/{exp.experiment_id}/runs"
