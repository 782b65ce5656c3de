"""Shared fixtures and helpers of every test folder.

Fixtures: an isolated MLflow store per test, tiny tables, a small demo data set, fresh projects
(``project``, ``project_factory``), and PostgreSQL for the team tests (``pg_url``, ``pg_server``).
Helpers, imported with ``from tests.conftest import ...``: running commands (:func:`sh`, :func:`lc`,
:func:`run_cli`, :func:`dvc`), editing params (:func:`set_params`), demo projects (:func:`make_project`,
:func:`demo_project`), a real ``labelcycle server`` (:class:`Server`) and reading runs back (:func:`runs_of`).
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import settings

from labelcycle import catalog

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
#: console scripts (labelcycle, dvc, moto_server) installed beside this interpreter
BIN = Path(sys.executable).parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
PG_BASE = os.environ.get("LABELCYCLE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
#: params.yaml edits that make a demo project train in seconds
SMALL_PARAMS = {
    "n_estimators: 400": "n_estimators: 30",
    "n_jobs: 2": "n_jobs: 1",
    "n_boot: 500": "n_boot: 20",
    "n_trials: 15": "n_trials: 2",
}


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory, monkeypatch):
    """Every test gets its own SQLite MLflow store unless it sets one itself."""
    store = tmp_path_factory.mktemp("mlflow") / catalog.MLFLOW_DB
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    for name in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):  # set in-process by earlier stage runs
        monkeypatch.delenv(name, raising=False)
    if "mlflow" in sys.modules:  # a URI or experiment an earlier test set in this process would win
        sys.modules["mlflow"].set_tracking_uri(f"sqlite:///{store}")
        fluent = sys.modules.get("mlflow.tracking.fluent")
        if fluent is not None and hasattr(fluent, "_active_experiment_id"):
            fluent._active_experiment_id = None  # MLflow keeps the last experiment id per process


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


@pytest.fixture
def project(tmp_path) -> Path:
    return make_project(tmp_path / "proj")


@pytest.fixture(scope="session")
def project_factory():
    """``make_project`` for fixtures of wider scope than a test."""
    return make_project


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database URL (created by whoever uses it first; dropped afterwards)."""
    why = _pg_unreachable()
    if why:
        pytest.skip(
            f"PostgreSQL is not reachable at {PG_BASE} ({why}); the team tests need one "
            "(set LABELCYCLE_TEST_PG_URL)"
        )
    from labelcycle.databases import drop_database

    url = f"{PG_BASE}/lc_test_{uuid.uuid4().hex[:10]}"
    yield url
    drop_database(url)


@pytest.fixture
def pg_server(pg_url, tmp_path):
    """A running ``labelcycle server`` on a fresh PostgreSQL database."""
    server = Server(pg_url, tmp_path / "artifacts", tmp_path).start()
    yield server
    server.stop()


# -- commands ----------------------------------------------------------------------------------------


