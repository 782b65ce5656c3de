"""`labelcycle promote` refuses a model that does not beat the majority-class baseline: a real pipeline
whose items carry no information about the labels (constant features), so the quality model can only
answer the most frequent class, ties the baseline's accuracy on the eval split, and is refused with both
figures; nothing is promoted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import SMALL_PARAMS, dvc, lc, make_project, run_cli, set_params, sh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def write_uninformative(root: Path, n: int = 300, seed: int = 0) -> None:
    """Items with constant columns (a categorical one too: evaluate's slice plot needs one); labels 80/20,
    three annotators who all agree; gold for 150 items."""
    rng = np.random.default_rng(seed)
    truth = np.where(rng.random(n) < 0.8, "ok", "bad")
    ids = [f"i{k}" for k in range(n)]
    pd.DataFrame({"item_id": ids, "score": 1.0, "channel": "web"}).to_csv(root / "i.csv", index=False)
    rows = [(i, f"a{a}", t) for i, t in zip(ids, truth, strict=True) for a in range(3)]
    pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).to_csv(root / "a.csv", index=False)
    pd.DataFrame({"item_id": ids[:150], "label": truth[:150]}).to_csv(root / "g.csv", index=False)


def test_a_model_level_with_the_majority_baseline_is_refused_with_both_figures(tmp_path):
    root = make_project(tmp_path / "proj")
    params = (root / "params.yaml").read_text()
    for old, new in SMALL_PARAMS.items():
        params = params.replace(old, new)
    (root / "params.yaml").write_text(params)
    set_params(root, ingest={"labels": ["ok", "bad"]}, evaluate={"primary_metric": "accuracy"})
    write_uninformative(root)
    lc(root, "ingest", "--annotations", "a.csv", "--items", "i.csv", "--gold", "g.csv")
    repro = dvc(root, "repro", "-q")
    assert repro.returncode == 0, repro.stdout + repro.stderr
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "candidate")

    metrics = json.loads((root / "reports" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(metrics["baseline"]["accuracy"])
    refused = run_cli(root, "promote")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    fig = f"{metrics['accuracy']:.4f} vs majority-class baseline {metrics['baseline']['accuracy']:.4f}"
    assert f"[FAIL] beats-baseline: accuracy {fig}" in refused.stdout
    assert "beats-baseline" in refused.stderr and "nothing was changed" in refused.stderr
    assert "no production release yet" in lc(root, "status").stdout
