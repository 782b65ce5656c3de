"""The real `dvc repro` on a small demo project with a real MLflow store (SQLite in tmp)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from labelcycle.versioning.digest import table_digest

pytestmark = pytest.mark.e2e

STAGES = {"ingest", "split", "aggregate", "annotators", "train_error_model", "curate", "sample", "tune", "train_quality", "evaluate"}


def sh(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert res.returncode == 0, f"{args} failed:\n{res.stdout}\n{res.stderr}"
    return res


def lc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "labelcycle.cli", *args)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, project_factory):
    root = project_factory(tmp_path_factory.mktemp("e2e") / "proj")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    # a small, fast quality model
    params = (root / "params.yaml").read_text().replace("n_estimators: 400", "n_estimators: 60")
    params = params.replace("n_jobs: 2", "n_jobs: 1").replace("n_boot: 500", "n_boot: 100")
    params = params.replace("n_trials: 15", "n_trials: 3").replace("min_slice_size: 30", "min_slice_size: 5")
    (root / "params.yaml").write_text(params)
    lc(root, "demo", "--out", "demo", "--items", "1500", "--annotators", "30", "--seed", "1")
    lc(
        root,
        "ingest",
        "--annotations",
        "demo/annotations.csv",
        "--items",
        "demo/items.csv",
        "--gold",
        "demo/gold.csv",
    )
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
    assert any(c.startswith("tags.dvc.out.data/curated/dataset.parquet") for c in runs.columns)


def test_dataset_inputs_carry_the_full_content_digest(pipeline):
    root, uri, _ = pipeline
    client = mlflow.MlflowClient(uri)
    runs = _runs(uri)
    run_id = runs[runs["tags.labelcycle.stage"] == "curate"]["run_id"].iloc[0]
    inputs = {d.dataset.name: d.dataset for d in client.get_run(run_id).inputs.dataset_inputs}
    curated = pd.read_parquet(root / "data/curated/dataset.parquet")
    assert inputs["curated"].digest == table_digest(curated)
    ev = runs[runs["tags.labelcycle.stage"] == "evaluate"].iloc[0]
    split = json.loads((root / "reports/split.json").read_text())
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
    best = json.loads((root / "reports/best_params.json").read_text())
    train = runs[runs["tags.labelcycle.stage"] == "train_quality"].iloc[0]
    assert train["params.tuned_study"] == best["study"]
    assert float(train["params.lgb.learning_rate"]) == pytest.approx(best["params"]["learning_rate"])


def test_metrics_and_plot_are_written(pipeline):
    root, _, _ = pipeline
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert {"accuracy", "macro_f1", "roc_auc_ovr", "pr_auc_ovr", "log_loss", "ece"} <= set(metrics)
    assert 0.4 < metrics["accuracy"] <= 1.0
    ci = metrics["ci95"]["accuracy"]
    assert ci["ci_low"] <= metrics["accuracy"] <= ci["ci_high"]
    slices = pd.read_csv(root / "reports/eval_slices.csv")
    assert {"category", "region"} <= set(slices["slice_column"]) and (slices["n"] > 0).all()
    preds = pd.read_parquet(root / "reports/predictions.parquet")
    assert len(preds) == metrics["eval_items"] and preds["item_id"].is_unique
    assert (root / "reports/plots/confusion_matrix.png").stat().st_size > 1000
    ingest = json.loads((root / "reports/ingest.json").read_text())
    assert ingest["reconciles"] and ingest["tables"]["annotations"]["read"] > 0


def test_second_repro_is_a_no_op(pipeline):
    root, uri, _ = pipeline
    before = len(_runs(uri))
    again = sh(root, "dvc", "repro", env={"MLFLOW_TRACKING_URI": uri})
    assert "Running stage" not in again.stdout, again.stdout
    assert len(_runs(uri)) == before


def test_one_relabel_after_row_10000_changes_the_curated_digest_and_reruns(pipeline):
    root, uri, _ = pipeline
    ann = pd.read_csv(root / "demo/annotations.csv")
    assert len(ann) > 5000
    # relabel every annotation of one item late in the file: a new delivery of those rows
    item = ann["item_id"].iloc[-1]
    rows = ann[ann["item_id"] == item].copy()
    old = pd.read_parquet(root / "data/curated/labels.parquet").set_index("item_id").loc[item, "label"]
    rows["label"] = "prohibited" if old != "prohibited" else "ok"
    rows["created_at"] = "2030-01-01T00:00:00Z"
    rows.to_csv(root / "relabel.csv", index=False)
    before = table_digest(pd.read_parquet(root / "data/curated/dataset.parquet"))
    lc(root, "ingest", "--annotations", "relabel.csv")
    sh(root, "dvc", "repro", env={"MLFLOW_TRACKING_URI": uri})
    after = table_digest(pd.read_parquet(root / "data/curated/dataset.parquet"))
    assert before != after
    q = pd.read_parquet(root / "data/interim/quarantine.parquet")
    assert (q["reason"] == "duplicate_item_annotator").sum() == len(rows)  # the old judgements, with reasons
