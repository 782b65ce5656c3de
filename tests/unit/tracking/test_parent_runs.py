"""One parent MLflow run per dataset version: stage runs nested under it, the version's facts on it."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from tests.conftest import REPO_ROOT, set_params, sh

from labelcycle import catalog
from labelcycle.tracking import parents
from labelcycle.tracking.runs import stage_run
from labelcycle.tracking.versions import pipeline_versions, resolve_version
from labelcycle.versioning.lineage import combined_digest

CURATED, SAMPLE, EVAL = "c" * 32, "5" * 32, "e" * 32


def light_project(root: Path) -> Path:
    """A git project with this repository's dvc.yaml and params.yaml, and a .dvc folder (no `dvc init`:
    nothing here runs DVC)."""
    (root / ".dvc").mkdir(parents=True)
    for name in (catalog.DVC_YAML, catalog.PARAMS):
        shutil.copy(REPO_ROOT / name, root / name)
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "init")
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One project and MLflow store for the module (creating a store takes seconds); the project's
    params differ from its commit in aggregate.method, and it holds every report a version's facts need."""
    root = light_project(tmp_path_factory.mktemp("parents") / "proj")
    set_params(root, aggregate={"method": "majority_vote"})
    cat = catalog.Catalog(root)
    cat.path(catalog.REPORTS).mkdir(exist_ok=True)
    reports = {
        catalog.INGEST_REPORT: {"batches": ["b2", "b1"], "tables": {"annotations": {"read": 100}}},
        catalog.SPLIT_REPORT: {"eval_digest": EVAL, "eval_items": 40, "gold_train_items": 10},
        catalog.CURATE_REPORT: {"curated_digest": CURATED, "action": "relabel", "items_after": 3},
        catalog.SAMPLE_REPORT: {
            "curated_digest": CURATED,
            "sample_digest": SAMPLE,
            "items_in": 3,
            "items_out": 2,
        },
        catalog.METRICS: {
            "accuracy": 0.8,
            "macro_f1": 0.7,
            "ci95": {"macro_f1": {"ci_low": 0.6, "ci_high": 0.8}},
            "eval_items": 40,
            "eval_digest": EVAL,
            "baseline": {"macro_f1": 0.2, "accuracy": 0.5},
        },
    }
    for rel, data in reports.items():
        cat.path(rel).write_text(json.dumps(data))
    cat.path(catalog.DATASET).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": ["a", "b", "c"], "label": ["ok", "ok", "spam"]}).to_parquet(
        cat.path(catalog.DATASET)
    )
    return root, f"sqlite:///{root / catalog.MLFLOW_DB}"


@pytest.fixture
def client(store, monkeypatch):
    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return mlflow.MlflowClient(uri)


def run_pipeline(
    root: Path, pipeline: str, stages: tuple[str, ...], monkeypatch, fail: str | None = None
) -> dict:
    """Stage runs as `dvc repro` makes them (one process each, one pipeline id); stage -> run id."""
    monkeypatch.setenv("LABELCYCLE_PIPELINE_RUN", pipeline)
    ids = {}
    for stage in stages:
        try:
            with stage_run(root, stage, {"stage_param": stage}) as run:
                ids[stage] = run.run_id
                if stage == fail:
                    raise RuntimeError("boom")
        except RuntimeError:
            pass
    return ids


def version_parents(client, pipeline: str) -> list:
    exp = client.get_experiment_by_name("labelcycle")
    return client.search_runs(
        [exp.experiment_id],
        f"tags.`labelcycle.pipeline_run` = '{pipeline}' and tags.`labelcycle.kind` = 'version'",
    )


def test_stages_of_one_pipeline_run_are_nested_under_one_parent_named_for_people(store, client, monkeypatch):
    root, _ = store
    ids = run_pipeline(root, "p-nest", ("split", "curate", "sample", "evaluate"), monkeypatch)
    (parent,) = version_parents(client, "p-nest")
    assert {client.get_run(i).data.tags["mlflow.parentRunId"] for i in ids.values()} == {parent.info.run_id}
    head = sh(root, "git", "rev-parse", "--short=7", "HEAD").stdout.strip()
    assert parent.info.run_name == f"{head} aggregate.method=majority_vote"
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["labelcycle.stages"] == "split,curate,sample,evaluate"


def test_the_parent_carries_params_datasets_metrics_and_lineage_of_the_version(store, client, monkeypatch):
    root, _ = store
    run_pipeline(root, "p-facts", ("split", "curate", "sample", "evaluate"), monkeypatch)
    (parent,) = version_parents(client, "p-facts")
    p, m, t = parent.data.params, parent.data.metrics, parent.data.tags
    assert p["aggregate.method"] == "majority_vote" and p["sample.fraction"] == "1.0"
    assert "promote.min_delta" not in p  # no stage reads it: it does not define the version
    assert {d.dataset.name: d.dataset.digest for d in parent.inputs.dataset_inputs} == {
        "raw": combined_digest(["b1", "b2"]),
        "eval": EVAL,
        "curated": CURATED,
        "train_sample": SAMPLE,
    }
    assert p["dataset.curated.digest"] == CURATED and p["dataset.train_sample.digest"] == SAMPLE
    assert (
        m["dataset.curated.rows"] == 3
        and m["dataset.train_sample.rows"] == 2
        and m["dataset.raw.rows"] == 100
    )
    assert (m["macro_f1"], m["macro_f1_ci_low"], m["macro_f1_ci_high"]) == (0.7, 0.6, 0.8)
    assert m["baseline.macro_f1"] == 0.2
    assert t["mlflow.source.git.commit"] == sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    assert t[f"dvc.md5.{catalog.DATASET}"] and t["curated_digest"] == CURATED
    assert "majority baseline 0.2000" in t["mlflow.note.content"]