def sh(
    cwd: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run a command in ``cwd`` (with a git identity); with ``check``, a failure fails the test with its output."""
    res = subprocess.run(
        list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )
    if check:
        assert res.returncode == 0, f"{args} failed:\n{res.stdout}\n{res.stderr}"
    return res


def lc(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """``labelcycle ARGS`` (this interpreter's package) in ``cwd``; see :func:`sh`."""
    return sh(cwd, sys.executable, "-m", "labelcycle.cli", *args, env=env, check=check)


def run_cli(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """``labelcycle ARGS`` whose exit status and output the test checks itself."""
    return lc(cwd, *args, env=env, check=False)


def dvc(
    project: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``dvc ARGS`` in ``project``; the test checks the result."""
    return sh(project, str(BIN / "dvc"), *args, env=env, check=False, timeout=timeout)


# -- projects ----------------------------------------------------------------------------------------


def make_project(path: Path) -> Path:
    """A fresh git + DVC project holding this repository's pipeline (dvc.yaml, params, stages)."""
    import shutil

    path.mkdir(parents=True, exist_ok=True)
    for name in (catalog.DVC_YAML, catalog.PARAMS):
        shutil.copy(REPO_ROOT / name, path / name)
    shutil.copytree(
        REPO_ROOT / catalog.STAGES_DIR,
        path / catalog.STAGES_DIR,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # stage deps name src/labelcycle/...: link the package so the pipeline's code deps resolve
    (path / catalog.SRC_DIR).mkdir()
    (path / catalog.SRC_DIR / "labelcycle").symlink_to(REPO_ROOT / catalog.SRC_DIR / "labelcycle")
    sh(path, "git", "init", "-q", "-b", "main")
    sh(path, "dvc", "init", "-q")
    sh(path, "dvc", "config", "core.autostage", "true")
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "init")
    return path


def set_params(root: Path, **sections: Mapping[str, Any]) -> None:
    """Update ``params.yaml`` section by section; nested mappings (e.g. ``train_error_model.features``) merge."""

    def merge(into: dict, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    path = root / catalog.PARAMS
    params = yaml.safe_load(path.read_text()) or {}
    for name, values in sections.items():
        merge(params.setdefault(name, {}), values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def demo_project(path: Path, n_items: int = 500, seed: int = 0) -> Path:
    """A project with the demo data ingested as one raw batch and small training params."""
    make_project(path)
    params = (path / catalog.PARAMS).read_text()
    for old, new in SMALL_PARAMS.items():
        params = params.replace(old, new)
    (path / catalog.PARAMS).write_text(params)
    return ingest_demo(path, n_items, 16, seed)


def ingest_demo(root: Path, n_items: int, n_annotators: int, seed: int = 0) -> Path:
    """``labelcycle demo`` into ``root/demo`` and ``labelcycle ingest`` of its three files."""
    lc(
        root,
        "demo",
        "--out",
        "demo",
        "--items",
        str(n_items),
        "--annotators",
        str(n_annotators),
        "--seed",
        str(seed),
    )
    lc(
        root,
        "ingest",
        *("--annotations", "demo/annotations.csv", "--items", "demo/items.csv"),
        *("--gold", "demo/gold.csv"),
    )
    return root


def locked_stages(project: Path) -> set[str]:
    """Stages recorded in the project's dvc.lock."""
    lock = project / catalog.DVC_LOCK
    return set((yaml.safe_load(lock.read_text()) or {}).get("stages", {})) if lock.exists() else set()


# -- tracking ------------------------------------------------------------------------------------------


def runs_of(uri: str, experiment: str = "labelcycle") -> list:
    """The stage runs (not tuning trials) of ``experiment`` in the store at ``uri``, any status."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], run_view_type=3, max_results=1000)  # ALL
    return [r for r in runs if "labelcycle.stage" in r.data.tags]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_unreachable() -> str | None:
    """Why PostgreSQL at :data:`PG_BASE` cannot be used, or None when it can."""
    try:
        import psycopg2

        psycopg2.connect(f"{PG_BASE}/postgres", connect_timeout=3).close()
        return None
    except Exception as exc:  # any failure means: no PostgreSQL for these tests
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def stop_process_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM the process group ``proc`` leads (started with ``start_new_session``), SIGKILL it after
    ``timeout`` seconds, and wait for it."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Server:
    """``labelcycle server`` as a user runs it, in its own process group."""

    def __init__(
        self, backend: str, artifacts: Path | str, cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
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
        stop_process_group(self.proc)
        self.proc = None
        for _ in range(40):  # the port is free again before a restart binds it
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.25)


# -- aggregation data ------------------------------------------------------------------------------


def crowd_table(n_items: int = 3000, n_annotators: int = 60, seed: int = 0) -> pd.DataFrame:
    """Annotations of 3 labels per item by annotators of uniform random skill, rows shuffled."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n_items, p=[0.6, 0.3, 0.1])
    item = np.repeat(np.arange(n_items), 3)
    annotator = rng.integers(0, n_annotators, len(item))
    skill = rng.uniform(0.4, 0.95, n_annotators)
    label = np.where(rng.random(len(item)) < skill[annotator], truth[item], rng.integers(0, 3, len(item)))
    order = rng.permutation(len(item))  # rows in no particular order
    return pd.DataFrame(
        {
            "item_id": np.char.add("i", item.astype(str))[order],
            "annotator_id": np.char.add("a", annotator.astype(str))[order],
            "label": np.array(["ok", "misleading", "prohibited"])[label][order],
        }
    )
