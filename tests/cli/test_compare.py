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


def test_slices_computed_beside_the_overall_bootstrap_equal_each_computed_alone():
    """compare_versions runs the slices' bootstrap on a second thread: the numbers are those of each run alone."""
    from labelcycle.comparison import GOLD, SLICE_METRICS, prediction_set
    from labelcycle.evaluation.paired import compare_paired
    from labelcycle.evaluation.slices import slice_paired

    base, cand = predictions(900, 0.6, 0), predictions(900, 0.7, 1)
    report = compare_versions(base, cand, n_boot=300, n_boot_rank=50, slice_n_boot=100, seed=5)
    b, c = prediction_set(base, None, "base"), prediction_set(cand, None, "candidate")
    overall_seed, slice_seed = np.random.SeedSequence(5).spawn(2)
    alone = compare_paired(b, c, n_boot=300, n_boot_rank=50, random_state=np.random.default_rng(overall_seed))
    pd.testing.assert_frame_equal(report.paired.table, alone.table, check_exact=True)
    slices = slice_paired(
        b,
        c,
        pd.DataFrame({"item_id": b.item_ids, GOLD: b.y_true}),
        metrics=list(SLICE_METRICS),
        n_boot=100,
        random_state=slice_seed,
        min_n=30,
    )
    pd.testing.assert_frame_equal(report.slices, slices, check_exact=True)


def test_version_slices_keep_exactly_the_eval_items_and_give_none_when_one_has_no_row():
    from labelcycle.comparison import version_slices
    from labelcycle.versioning.versions import Version, VersionData

    items = pd.DataFrame(
        {"item_id": [f"e{i}" for i in range(6)], "channel": ["web", "app"] * 3, "score": range(6)}
    ).astype({"item_id": "str", "channel": "str"})
    v = VersionData(version=Version(spec="a", kind="folder"), items=items)
    frame = version_slices(v, v, pd.Series(["e4", "e1", "e2"]))
    assert frame["item_id"].tolist() == ["e1", "e2", "e4"] and list(frame.columns) == ["item_id", "channel"]
    assert version_slices(v, v, ["e1", "e9"]) is None


def test_compare_without_logging_on_folder_versions_never_imports_mlflow(tmp_path):
    """MLflow (about 2 s to import) is imported only when a comparison is logged or a run is read."""
    import subprocess
    import sys

    write_version(tmp_path / "a", predictions(200, 0.6, 0), LABELS_A)
    write_version(tmp_path / "b", predictions(200, 0.8, 1), LABELS_B)
    code = (
        "import sys; from click.testing import CliRunner; from labelcycle.cli import main; "
        "r = CliRunner().invoke(main, ['compare', 'a', 'b', '--no-log', '--n-boot', '50']); "
        "print(r.exit_code, 'mlflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "False"], out.stderr


def test_a_logged_compare_that_fails_reports_its_own_error_and_restores_the_switch_interval(
    tmp_path, monkeypatch
):
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    write_version(tmp_path / "a", predictions(30, 0.7, 0), LABELS_A)
    write_version(tmp_path / "b", None, LABELS_B)
    before = sys.getswitchinterval()
    res = CliRunner().invoke(main, ["compare", "a", "b"])  # logged: MLflow work runs on a thread meanwhile
    assert res.exit_code == 1
    assert "candidate version 'b' (folder) has no saved predictions" in res.output
    assert sys.getswitchinterval() == before


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("fails", [False, True])
def test_compare_restores_the_collector_and_blas_threads_and_freezes_what_is_alive_only_at_exit(
    tmp_path, monkeypatch, fails
):
    import atexit
    import gc

    from labelcycle.cli import versions

    monkeypatch.chdir(tmp_path)
    write_version(tmp_path / "a", predictions(60, 0.6, 0), LABELS_A)
    write_version(tmp_path / "b", None if fails else predictions(60, 0.8, 1), LABELS_B)
    registered = []
    monkeypatch.setattr(versions, "_exit_hook", [])
    monkeypatch.setattr(atexit, "register", registered.append)
    seen = {}
    import labelcycle.comparison as comparison  # the command imports compare_data from here when it runs

    real = comparison.compare_data

    def watching(*args, **kwargs):
        seen["threshold"], seen["frozen"] = gc.get_threshold(), gc.get_freeze_count()
        seen["blas"] = _blas_threads()
        return real(*args, **kwargs)

    monkeypatch.setattr(comparison, "compare_data", watching)
    before, frozen_before, blas_before = gc.get_threshold(), gc.get_freeze_count(), _blas_threads()
    res = CliRunner().invoke(main, ["compare", "a", "b", "--no-log", "--n-boot", "20"])
    assert res.exit_code == (1 if fails else 0), res.output
    if not fails:
        assert seen["threshold"][0] == versions.COMPARE_GC_THRESHOLD and seen["frozen"] > 0
        assert set(seen["blas"]) <= {1}  # one BLAS thread while compare runs its own threads
    assert gc.get_threshold() == before and gc.get_freeze_count() == frozen_before
    assert _blas_threads() == blas_before
    assert registered == [gc.freeze]


def test_a_bad_label_table_is_reported_before_an_eval_set_mismatch_though_the_diff_runs_beside():
    from labelcycle.comparison import compare_data
    from labelcycle.errors import SchemaError
    from labelcycle.versioning.versions import Version, VersionData

    def version(spec: str, labels: pd.DataFrame, digest: str) -> VersionData:
        return VersionData(
            version=Version(spec=spec, kind="folder"),
            labels=labels,
            predictions=predictions(60, 0.7, 0),
            metrics={"eval_digest": digest},
        )

    bad = LABELS_A.rename(columns={"label": "class"})
    with pytest.raises(SchemaError, match="base curated labels lack column"):
        compare_data(version("a", bad, "d1"), version("b", LABELS_B, "d2"), n_boot=20)
    with pytest.raises(EvalSetMismatchError):
        compare_data(version("a", LABELS_A, "d1"), version("b", LABELS_B, "d2"), n_boot=20)
