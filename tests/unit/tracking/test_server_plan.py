"""labelcycle server's plan: a lean MLflow tracking server (computed; no process is started here)."""

from __future__ import annotations

from labelcycle import catalog
from labelcycle.tracking.server import plan_server


def test_server_defaults_to_localhost_one_worker_no_jobs_and_the_project_sqlite(tmp_path):
    plan = plan_server(tmp_path)
    cmd = plan.command
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--workers") + 1] == "1"
    assert cmd[cmd.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path.resolve() / catalog.MLFLOW_DB}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path.resolve() / catalog.MLARTIFACTS)
    assert plan.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert not plan.needs_database


def test_a_postgres_backend_is_spelled_postgresql_for_mlflow_and_needs_its_database(tmp_path):
    plan = plan_server(tmp_path, "postgres://u@h:5432/db")
    assert plan.backend_store_uri == "postgresql://u@h:5432/db"
    assert plan.command[plan.command.index("--backend-store-uri") + 1] == "postgresql://u@h:5432/db"
    assert plan.needs_database
