"""DVC remote and MLflow artifacts on S3-compatible storage (moto's server mode stands in for S3/MinIO)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import BIN, Server, demo_project, dvc, free_port

from labelcycle import catalog

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")
pytest.importorskip("dvc_s3")

BUCKET = "labelcycle-team"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3(monkeypatch, tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=(tmp_path / "moto.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    proc.terminate()
    proc.wait(timeout=30)


def test_dvc_push_and_pull_through_an_s3_compatible_remote(s3, tmp_path):
    endpoint, client = s3
    project = demo_project(tmp_path / "proj", n_items=100)
    for args in (
        ("remote", "add", "-d", "team", f"s3://{BUCKET}/dvc"),
        ("remote", "modify", "team", "endpointurl", endpoint),
    ):
        assert dvc(project, *args).returncode == 0
    res = dvc(project, "push")
    assert res.returncode == 0, res.stdout + res.stderr
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="dvc/").get("Contents", [])]
    assert keys, "nothing was pushed"
    before = project / "before"
    shutil.copytree(project / "data" / "raw", before)
    shutil.rmtree(project / "data" / "raw")
    shutil.rmtree(project / ".dvc" / "cache")
    res = dvc(project, "pull", catalog.RAW_DVC)
    assert res.returncode == 0, res.stdout + res.stderr
    cmp = filecmp.dircmp(before, project / "data" / "raw")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    assert len(list((project / "data" / "raw").rglob("*.csv"))) == 3


@pytest.mark.slow
def test_mlflow_server_stores_artifacts_in_s3(s3, tmp_path):
    endpoint, client = s3
    server = Server(
        f"sqlite:///{tmp_path / catalog.MLFLOW_DB}",
        f"s3://{BUCKET}/mlflow",
        tmp_path,
        env={"MLFLOW_S3_ENDPOINT_URL": endpoint, **CREDENTIALS},
    ).start()
    try:
        import mlflow

        (tmp_path / "note.txt").write_text("hello")
        mlflow.set_tracking_uri(server.url)
        exp = mlflow.set_experiment("s3-check")
        with mlflow.start_run(experiment_id=exp.experiment_id) as run:
            mlflow.log_artifact(str(tmp_path / "note.txt"))
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/").get("Contents", [])]
        assert any(k.endswith(f"{run.info.run_id}/artifacts/note.txt") for k in keys), keys
        # the client never needed S3 credentials: the server proxies artifacts
        os.environ.pop("AWS_ACCESS_KEY_ID", None)
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="note.txt", dst_path=str(tmp_path / "dl")
        )
        assert Path(local).read_text() == "hello"
    finally:
        server.stop()
