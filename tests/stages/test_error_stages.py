"""The train_error_model and curate stages under the real `dvc repro` on a small demo project."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import dvc, ingest_demo, set_params

from labelcycle import catalog
from labelcycle.detection.model import MODEL_FILE, OUTPUT_COLUMNS


@pytest.mark.slow
def test_dvc_repro_runs_error_model_then_curate_and_a_drop_reruns_only_curate_dropping_doubtful_items(
    project,
):
    ingest_demo(project, 800, 20)
    # a small demo has few gold items
    set_params(project, train_error_model={"min_gold_targets": 20, "features": {"quality_rounds": 30}})
    res = dvc(project, "repro", "curate")
    assert res.returncode == 0, res.stdout + res.stderr
    scores = pd.read_parquet(project / catalog.ERROR_SCORES)
    annotations = pd.read_parquet(project / catalog.ANNOTATIONS)
    assert list(scores.columns) == OUTPUT_COLUMNS and len(scores) == len(annotations)
    assert scores["label_error_score"].between(0, 1).all()
    report = json.loads((project / catalog.ERROR_MODEL_REPORT).read_text())
    assert report["supervised"] is True and "error_model.average_precision" in report
    assert (project / catalog.ERROR_MODEL / MODEL_FILE).exists()
    dataset = pd.read_parquet(project / catalog.DATASET)
    assert {"label", "confidence", "n_annotations", "category"} <= set(dataset.columns)
    curate = json.loads((project / catalog.CURATE_REPORT).read_text())
    assert curate["action"] == "relabel" and curate["items_after"] == len(dataset)

    # a curate-only change reruns curate and nothing upstream
    set_params(project, curate={"action": "drop"})
    res = dvc(project, "repro", "curate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Running stage 'curate'" in res.stdout
    for stage in ("ingest", "split", "aggregate", "train_error_model"):
        assert f"Running stage '{stage}'" not in res.stdout
    # drop removes the doubtful items from the raw consensus, and nothing else
    consensus = set(pd.read_parquet(project / catalog.LABELS_RAW)["item_id"])
    kept = set(pd.read_parquet(project / catalog.DATASET)["item_id"])
    curate = json.loads((project / catalog.CURATE_REPORT).read_text())
    assert curate["action"] == "drop" and curate["items_dropped"] > 0
    assert kept < consensus and len(consensus - kept) == curate["items_dropped"]
