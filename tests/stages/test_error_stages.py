"""The train_error_model and curate stages under the real `dvc repro` on a small demo project."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from labelcycle.detection.model import OUTPUT_COLUMNS


def _run(cwd, *args):
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_dvc_repro_runs_error_model_then_curate_and_reruns_only_curate_on_its_params(project):
    cli = [sys.executable, "-m", "labelcycle.cli"]
    assert _run(project, *cli, "demo", "--out", "demo", "--items", "800", "--annotators", "20").returncode == 0
    res = _run(project, *cli, "ingest", "--annotations", "demo/annotations.csv", "--items", "demo/items.csv",
               "--gold", "demo/gold.csv")
    assert res.returncode == 0, res.stderr
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_error_model"]["min_gold_targets"] = 20  # a small demo has few gold items
    params["train_error_model"]["features"]["quality_rounds"] = 30
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = _run(project, "dvc", "repro", "curate")
    assert res.returncode == 0, res.stdout + res.stderr
    scores = pd.read_parquet(project / "data/curated/error_scores.parquet")
    annotations = pd.read_parquet(project / "data/interim/annotations.parquet")
    assert list(scores.columns) == OUTPUT_COLUMNS and len(scores) == len(annotations)
    assert scores["label_error_score"].between(0, 1).all()
    report = json.loads((project / "reports/train_error_model.json").read_text())
    assert report["supervised"] is True and "error_model.average_precision" in report
    assert (project / "models/error/model.txt").exists()
    dataset = pd.read_parquet(project / "data/curated/dataset.parquet")
    assert {"label", "confidence", "n_annotations", "category"} <= set(dataset.columns)
    curate = json.loads((project / "reports/curate.json").read_text())
    assert curate["action"] == "relabel" and curate["items_after"] == len(dataset)

    # a curate-only change reruns curate and nothing upstream
    params["curate"]["action"] = "drop"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = _run(project, "dvc", "repro", "curate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Running stage 'curate'" in res.stdout
    for stage in ("ingest", "split", "aggregate", "train_error_model"):
        assert f"Running stage '{stage}'" not in res.stdout
    dropped = pd.read_parquet(project / "data/curated/dataset.parquet")
    assert len(dropped) <= len(dataset)