def test_a_stage_adds_only_facts_of_itself_and_its_upstream_stages(store, client, monkeypatch):
    root, _ = store
    run_pipeline(root, "p-upstream", ("split",), monkeypatch)
    (parent,) = version_parents(client, "p-upstream")
    assert {d.dataset.name for d in parent.inputs.dataset_inputs} == {"raw", "eval"}
    assert "macro_f1" not in parent.data.metrics  # evaluate has not run: last version's metrics are stale


def test_a_failed_stage_marks_the_parent_failed(store, client, monkeypatch):
    root, _ = store
    run_pipeline(root, "p-fail", ("split", "curate"), monkeypatch, fail="curate")
    (parent,) = version_parents(client, "p-fail")
    assert parent.info.status == "FAILED" and parent.data.tags["labelcycle.failed_stage"] == "curate"


def test_concurrent_stages_of_one_pipeline_run_find_one_parent(store, client, monkeypatch):
    root, _ = store
    exp_id = client.get_experiment_by_name("labelcycle").experiment_id
    found: list[str] = []

    def open_one() -> None:
        found.append(parents.open_parent(client, root, exp_id, "p-race", {}, root / ".dvc" / "tmp" / "locks"))

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1 and len(version_parents(client, "p-race")) == 1


def test_stage_runs_outside_dvc_have_no_parent(store, client, monkeypatch):
    root, _ = store
    monkeypatch.delenv("LABELCYCLE_PIPELINE_RUN", raising=False)
    with stage_run(root, "simulate_review") as run:
        pass
    assert "mlflow.parentRunId" not in client.get_run(run.run_id).data.tags


def test_tag_release_names_the_parent_after_the_release_and_keeps_its_former_name(store, client, monkeypatch):
    root, _ = store
    run_pipeline(root, "p-release", ("split",), monkeypatch)
    (before,) = version_parents(client, "p-release")
    assert parents.tag_release(root, "p-release", "dataset/v7") == before.info.run_id
    after = client.get_run(before.info.run_id)
    assert after.info.run_name == "dataset/v7" and after.data.tags["labelcycle.release"] == "dataset/v7"
    assert after.data.tags["labelcycle.version_name"] == before.info.run_name
    assert parents.tag_release(root, "no-such-pipeline-run", "dataset/v8") is None


def test_a_parent_or_a_stage_run_id_names_the_same_version(store, client, monkeypatch):
    root, _ = store
    ids = run_pipeline(root, "p-resolve", ("split", "evaluate"), monkeypatch)
    (parent,) = version_parents(client, "p-resolve")
    by_parent = resolve_version(root, parent.info.run_id)
    by_stage = resolve_version(root, ids["split"])
    assert by_parent.run_ids == by_stage.run_ids == ids
    assert by_parent.parent_run == by_stage.parent_run == parent.info.run_id
    assert by_stage.name == parent.info.run_name


def test_versions_table_takes_digests_from_the_parent_not_from_the_stage_tags(store, client, monkeypatch):
    root, _ = store
    monkeypatch.setenv("LABELCYCLE_PIPELINE_RUN", "p-table")
    for stage in ("curate", "sample"):
        with stage_run(root, stage) as run:
            run.set_tags({"curated_digest": "0" * 32})  # what train_quality used to tag (the sample's digest)
    (parent,) = version_parents(client, "p-table")
    rows = pipeline_versions(root).set_index("pipeline_run")
    assert rows.loc["p-table", "version"] == parent.info.run_id
    assert (
        rows.loc["p-table", "curated_digest"] == CURATED[:12]
        and rows.loc["p-table", "sample_digest"] == SAMPLE[:12]
    )


def test_training_data_names_the_sample_and_the_curated_set_apart(store, client, monkeypatch):
    root, _ = store
    monkeypatch.delenv("LABELCYCLE_PIPELINE_RUN", raising=False)
    sample = pd.DataFrame({"item_id": ["a", "b"], "label": ["ok", "spam"]})
    with stage_run(root, "train_quality") as run:
        run.log_training_data(sample, sample.head(1), "1" * 32, CURATED)
    got = client.get_run(run.run_id)
    digests = {d.dataset.name: d.dataset.digest for d in got.inputs.dataset_inputs}
    from labelcycle.versioning.digest import table_digest

    assert digests == {"train_sample": table_digest(sample), "train_rows": "1" * 32}
    assert (
        got.data.tags["sample_digest"] == table_digest(sample) and got.data.tags["curated_digest"] == CURATED
    )


def test_promote_takes_a_dvc_experiment_name_like_compare(store, client, tmp_path):
    from labelcycle.errors import WorkspaceError
    from labelcycle.tracking.versions import promotion_source

    root, _ = store
    head = sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    sh(root, "git", "update-ref", "refs/exps/ab/cdef0123456789/half", head)
    half = promotion_source(root, "half")
    assert (half.rev, half.source, half.version.kind) == (head, "exp:half", "dvc_exp")
    assert (
        promotion_source(root, None).rev is None and promotion_source(root, "workspace").source == "workspace"
    )
    (tmp_path / catalog.PREDICTIONS).parent.mkdir(parents=True)
    (tmp_path / catalog.PREDICTIONS).write_bytes(b"")
    with pytest.raises(WorkspaceError, match="is a folder of outputs, not a version of this project"):
        promotion_source(root, str(tmp_path))
