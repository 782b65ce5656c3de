"""Tracking faults: a dead server fails the stage clearly, leaves no outputs, and no run stays RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from tests.conftest import BIN, Server, demo_project, dvc, free_port, locked_stages, runs_of

from labelcycle import catalog
from labelcycle.errors import TrackingError
from labelcycle.pipeline import run_stage, write_json, write_parquet
from labelcycle.tracking.runs import close_orphaned_runs, configure, stage_run


def test_unreachable_server_fails_the_stage_in_seconds_with_a_clear_message(tmp_path):
    project = demo_project(tmp_path / "proj", n_items=200)
    dead = f"http://127.0.0.1:{free_port()}"
    start = time.time()
    res = dvc(project, "repro", "ingest", env={"MLFLOW_TRACKING_URI": dead})
    assert res.returncode != 0
    assert f"cannot reach the MLflow tracking store at {dead} (connection refused)" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr + res.stdout
    assert time.time() - start < 60  # short retries, not MLflow's minutes-long default
    assert not (project / catalog.ANNOTATIONS).exists()
    assert not (project / catalog.DVC_LOCK).exists()


def test_a_failed_stage_removes_what_it_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import pandas as pd

    def stage():
        write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "out" / "a.parquet")
        write_json({"x": 1}, tmp_path / "reports" / "r.json")
        raise TrackingError("the server went away")

    with pytest.raises(SystemExit) as exit_info:
        run_stage(stage)
    assert exit_info.value.code == 1
    assert not (tmp_path / "out" / "a.parquet").exists() and not (tmp_path / "reports" / "r.json").exists()
    assert "error: the server went away (removed this stage's 2 partial output(s))" in capsys.readouterr().err


def test_sigterm_during_a_stage_run_closes_it_as_failed(tmp_path):
    uri = f"sqlite:///{tmp_path / catalog.MLFLOW_DB}"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from labelcycle.tracking.runs import stage_run
        with stage_run(Path({str(tmp_path)!r}), "demo_stage") as run:
            print(run.run_id, flush=True)
            time.sleep(120)
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    (run,) = runs_of(uri)
    assert run.info.run_id == run_id and run.info.status == "FAILED"
    assert run.data.tags["labelcycle.end_reason"] == "interrupted (SIGTERM)"


def test_a_run_whose_process_was_killed_is_closed_by_the_next_stage(tmp_path):
    uri = f"sqlite:///{tmp_path / catalog.MLFLOW_DB}"
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from labelcycle.tracking.runs import stage_run
        with stage_run(Path({str(tmp_path)!r}), "demo_stage") as run:
            print(run.run_id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    run_id = res.stdout.strip()
    assert runs_of(uri)[0].info.status == "RUNNING"
    os.environ["MLFLOW_TRACKING_URI"] = uri  # the autouse fixture restores it
    configure(tmp_path)  # what every stage does first
    (run,) = runs_of(uri)
    assert run.info.run_id == run_id and run.info.status == "FAILED"
    assert run.data.tags["labelcycle.end_reason"].startswith("orphaned")
    assert close_orphaned_runs(tmp_path, uri) == []


@pytest.mark.slow
def test_server_stopped_mid_stage_fails_clearly_and_a_rerun_completes_once_it_is_back(
    pg_url, tmp_path, monkeypatch
):
    server = Server(pg_url, tmp_path / "artifacts", tmp_path).start()
    project = demo_project(tmp_path / "proj", n_items=300)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    try:
        with (
            pytest.raises(TrackingError, match=r"stage demo: the MLflow tracking store at .* failed mid-run"),
            stage_run(project, "demo") as run,
        ):
            run.log_metrics({"before": 1.0})
            server.stop()
            run.log_metrics({"after": 2.0})
        server.start()
        res = dvc(project, "repro", "train_quality", env={"MLFLOW_TRACKING_URI": server.url})
        assert res.returncode == 0, res.stdout + res.stderr
        runs = runs_of(server.url)
        assert "RUNNING" not in {r.info.status for r in runs}
        (demo_run,) = [r for r in runs if r.data.tags["labelcycle.stage"] == "demo"]
        assert demo_run.info.status == "FAILED" and demo_run.data.metrics == {"before": 1.0}
        finished = {r.data.tags["labelcycle.stage"] for r in runs if r.info.status == "FINISHED"}
        assert finished == locked_stages(project)
    finally:
        server.stop()


@pytest.mark.slow
def test_server_killed_during_dvc_repro_leaves_dvc_consistent(pg_url, tmp_path):
    server = Server(pg_url, tmp_path / "artifacts", tmp_path).start()
    project = demo_project(tmp_path / "proj", n_items=300)
    env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
    try:
        proc = subprocess.Popen(
            [str(BIN / "dvc"), "repro", "train_quality"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.time() + 300
        while time.time() < deadline:  # stop the server as soon as the aggregate stage has opened its run
            if any(r.data.tags.get("labelcycle.stage") == "aggregate" for r in runs_of(server.url)):
                break
            time.sleep(0.2)
        server.stop()
        out = proc.communicate(timeout=300)[0]
        assert proc.returncode != 0
        assert "MLflow tracking store" in out and "Traceback" not in out
        lock = (project / catalog.DVC_LOCK).read_text() if (project / catalog.DVC_LOCK).exists() else ""
        assert "  aggregate:" not in lock and "  train_quality:" not in lock
        assert not (project / catalog.QUALITY_MODEL).exists()
        server.start()
        res = dvc(project, "repro", "train_quality", env={"MLFLOW_TRACKING_URI": server.url})
        assert res.returncode == 0, res.stdout + res.stderr
        assert "RUNNING" not in {r.info.status for r in runs_of(server.url)}
        assert "up to date" in dvc(project, "status", "train_quality").stdout
    finally:
        server.stop()
