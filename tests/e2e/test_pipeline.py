"""The real `dvc repro` on a small demo project with a real MLflow store (SQLite in tmp)."""

from __future__ import annotations

import json
import os

import mlflow
import pandas as pd
import pytest
import yaml
from tests.conftest import ingest_demo, lc, set_params, sh

from labelcycle import catalog
from labelcycle.versioning.digest import table_digest

pytestmark = pytest.mark.e2e

STAGES = {
    "ingest",
    "split",
    "aggregate",
    "annotators",
    "train_error_model",
    "curate",
    "sample",
    "tune",
    "train_quality",
    "evaluate",
}
#: rows of the demo's annotations file: more than MLflow's pandas digest reads (its first 10,000 rows)
BEYOND = 10_000


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, project_factory):
    root = project_factory(tmp_path_factory.mktemp("e2e") / "proj")
    uri = f"sqlite:///{root / catalog.MLFLOW_DB}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    # a small, fast quality model
    set_params(
        root,
        tune={"n_estimators": 60, "n_jobs": 1, "n_trials": 3},
        train_quality={"n_estimators": 60, "n_jobs": 1},
        evaluate={"n_boot": 100, "min_slice_size": 5},
    )
    # 2,700 items: about 10,900 annotations, so some items are judged only after row 10,000
    ingest_demo(root, 2700, 30, 1)
    first = sh(root, "dvc", "repro", env={"MLFLOW_TRACKING_URI": uri})
    return root, uri, first


