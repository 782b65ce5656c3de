"""`labelcycle compare` / `experiments` on small folder versions: output shape and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from labelcycle import catalog
from labelcycle.catalog import Catalog
from labelcycle.cli import main
from labelcycle.comparison import compare_versions
from labelcycle.errors import EvalSetMismatchError, MissingPredictionsError, UnknownVersionError

CLASSES = ["ok", "misleading", "prohibited"]


def predictions(n: int, skill: float, seed: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    gold = np.asarray(CLASSES)[np.arange(start, start + n) % 3]
    hit = rng.random(n) < skill
    pred_idx = np.where(hit, np.arange(start, start + n) % 3, (np.arange(start, start + n) + 1) % 3)
    proba = np.full((n, 3), 0.15)
    proba[np.arange(n), pred_idx] = 0.7
    frame = pd.DataFrame(
        {
            "item_id": [f"e{i:04d}" for i in range(start, start + n)],
            "gold_label": gold,
            "label": np.asarray(CLASSES)[pred_idx],
        }
    )
    for j, c in enumerate(CLASSES):
        frame[f"proba_{c}"] = proba[:, j]
    return frame


def write_version(
    folder: Path,
    preds: pd.DataFrame | None,
    labels: pd.DataFrame,
    digest: str = "d1",
    method: str = "majority_vote",
) -> Path:
    cat = Catalog(folder)
    cat.path(catalog.REPORTS).mkdir(parents=True)
    cat.path(catalog.LABELS).parent.mkdir(parents=True)
    labels.to_parquet(cat.path(catalog.LABELS), index=False)
    if preds is not None:
        preds.to_parquet(cat.path(catalog.PREDICTIONS), index=False)
        cat.path(catalog.METRICS).write_text(json.dumps({"eval_digest": digest}))
    cat.path(catalog.PARAMS).write_text(f"aggregate:\n  method: {method}\n")
    return folder


LABELS_A = pd.DataFrame({"item_id": ["t1", "t2", "t3"], "label": ["ok", "ok", "prohibited"]})
LABELS_B = pd.DataFrame({"item_id": ["t1", "t2", "t4"], "label": ["ok", "misleading", "ok"]})


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_compare_json_has_diff_metrics_and_verdict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(600, 0.6, 0), LABELS_A)
    write_version(tmp_path / "b", predictions(600, 0.9, 1), LABELS_B, method="dawid_skene")
    res = run("compare", "a", "b", "--json", "--n-boot", "200", "--html", "r.html")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (
        out["dataset_diff"]["items_added"],
        out["dataset_diff"]["items_removed"],
        out["dataset_diff"]["labels_changed"],
    ) == (1, 1, 1)
    assert out["dataset_diff"]["by_method"][0]["method_candidate"] == "dawid_skene"
    acc = out["metrics"]["accuracy"]
    assert set(acc) >= {"base", "candidate", "delta", "ci_low", "ci_high", "p_value"}
    assert acc["p_method"] == "mcnemar_midp" and acc["p_value"] < 0.001 and acc["ci_low"] > 0
    assert out["verdict"] == "better" and out["mlflow_run_id"]
    assert {s["slice_value"] for s in out["slices"]} == set(CLASSES)
    page = (tmp_path / "r.html").read_text()
    assert "verdict: better" in page and "<script" not in page and 'src="http' not in page


def test_identical_versions_give_no_significant_change(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(300, 0.7, 0), LABELS_A)
    res = run("compare", "a", "a", "--json", "--no-log", "--n-boot", "100")
    out = json.loads(res.stdout)
    assert out["verdict"] == "no significant change" and out["metrics"]["accuracy"]["delta"] == 0
    assert "mlflow_run_id" not in out


def test_compare_refuses_an_unknown_version(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(30, 0.7, 0), LABELS_A)
    res = CliRunner().invoke(main, ["compare", "a", "nope"])
    assert res.exit_code == 2
    assert "unknown version 'nope'" in res.output and "labelcycle experiments" in res.output
    from labelcycle.tracking.versions import resolve_version

    with pytest.raises(UnknownVersionError, match=r"unknown version '0123456789abcdef0123456789abcdef'"):
        resolve_version(tmp_path, "0123456789abcdef0123456789abcdef")


def test_compare_refuses_a_version_without_saved_predictions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(30, 0.7, 0), LABELS_A)
    write_version(tmp_path / "b", None, LABELS_B)
    res = CliRunner().invoke(main, ["compare", "a", "b", "--no-log"])
    assert res.exit_code == 1
    assert "candidate version 'b' (folder) has no saved predictions" in res.output
    assert f"{catalog.PREDICTIONS} is missing" in res.output


def test_missing_predictions_error_is_a_labelcycle_error():
    from labelcycle.errors import LabelcycleError

    assert issubclass(MissingPredictionsError, LabelcycleError)


def test_compare_refuses_different_eval_splits(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(60, 0.7, 0), LABELS_A, digest="d1")
    write_version(tmp_path / "b", predictions(60, 0.7, 1), LABELS_B, digest="d2")
    res = CliRunner().invoke(main, ["compare", "a", "b", "--no-log"])
    assert res.exit_code == 1 and "different gold eval splits" in res.output
    with pytest.raises(
        EvalSetMismatchError, match=r"evaluated on different items: 10 base item id\(s\) missing"
    ):
        compare_versions(predictions(60, 0.7, 0), predictions(60, 0.7, 0, start=10), n_boot=20)
    other = predictions(60, 0.7, 0).drop(columns=["proba_prohibited"])
    other["proba_ok"] = 1 - other["proba_misleading"]
    with pytest.raises(EvalSetMismatchError, match="predict different label sets"):
        compare_versions(predictions(60, 0.7, 0), other, n_boot=20)


def test_compare_reports_the_training_data_diff_beside_the_curated_diff(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ids = [f"t{i}" for i in range(1, 7)]
    sample = pd.DataFrame(
        {"item_id": ids, "label": ["ok", "ok", "misleading", "misleading", "prohibited", "ok"]}
    )
    for name, train in (
        ("a", sample),
        ("b", sample.iloc[::2].assign(label=lambda d: d["label"].where(d["item_id"] != "t5", "ok"))),
    ):
        write_version(tmp_path / name, predictions(300, 0.7, 0 if name == "a" else 1), LABELS_A)
        train.to_parquet(tmp_path / name / catalog.TRAIN_SAMPLE, index=False)
    res = run("compare", "a", "b", "--json", "--no-log", "--n-boot", "50")
    out = json.loads(res.stdout)
    assert out["dataset_diff"]["items_removed"] == 0  # the curated set is the same
    t = out["training_diff"]
    assert (t["items_base"], t["items_candidate"], t["items_removed"], t["labels_changed"]) == (6, 3, 3, 1)
    by_label = {r["group_value"]: r for r in out["attribution"] if r["group_column"] == "label"}
    assert (by_label["ok"]["removed"], by_label["ok"]["relabelled"]) == (2, 1)
    assert by_label["ok"]["eval_items"] == 100 and by_label["ok"]["ci_low"] <= by_label["ok"]["delta"]
    text = run("compare", "a", "b", "--no-log", "--n-boot", "50").stdout
    assert "training data diff: 0 items added, 3 removed, 1 relabelled (trained on 6 -> 3 items)" in text
