"""The MLflow adapter of promotion against a real SQLite store under tmp_path."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from labelcycle.errors import TrackingError
from labelcycle.tracking.registry import RECORDS_EXPERIMENT, TAG_KIND, Registry


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One MLflow store for the module (creating one takes seconds); each test uses its own names."""
    root = tmp_path_factory.mktemp("registry")
    return root, f"sqlite:///{root / 'mlflow.db'}"


@pytest.fixture
def registry(store, monkeypatch) -> Registry:
    root, uri = store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return Registry(root)


def _version(registry: Registry, name: str = "q") -> tuple[str, str]:
    run = registry.client.create_run(registry.client.get_experiment_by_name("labelcycle").experiment_id)
    if not registry.client.search_registered_models(f"name='{name}'"):
        registry.client.create_registered_model(name)
    mv = registry.client.create_model_version(name, source="/tmp/model", run_id=run.info.run_id)
    return str(mv.version), run.info.run_id


def test_aliases_and_version_tags_are_set_read_and_removed(registry):
    version, run_id = _version(registry)
    assert registry.alias("q", "production") is None and registry.alias("nope", "production") is None
    registry.set_alias("q", "production", version)
    registry.set_version_tags("q", version, {"labelcycle.release": "dataset/v1", "x": "1"})
    assert registry.alias("q", "production") == version
    assert registry.version_tags("q", version) == {"labelcycle.release": "dataset/v1", "x": "1"}
    registry.set_version_tags("q", version, {"x": None})
    registry.set_alias("q", "production", None)
    assert registry.version_tags("q", version) == {"labelcycle.release": "dataset/v1"}
    assert registry.alias("q", "production") is None
    assert (
        registry.version_source_run("q", version) == run_id and registry.version_source_run("q", "9") is None
    )


def test_a_record_is_a_finished_run_of_its_kind_with_its_files_tags_and_metrics(registry, store):
    table = pd.DataFrame({"item_id": ["i1"], "label": ["a"]})
    assert registry.records("release") == []  # no records experiment yet
    rid = registry.write_record(
        "release",
        {"labelcycle.release": "dataset/v1"},
        {"manifest.json": {"release": "dataset/v1"}, "predictions.parquet": table},
        {"accuracy": 0.9, "ece": float("nan"), "brier": None},
        run_name="release dataset/v1",
    )
    registry.write_record("audit", {}, {})
    [record] = registry.records("release")
    assert record.run_id == rid and record.tags[TAG_KIND] == "release"
    assert registry.read_json(rid, "manifest.json") == {"release": "dataset/v1"}
    pd.testing.assert_frame_equal(registry.read_table(rid, "predictions.parquet"), table)
    run = registry.client.get_run(rid)
    assert run.info.status == "FINISHED" and run.info.run_name == "release dataset/v1"
    assert run.data.metrics == {"accuracy": 0.9}
    exp = registry.client.get_experiment_by_name(RECORDS_EXPERIMENT)
    assert exp.artifact_location == (store[0] / "mlartifacts").resolve().as_uri()
    assert registry.read_table(rid, "absent.parquet") is None
    with pytest.raises(TrackingError, match=f"cannot read absent.json of MLflow run {rid}"):
        registry.read_json(rid, "absent.json")


def test_run_returns_a_run_by_id_and_none_for_anything_else(registry):
    with mlflow.start_run(tags={"labelcycle.stage": "evaluate"}) as active:
        pass
    assert registry.run(active.info.run_id).tags["labelcycle.stage"] == "evaluate"
    assert registry.run("HEAD~1") is None and registry.run("0" * 32) is None


def test_find_evaluate_run_prefers_the_run_whose_predictions_match(registry):
    older = mlflow.start_run(
        tags={
            "labelcycle.stage": "evaluate",
            "quality_model.run_id": "trained1",
            "dvc.out.reports/predictions.parquet": "p1",
        }
    )
    mlflow.end_run()
    newer = mlflow.start_run(
        tags={
            "labelcycle.stage": "evaluate",
            "quality_model.run_id": "trained1",
            "dvc.out.reports/predictions.parquet": "p2",
        }
    )
    mlflow.end_run()
    assert registry.find_evaluate_run("trained1", "p1").run_id == older.info.run_id
    assert registry.find_evaluate_run("trained1", "p9").run_id == newer.info.run_id
    assert (
        registry.find_evaluate_run("trained2", None) is None
        and registry.find_evaluate_run(None, "p1") is None
    )
