"""labelcycle server: a lean MLflow tracking server; the whole pipeline runs against it unchanged."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.conftest import BIN, demo_project, dvc, locked_stages, runs_of

from labelcycle import catalog
from labelcycle.databases import ensure_database
from labelcycle.errors import TrackingError


def test_server_dry_run_prints_the_command(project):
    res = subprocess.run(
        [str(BIN / "labelcycle"), "server", "--dry-run", "--port", "5123"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "mlflow server" in res.stdout and "--port 5123" in res.stdout and "--workers 1" in res.stdout


def test_missing_postgres_database_is_created_once(pg_url):
    assert ensure_database(pg_url) is True
    assert ensure_database(pg_url) is False


def test_unreachable_postgres_says_where_and_what_to_check():
    with pytest.raises(
        TrackingError, match=r"cannot reach PostgreSQL at 127\.0\.0\.1:1 .*is the server running"
    ):
        ensure_database("postgresql://postgres@127.0.0.1:1/labelcycle")


@pytest.mark.slow  # another full pipeline: the default suite runs one in tests/e2e/test_pipeline.py
def test_pipeline_runs_against_a_postgres_backed_server(pg_server, tmp_path):
    project = demo_project(tmp_path / "proj")
    res = dvc(project, "repro", "train_quality", env={"MLFLOW_TRACKING_URI": pg_server.url})
    assert res.returncode == 0, res.stdout + res.stderr
    runs = runs_of(pg_server.url)
    by_stage = {r.data.tags["labelcycle.stage"]: r for r in runs}
    assert set(by_stage) == locked_stages(project) >= {"ingest", "aggregate", "tune", "train_quality"}
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["labelcycle.pipeline_run"] for r in runs}) == 1  # one dvc repro, one group
    train = by_stage["train_quality"]
    assert train.data.tags["train_quality.backend"] == "local"
    assert train.data.metrics["n_train"] > 0 and "valid_multi_logloss" in train.data.metrics
    # sample.fraction is 1.0: train_quality trained on exactly the data set curate made
    assert train.data.tags["curated_digest"] == by_stage["curate"].data.tags["curated_digest"]
    assert {i.dataset.name for i in train.inputs.dataset_inputs} >= {"train_sample", "eval"}
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=pg_server.url)
    version = client.get_model_version("labelcycle-quality", train.data.tags["model.version"])
    assert version.run_id == train.info.run_id
    # artifacts went through the server into its artifacts destination
    assert any((tmp_path / "artifacts").rglob("MLmodel"))
    assert client.list_artifacts(by_stage["aggregate"].info.run_id)


@pytest.mark.slow
def test_two_pipelines_logging_to_one_server_at_once_lose_nothing(pg_server, tmp_path):
    projects = [demo_project(tmp_path / f"p{i}", seed=i) for i in range(2)]
    env = {"MLFLOW_TRACKING_URI": pg_server.url}
    import os

    procs = [
        subprocess.Popen(
            [str(BIN / "dvc"), "repro", "train_quality"],
            cwd=p,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for p in projects
    ]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = runs_of(pg_server.url)
    groups = {}
    for r in runs:
        groups.setdefault(r.data.tags["labelcycle.pipeline_run"], []).append(r)
    assert len(groups) == 2
    for group in groups.values():
        assert {r.data.tags["labelcycle.stage"] for r in group} == locked_stages(projects[0])
        assert len(group) == len(locked_stages(projects[0]))
        assert {r.info.status for r in group} == {"FINISHED"}
        ingest = next(r for r in group if r.data.tags["labelcycle.stage"] == "ingest")
        assert ingest.data.metrics["annotations_read"] == (
            ingest.data.metrics["annotations_kept"]
            + ingest.data.metrics["annotations_merged"]
            + ingest.data.metrics["annotations_repeats"]
            + ingest.data.metrics["annotations_quarantined"]
        )
    import mlflow

    versions = mlflow.MlflowClient(tracking_uri=pg_server.url).search_model_versions(
        "name='labelcycle-quality'"
    )
    assert sorted(int(v.version) for v in versions) == [1, 2]
    # every pipeline's lock names the run that trained its model
    for p in projects:
        import json

        info = json.loads((p / catalog.TRAIN_QUALITY_REPORT).read_text())
        assert info["mlflow_run_id"] in {r.info.run_id for r in runs}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
