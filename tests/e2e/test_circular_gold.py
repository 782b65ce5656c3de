"""Gold declared derived from the crowd: `dvc repro` carries the circular-gold warning to the evaluate
stage's output and reports/metrics.json."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import demo_project, dvc, lc

from labelcycle import catalog
from labelcycle.gold import majority_labels


@pytest.mark.slow  # the whole pipeline on a small demo project
def test_evaluate_warns_in_metrics_json_when_eval_gold_comes_from_the_crowd(tmp_path):
    root = demo_project(tmp_path / "proj", n_items=400)
    ann = pd.read_csv(root / "demo/annotations.csv", dtype=str)
    have = set(pd.read_csv(root / "demo/gold.csv", dtype=str)["item_id"])
    majority = majority_labels(ann)
    crowd = majority[~majority.index.isin(have)].head(80)
    pd.DataFrame({"item_id": crowd.index, "label": crowd.to_numpy()}).to_csv(
        root / "crowd_gold.csv", index=False
    )
    lc(root, "ingest", "--gold", "crowd_gold.csv", "--gold-from-crowd")
    res = dvc(root, "repro", "evaluate")
    assert res.returncode == 0, res.stdout + res.stderr
    eval_split = pd.read_parquet(root / catalog.EVAL)
    n_circular = int(eval_split["circular"].sum())
    assert 0 < n_circular < len(eval_split)
    expected = (
        f"circular gold: {n_circular} of {len(eval_split)} of these gold items are derived from the crowd"
    )
    metrics = json.loads((root / catalog.METRICS).read_text())
    assert metrics["gold_warning"].startswith(expected)
    assert f"evaluate: warning: {expected}" in res.stdout
    assert json.loads((root / catalog.SPLIT_REPORT).read_text())["gold_warning"].startswith(expected)
