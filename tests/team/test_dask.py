"""train_quality on Dask (lightgbm.dask): same outputs and MLflow logging as the local path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import demo_project, dvc, runs_of

from labelcycle import catalog, schema
from labelcycle.aggregation import MajorityVote
from labelcycle.curation import curated_dataset, curated_labels
from labelcycle.errors import ConfigError
from labelcycle.quality.distributed import dask_client, train_on_dask
from labelcycle.quality.model import QualityModel, train

distributed = pytest.importorskip("distributed")


def test_unreachable_scheduler_is_a_clear_error():
    with (
        pytest.raises(ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:1"),
        dask_client("tcp://127.0.0.1:1"),
    ):
        pass


def test_dask_training_gives_a_quality_model_like_the_local_one(small_demo, tmp_path):
    ann = small_demo.annotations
    labels = curated_labels(ann, MajorityVote(classes=["ok", "misleading", "prohibited"]).fit(ann))
    data = curated_dataset(labels, small_demo.items)
    items = data.drop(columns=[schema.LABEL, schema.CONFIDENCE, "n_annotations"])
    classes = ["ok", "misleading", "prohibited"]
    kwargs = dict(
        params={"n_estimators": 40, "num_leaves": 15, "learning_rate": 0.1, "num_threads": 1},
        valid_fraction=0.2,
        early_stopping_rounds=5,
        seed=1,
    )
    local = train(items, data[schema.LABEL], classes, **kwargs)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = train_on_dask(client, items, data[schema.LABEL], classes, **kwargs)
    assert (remote.n_train, remote.n_valid) == (local.n_train, local.n_valid)
    assert set(remote.valid_metrics) == set(local.valid_metrics) == {"valid_multi_logloss"}
    assert 1 <= remote.best_iteration <= 40
    remote.model.save(tmp_path / "m")
    loaded = QualityModel.load(tmp_path / "m")
    assert loaded.booster.num_trees() == 3 * remote.best_iteration  # saved at the best iteration, as locally
    a, b = remote.model.predict_proba(items), loaded.predict_proba(items)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-9)
    agree = (local.model.predict(items)[schema.LABEL] == loaded.predict(items)[schema.LABEL]).mean()
    assert agree > 0.9
    assert abs(remote.valid_metrics["valid_multi_logloss"] - local.valid_metrics["valid_multi_logloss"]) < 0.1


@pytest.mark.slow  # another full pipeline: the default suite runs one in tests/e2e/test_pipeline.py
def test_train_quality_stage_on_a_dask_cluster_logs_like_the_local_one(pg_server, tmp_path, monkeypatch):
    project = demo_project(tmp_path / "proj")
    env = {"MLFLOW_TRACKING_URI": pg_server.url}
    assert dvc(project, "repro", "train_quality", env=env).returncode == 0
    params = (project / catalog.PARAMS).read_text().replace("    enabled: false", "    enabled: true")
    (project / catalog.PARAMS).write_text(params)
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
        protocol="tcp",
        host="127.0.0.1",
    ) as cluster:
        res = dvc(
            project,
            "repro",
            "train_quality",
            env={**env, "LABELCYCLE_DASK_SCHEDULER": cluster.scheduler_address},
        )
    assert res.returncode == 0, res.stdout + res.stderr
    runs = [r for r in runs_of(pg_server.url) if r.data.tags["labelcycle.stage"] == "train_quality"]
    by_backend = {r.data.tags["train_quality.backend"]: r for r in runs}
    assert set(by_backend) == {"local", "dask"}
    local, remote = by_backend["local"], by_backend["dask"]
    assert remote.info.status == "FINISHED"
    assert remote.data.tags["train_quality.dask.scheduler"].startswith("tcp://127.0.0.1:")
    assert set(remote.data.metrics) == set(local.data.metrics)
    assert set(remote.data.params) == set(local.data.params)
    assert remote.data.params["train_quality.dask.enabled"] == "True"
    assert remote.data.tags["model.version"] == "2"
    info = json.loads((project / catalog.TRAIN_QUALITY_REPORT).read_text())
    assert info["mlflow_run_id"] == remote.info.run_id
    model = QualityModel.load(project / catalog.QUALITY_MODEL)
    assert model.booster.num_trees() == 3 * int(remote.data.metrics["best_iteration"])


def test_a_text_model_trained_on_dask_boosts_from_the_linear_text_base_as_the_local_one():
    import pandas as pd
    from tests.unit.features.test_text_stack import CLASSES, two_columns

    items, y = two_columns(200)
    labels = pd.Series(np.asarray(CLASSES)[y])
    kwargs = dict(params={"n_estimators": 20, "learning_rate": 0.1, "num_threads": 1}, seed=1)
    with dask_client(None) as client:
        remote = train_on_dask(client, items, labels, CLASSES, **kwargs).model
    assert remote.boosted
    # the base alone separates these items; boosting from it keeps them separated
    assert np.mean(remote.predict(items)[schema.LABEL].to_numpy() == labels.to_numpy()) > 0.95