def _runs(uri: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(search_all_experiments=True)


def test_every_stage_logs_one_run_grouped_by_one_tag(pipeline):
    root, uri, _ = pipeline
    runs = _runs(uri)
    assert set(runs["tags.labelcycle.stage"]) >= STAGES
    first = runs[runs["tags.labelcycle.stage"].isin(STAGES)]
    assert first["tags.labelcycle.pipeline_run"].nunique() == 1
    assert first["tags.mlflow.source.git.commit"].notna().all()
    agg = first[first["tags.labelcycle.stage"] == "aggregate"].iloc[0]
    assert agg["params.aggregate.method"] == "hierarchical_dawid_skene"
    assert agg["metrics.agreement.items"] > 0


def test_dvc_tags_of_every_stage_run_equal_the_md5s_in_dvc_lock(pipeline):
    root, uri, _ = pipeline
    lock = yaml.safe_load((root / catalog.DVC_LOCK).read_text())["stages"]
    runs = _runs(uri)
    runs = runs[runs["tags.labelcycle.stage"].isin(STAGES)].sort_values("start_time")
    tagged = set()
    for _, run in runs.groupby("tags.labelcycle.stage").tail(1).iterrows():  # the run dvc.lock records
        stage = run["tags.labelcycle.stage"]
        recorded = {
            f"{kind[:-1]}.{entry['path']}": entry["md5"]
            for kind in ("deps", "outs")
            for entry in lock[stage].get(kind, [])
        }
        tags = {
            col[len("tags.dvc.") :]: value
            for col, value in run.items()
            if col.startswith(("tags.dvc.dep.", "tags.dvc.out.")) and isinstance(value, str)
        }
        for key, md5 in tags.items():
            assert key in recorded, f"{stage} tags {key}, which dvc.lock does not record for it"
            assert md5 == recorded[key], f"{stage}: tag {key} = {md5}, dvc.lock has {recorded[key]}"
        if tags:
            tagged.add(stage)
    # every stage but tune (its inputs are train_quality's too) tags its DVC hashes
    assert tagged == STAGES - {"tune"}


def test_dataset_inputs_carry_the_full_content_digest(pipeline):
    root, uri, _ = pipeline
    client = mlflow.MlflowClient(uri)
    runs = _runs(uri)
    run_id = runs[runs["tags.labelcycle.stage"] == "curate"]["run_id"].iloc[0]
    inputs = {d.dataset.name: d.dataset for d in client.get_run(run_id).inputs.dataset_inputs}
    curated = pd.read_parquet(root / catalog.DATASET)
    assert inputs["curated"].digest == table_digest(curated)
    ev = runs[runs["tags.labelcycle.stage"] == "evaluate"].iloc[0]
    split = json.loads((root / catalog.SPLIT_REPORT).read_text())
    assert ev["tags.eval_digest"] == split["eval_digest"]


def test_quality_model_is_registered_and_serves_the_workspace_predictions(pipeline):
    root, uri, _ = pipeline
    client = mlflow.MlflowClient(uri)
    versions = client.search_model_versions("name='labelcycle-quality'")
    assert len(versions) == 1
    lc(root, "predict", "demo/items.csv", "-o", "p_local.csv")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    lc(root, "predict", "demo/items.csv", "-o", "p_registry.csv", "--model", "models:/labelcycle-quality/1")
    pd.testing.assert_frame_equal(pd.read_csv(root / "p_local.csv"), pd.read_csv(root / "p_registry.csv"))


def test_tuning_trials_are_nested_under_the_tune_run(pipeline):
    root, uri, _ = pipeline
    runs = _runs(uri)
    tune = runs[runs["tags.labelcycle.stage"] == "tune"].iloc[0]
    trials = runs[runs["tags.mlflow.parentRunId"] == tune["run_id"]]
    assert len(trials) == 3 and set(trials["tags.optuna.state"]) <= {"COMPLETE", "PRUNED"}
    best = json.loads((root / catalog.BEST_PARAMS).read_text())
    train = runs[runs["tags.labelcycle.stage"] == "train_quality"].iloc[0]
    assert train["params.tuned_study"] == best["study"]
    assert float(train["params.lgb.learning_rate"]) == pytest.approx(best["params"]["learning_rate"])


def test_metrics_and_plot_are_written(pipeline):
    root, _, _ = pipeline
    metrics = json.loads((root / catalog.METRICS).read_text())
    assert {"accuracy", "macro_f1", "roc_auc_ovr", "pr_auc_ovr", "log_loss", "ece"} <= set(metrics)
    assert 0.4 < metrics["accuracy"] <= 1.0
    ci = metrics["ci95"]["accuracy"]
    assert ci["ci_low"] <= metrics["accuracy"] <= ci["ci_high"]
    slices = pd.read_csv(root / catalog.EVAL_SLICES_CSV)
    assert {"category", "region"} <= set(slices["slice_column"]) and (slices["n"] > 0).all()
    preds = pd.read_parquet(root / catalog.PREDICTIONS)
    assert len(preds) == metrics["eval_items"] and preds["item_id"].is_unique
    assert (root / catalog.PLOTS / "confusion_matrix.png").stat().st_size > 1000
    ingest = json.loads((root / catalog.INGEST_REPORT).read_text())
    assert ingest["reconciles"] and ingest["tables"]["annotations"]["read"] > 0


def test_second_repro_is_a_no_op(pipeline):
    root, uri, _ = pipeline
    before = len(_runs(uri))
    again = sh(root, "dvc", "repro", env={"MLFLOW_TRACKING_URI": uri})
    assert "Running stage" not in again.stdout, again.stdout
    assert len(_runs(uri)) == before


@pytest.mark.slow  # 22 s: a second dvc repro of the pipeline (make test-all runs it)
def test_one_relabel_after_row_10000_changes_the_curated_digest_and_reruns(pipeline):
    root, uri, _ = pipeline
    ann = pd.read_csv(root / "demo/annotations.csv")
    assert len(ann) > BEYOND
    # an item judged only after row 10,000, relabelled in a new delivery of its rows
    first_row = ann.reset_index().groupby("item_id")["index"].min()
    item = first_row[first_row >= BEYOND].index[-1]
    rows = ann[ann["item_id"] == item].copy()
    assert rows.index.min() >= BEYOND
    old = pd.read_parquet(root / catalog.LABELS).set_index("item_id").loc[item, "label"]
    rows["label"] = "prohibited" if old != "prohibited" else "ok"
    rows["created_at"] = "2030-01-01T00:00:00Z"
    rows.to_csv(root / "relabel.csv", index=False)
    before = table_digest(pd.read_parquet(root / catalog.DATASET))
    lc(root, "ingest", "--annotations", "relabel.csv")
    res = sh(root, "dvc", "repro", "curate", env={"MLFLOW_TRACKING_URI": uri})
    after = table_digest(pd.read_parquet(root / catalog.DATASET))
    assert before != after
    # what depends on the annotations reran; the gold split did not
    for stage in ("ingest", "aggregate", "train_error_model", "curate"):
        assert f"Running stage '{stage}'" in res.stdout, res.stdout
    assert "Running stage 'split'" not in res.stdout
    # the old judgements are repeats (self-agreement), not quarantined; the new ones feed the consensus
    repeats = pd.read_parquet(root / catalog.REPEATS)
    assert (repeats["item_id"] == str(item)).sum() == len(rows)
    q = pd.read_parquet(root / catalog.QUARANTINE)
    assert "duplicate_item_annotator" not in set(q["reason"])
