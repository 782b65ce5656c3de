"""Team fixtures: a real MLflow server on PostgreSQL (own database per test), demo projects, free ports.

PostgreSQL comes from ``LABELCYCLE_TEST_PG_URL`` (default postgresql://postgres@127.0.0.1:5432); tests
that need it skip with a message saying so when it cannot be reached.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest


def _root_conftest():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "labelcycle_root_conftest", Path(__file__).parents[1] / "conftest.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_project = _root_conftest().make_project

PG_BASE = os.environ.get("LABELCYCLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
BIN = Path(sys.executable).parent
SMALL_PARAMS = {
    "n_estimators: 400": "n_estimators: 30",
    "n_jobs: 2": "n_jobs: 1",
    "n_boot: 500": "n_boot: 20",
    "n_trials: 15": "n_trials: 2",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_reachable() -> str | None:
    try:
        import psycopg2

        psycopg2.connect(f"{PG_BASE}/postgres", connect_timeout=3).close()
        return None
    except Exception as exc:  # any failure means: no PostgreSQL for these tests
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def pg_url_fixture():
    """A fresh PostgreSQL database URL (created by whoever uses it first; dropped afterwards)."""
    why = _pg_reachable()
    if why:
        pytest.skip(
            f"PostgreSQL is not reachable at {PG_BASE} ({why}); the team tests need one "
            "(set LABELCYCLE_TEST_PG_URL)"
        )
    from labelcycle.databases import drop_database

    url = f"{PG_BASE}/lc_test_{uuid.uuid4().hex[:10]}"
    yield url
    drop_database(url)


class Server:
    """``labelcycle server`` as a user runs it, in its own process group."""

    def __init__(self, backend: str, artifacts: Path | str, cwd: Path, env: dict | None = None) -> None:
        self.backend, self.artifacts, self.cwd = backend, str(artifacts), cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = cwd / f"server-{self.port}.log"

    def start(self, timeout: float = 90) -> Server:
        cmd = [
            str(BIN / "labelcycle"),
            "server",
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            self.artifacts,
            "--port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"server not up after {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        for _ in range(40):  # the port is free again before a restart binds it
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.25)


def pg_server_fixture(pg_url, tmp_path):
    server = Server(pg_url, tmp_path / "artifacts", tmp_path).start()
    yield server
    server.stop()


def demo_project(path: Path, n_items: int = 500, seed: int = 0) -> Path:
    """A project with the demo data ingested as one raw batch and small training params."""
    make_project(path)
    params = (path / "params.yaml").read_text()
    for old, new in SMALL_PARAMS.items():
        params = params.replace(old, new)
    (path / "params.yaml").write_text(params)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for args in (
        ["demo", "--out", "demo", "--items", str(n_items), "--annotators", "16", "--seed", str(seed)],
        [
            "ingest",
            "--annotations",
            "demo/annotations.csv",
            "--items",
            "demo/items.csv",
            "--gold",
            "demo/gold.csv",
        ],
    ):
        res = subprocess.run(
            [str(BIN / "labelcycle"), *args], cwd=path, env=env, capture_output=True, text=True
        )
        assert res.returncode == 0, res.stderr
    return path


def dvc(
    project: Path, *args: str, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dvc"), *args],
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def locked_stages(project: Path) -> set[str]:
    """Stages recorded in the project's dvc.lock."""
    import yaml

    lock = project / "dvc.lock"
    return set((yaml.safe_load(lock.read_text()) or {}).get("stages", {})) if lock.exists() else set()


def runs_of(uri: str, experiment: str = "labelcycle"):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], run_view_type=3, max_results=1000)  # ALL
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]  # stage runs, not tuning trials
