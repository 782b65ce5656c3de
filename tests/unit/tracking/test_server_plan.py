"""labelcycle server's plan: a lean MLflow tracking server (computed; no process is started here)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from labelcycle import catalog
from labelcycle.cli.team import server
from labelcycle.errors import ConfigError
from labelcycle.tracking import server as server_mod
from labelcycle.tracking.server import ADMIN_PASSWORD_ENV, BACKEND_ENV, SECRET_KEY_ENV, plan_server


@pytest.fixture(autouse=True)
def _no_admin_password(monkeypatch):
    monkeypatch.delenv(ADMIN_PASSWORD_ENV, raising=False)
    monkeypatch.setattr(server_mod, "auth_available", lambda: True)


def test_auth_without_mlflows_auth_extra_is_refused_saying_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, "pw")
    monkeypatch.setattr(server_mod, "auth_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'mlflow\[auth\]'"):
        plan_server(tmp_path, host="0.0.0.0")


def test_server_defaults_to_localhost_one_worker_no_jobs_no_auth_and_the_project_sqlite(tmp_path):
    plan = plan_server(tmp_path)
    cmd = plan.command
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--workers") + 1] == "1"
    assert plan.env[BACKEND_ENV] == f"sqlite:///{tmp_path.resolve() / catalog.MLFLOW_DB}"
    assert cmd[cmd.index("--artifacts-destination") + 1] == str(tmp_path.resolve() / catalog.MLARTIFACTS)
    assert plan.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert not plan.needs_database and not plan.auth and "--app-name" not in cmd


def test_a_postgres_backend_is_spelled_postgresql_for_mlflow_and_needs_its_database(tmp_path):
    plan = plan_server(tmp_path, "postgres://u@h:5432/db")
    assert plan.backend_store_uri == "postgresql://u@h:5432/db"
    assert plan.env[BACKEND_ENV] == "postgresql://u@h:5432/db"
    assert plan.needs_database


def test_the_backend_uri_with_its_password_reaches_the_child_by_environment_never_argv(tmp_path):
    plan = plan_server(tmp_path, "postgresql://u:s3cret@h:5432/db")
    assert plan.env[BACKEND_ENV] == "postgresql://u:s3cret@h:5432/db"
    assert not any("s3cret" in arg for arg in plan.command)
    assert "--backend-store-uri" not in plan.command
    assert "s3cret" not in plan.shown() and "postgresql://u:***@h:5432/db" in plan.shown()


def test_beyond_loopback_auth_is_on_by_default_with_the_admin_password_from_the_environment(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, "adm1n-pw")
    plan = plan_server(tmp_path, host="0.0.0.0", allowed_hosts="mlflow.lan", cors_allowed_origins="https://x")
    cmd = plan.command
    assert plan.auth and cmd[cmd.index("--app-name") + 1] == "basic-auth"
    assert not any("adm1n-pw" in arg for arg in cmd) and "adm1n-pw" not in plan.shown()
    ini, text = plan.auth_config
    assert plan.env["MLFLOW_AUTH_CONFIG_PATH"] == str(ini.resolve()) and "adm1n-pw" not in text
    assert "admin_username = admin" in text and "database_uri = sqlite:///" in text
    assert cmd[cmd.index("--allowed-hosts") + 1] == "mlflow.lan"
    assert cmd[cmd.index("--cors-allowed-origins") + 1] == "https://x"


def test_auth_gets_a_csrf_secret_key_kept_in_the_projects_state_and_reused_by_the_next_start(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, "adm1n-pw")
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    first = plan_server(tmp_path, host="0.0.0.0")
    key_file, key = first.secret_key
    assert first.env[SECRET_KEY_ENV] == key and len(key) >= 32 and key not in first.shown()
    assert key_file.parent == catalog.state_dir(tmp_path) / "server" and not key_file.exists()  # planned only
    key_file.parent.mkdir(parents=True)
    key_file.write_text(key + "\n")
    second = plan_server(tmp_path, host="0.0.0.0")
    assert second.secret_key is None and second.env[SECRET_KEY_ENV] == key
    monkeypatch.setenv(SECRET_KEY_ENV, "team-wide-key")
    assert plan_server(tmp_path, host="0.0.0.0").env[SECRET_KEY_ENV] == "team-wide-key"


def test_beyond_loopback_without_an_admin_password_is_refused_saying_where_to_put_it(tmp_path):
    with pytest.raises(ConfigError, match=r"set MLFLOW_AUTH_ADMIN_PASSWORD or pass --admin-password-file"):
        plan_server(tmp_path, host="0.0.0.0")


def test_auth_off_beyond_loopback_is_refused_unless_insecure_no_auth_is_explicit(tmp_path):
    with pytest.raises(ConfigError, match=r"--insecure-no-auth"):
        plan_server(tmp_path, host="0.0.0.0", auth=False)
    plan = plan_server(tmp_path, host="0.0.0.0", insecure_no_auth=True)
    assert not plan.auth and "--app-name" not in plan.command


def test_cli_refuses_0_0_0_0_without_auth_in_one_error_line(tmp_path):
    res = CliRunner().invoke(
        server,
        [
            "--host",
            "0.0.0.0",
            "--repo",
            str(tmp_path),
            "--dry-run",
            "--backend-store-uri",
            "sqlite:///x.db",
            "--artifacts-destination",
            "a",
        ],
    )
    assert res.exit_code != 0 and "MLFLOW_AUTH_ADMIN_PASSWORD" in str(res.exception or res.output)


def test_cli_insecure_no_auth_warns_and_dry_run_masks_the_backend_password(tmp_path):
    res = CliRunner().invoke(
        server,
        [
            "--host",
            "0.0.0.0",
            "--insecure-no-auth",
            "--dry-run",
            "--repo",
            str(tmp_path),
            "--artifacts-destination",
            "a",
            "--backend-store-uri",
            "postgresql://u:s3cret@h/db",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "s3cret" not in res.output and "u:***@h/db" in res.output
    assert "NO authentication" in res.output


def test_cli_admin_password_file_turns_auth_on_and_stays_out_of_the_dry_run(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("from-a-file\n")
    res = CliRunner().invoke(
        server,
        [
            "--host",
            "10.0.0.5",
            "--admin-password-file",
            str(pw),
            "--dry-run",
            "--repo",
            str(tmp_path),
            "--artifacts-destination",
            "a",
            "--backend-store-uri",
            "sqlite:///x.db",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "--app-name basic-auth" in res.output and "from-a-file" not in res.output
