"""Two real pipeline versions (`dvc repro` + `dvc exp run`) compared by `labelcycle compare`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from tests.conftest import ingest_demo

from labelcycle import catalog
from labelcycle.aggregation import DEFAULT_METHOD, METHODS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: the candidate's aggregation method: majority vote against the default (the issue's scenario)
OTHER_METHOD = "majority_vote" if DEFAULT_METHOD != "majority_vote" else "dawid_skene"
assert OTHER_METHOD in METHODS
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, **GIT_ENV, "MLFLOW_TRACKING_URI": f"sqlite:///{_project(cwd) / catalog.MLFLOW_DB}"}
    res = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env)
    if check:
        assert res.returncode == 0, f"{args} failed:\n{res.stdout}\n{res.stderr}"
    return res


def _project(cwd: Path) -> Path:
    return next(p for p in (cwd, *cwd.parents) if (p / ".dvc").is_dir())


def _runs(root: Path) -> pd.DataFrame:
    mlflow.set_tracking_uri(f"sqlite:///{root / catalog.MLFLOW_DB}")
    return mlflow.search_runs(search_all_experiments=True)


def lc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "labelcycle.cli", *args, check=check)


@pytest.fixture(scope="module")
def versions(tmp_path_factory, project_factory):
    root = project_factory(tmp_path_factory.mktemp("cmp") / "proj")
    params = (root / catalog.PARAMS).read_text().replace("n_estimators: 400", "n_estimators: 40")
    params = params.replace("n_jobs: 2", "n_jobs: 1").replace("n_boot: 500", "n_boot: 50")
    params = params.replace("n_trials: 15", "n_trials: 2")
    (root / catalog.PARAMS).write_text(params)
    (root / ".gitignore").write_text(
        f"{catalog.MLFLOW_DB}\n{catalog.MLARTIFACTS}/\n{catalog.OPTUNA_DB}\ndemo/\n*.csv\n*.html\n"
    )
    ingest_demo(root, 2500, 24, 2)
    sh(root, "dvc", "repro")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "v1")
    sh(root, "git", "tag", "v1")
    base_labels = pd.read_parquet(root / catalog.LABELS)
    base_sample = pd.read_parquet(root / catalog.TRAIN_SAMPLE)
    # an experiment that trains on half the curated data (the issue's `dvc exp run -n half`)
    sh(root, "dvc", "exp", "run", "-n", "half", "-S", "sample.fraction=0.5")
    half_sample = pd.read_parquet(root / catalog.TRAIN_SAMPLE)
    # a relabelling delivery for 40 items, then an experiment that also switches the aggregation method
    ann = pd.read_csv(root / "demo/annotations.csv")
    items = ann["item_id"].drop_duplicates().iloc[-40:]
    rows = ann[ann["item_id"].isin(items)].copy()
    old = base_labels.set_index("item_id").loc[rows["item_id"], "label"].to_numpy()
    rows["label"] = ["prohibited" if o != "prohibited" else "ok" for o in old]
    rows["created_at"] = "2030-01-01T00:00:00Z"
    rows.to_csv(root / "relabel.csv", index=False)
    lc(root, "ingest", "--annotations", "relabel.csv")
    sh(
        root,
        "dvc",
        "exp",
        "run",
        "-n",
        "cand",
        "-S",
        f"aggregate.method={OTHER_METHOD}",
        "-S",
        "sample.fraction=0.8",
    )
    cand_labels = pd.read_parquet(root / catalog.LABELS)
    samples.update(base=base_sample, half=half_sample)
    return root, base_labels, cand_labels


#: the training samples of v1 and of the `half` experiment, as the fixture found them
samples: dict[str, pd.DataFrame] = {}


def _independent_counts(base: pd.DataFrame, cand: pd.DataFrame) -> dict[str, int]:
    b = dict(zip(base["item_id"], base["label"], strict=True))
    c = dict(zip(cand["item_id"], cand["label"], strict=True))
    return {
        "items_added": len(set(c) - set(b)),
        "items_removed": len(set(b) - set(c)),
        "labels_changed": sum(1 for i in set(b) & set(c) if b[i] != c[i]),
    }


def test_compare_git_tag_with_dvc_experiment_matches_an_independent_count(versions):
    root, base_labels, cand_labels = versions
    out = json.loads(
        lc(root, "compare", "v1", "cand", "--json", "--html", "report.html", "--n-boot", "300").stdout
    )
    expected = _independent_counts(base_labels, cand_labels)
    assert expected["labels_changed"] >= 30
    assert {k: out["dataset_diff"][k] for k in expected} == expected
    assert out["base"]["kind"] == "git" and out["candidate"]["kind"] == "dvc_exp"
    for name in ("accuracy", "macro_f1", "roc_auc_ovr", "log_loss"):
        m = out["metrics"][name]
        assert m["delta"] == pytest.approx(m["candidate"] - m["base"])
        assert m["ci_low"] <= m["ci_high"] and 0 <= m["p_value"] <= 1
    primary = out["metrics"]["macro_f1"]
    expected_verdict = (
        "better" if primary["ci_low"] > 0 else "worse" if primary["ci_high"] < 0 else "no significant change"
    )
    assert out["verdict"] == expected_verdict
    page = (root / "report.html").read_text()
    assert "data:image/png;base64," in page and "http://" not in page and "https://" not in page
    # the comparison is an MLflow run linking both versions
    client = mlflow.MlflowClient(f"sqlite:///{root / catalog.MLFLOW_DB}")
    run = client.get_run(out["mlflow_run_id"])
    assert run.data.tags["compare.base"] == "v1" and run.data.tags["compare.candidate.dvc_exp"] == "cand"
    assert run.data.tags["compare.candidate.run.evaluate"] == out["candidate"]["run_ids"]["evaluate"]
    # each version is linked to the pipeline run that made its predictions (matched by DVC md5)
    runs = _runs(root)
    base_group = runs[runs["run_id"] == run.data.tags["compare.base.run.evaluate"]][
        "tags.labelcycle.pipeline_run"
    ]
    assert base_group.iloc[0] != run.data.tags["compare.candidate.pipeline_run"]


def test_dvc_exp_run_lands_in_mlflow_with_exp_name_and_git_revision(versions):
    root, _, _ = versions
    runs = _runs(root)
    exp_runs = runs[runs["tags.dvc.exp_name"] == "cand"]
    assert {"aggregate", "sample", "tune", "train_quality", "evaluate"} <= set(
        exp_runs["tags.labelcycle.stage"]
    )
    assert exp_runs["tags.labelcycle.pipeline_run"].nunique() == 1
    v1 = sh(root, "git", "rev-parse", "v1").stdout.strip()
    assert set(exp_runs["tags.dvc.baseline_rev"]) == {v1}
    assert set(exp_runs["tags.mlflow.source.git.commit"]) == {v1}
    assert (exp_runs[exp_runs["tags.labelcycle.stage"] == "sample"]["params.sample.fraction"] == "0.8").all()


def test_compare_by_mlflow_run_ids_gives_the_same_diff(versions):
    root, base_labels, cand_labels = versions
    runs = _runs(root)
    stage = runs["tags.labelcycle.stage"]
    cand_run = runs[(stage == "aggregate") & (runs["tags.dvc.exp_name"] == "cand")]["run_id"].iloc[0]
    base_run = runs[(stage == "train_quality") & runs["tags.dvc.exp_name"].isna()]["run_id"].iloc[-1]
    out = json.loads(lc(root, "compare", base_run, cand_run, "--json", "--no-log", "--n-boot", "100").stdout)
    assert out["base"]["kind"] == out["candidate"]["kind"] == "mlflow_run"
    expected = _independent_counts(base_labels, cand_labels)
    assert {k: out["dataset_diff"][k] for k in expected} == expected


def test_experiments_lists_mlflow_and_dvc_versions_together(versions):
    root, _, _ = versions
    rows = json.loads(lc(root, "experiments", "--json").stdout)
    cand = [r for r in rows if r["dvc_exp"] == "cand"]
    assert len(cand) == 1 and cand[0]["source"] == "mlflow+dvc"
    assert cand[0]["aggregate.method"] == OTHER_METHOD and cand[0]["sample.fraction"] == "0.8"
    assert cand[0]["accuracy"] is not None and len(cand[0]["curated_digest"]) == 12
    assert any(r["version"] == "workspace" for r in rows)
    table = lc(root, "experiments").stdout
    assert "cand" in table and "aggregate.method" in table


def test_experiments_workspace_row_carries_the_curate_stage_digest(versions):
    root, _, _ = versions
    rows = json.loads(lc(root, "experiments", "--json").stdout)
    (workspace,) = [r for r in rows if r["version"] == "workspace"]
    curated = json.loads((root / catalog.CURATE_REPORT).read_text())["curated_digest"]
    assert workspace["curated_digest"] == curated[:12]


def test_compare_reports_the_training_items_a_half_sample_experiment_removed(versions):
    root, _, _ = versions
    out = json.loads(lc(root, "compare", "v1", "half", "--json", "--n-boot", "100").stdout)
    base, half = set(samples["base"]["item_id"]), set(samples["half"]["item_id"])
    assert half < base and len(half) == pytest.approx(len(base) / 2, abs=1)
    assert out["dataset_diff"]["items_removed"] == 0  # the curated set is the same
    t = out["training_diff"]
    assert (
        t["items_base"],
        t["items_candidate"],
        t["items_removed"],
        t["items_added"],
        t["labels_changed"],
    ) == (len(base), len(half), len(base - half), 0, 0)
    by_label = [r for r in out["attribution"] if r["group_column"] == "label"]
    assert sum(r["removed"] for r in by_label) == len(base - half)
    assert all(r["delta"] is None or r["ci_low"] <= r["delta"] <= r["ci_high"] for r in by_label)
    assert out["candidate"]["name"] == "half" and out["candidate"]["parent_run"]


def test_every_dvc_run_opens_one_parent_run_with_its_stage_runs_nested(versions):
    root, _, _ = versions
    runs = _runs(root)
    parents = runs[runs["tags.labelcycle.kind"] == "version"]
    assert set(parents["tags.mlflow.runName"]) >= {"half", "cand"} and len(parents) == 3
    stages = runs[runs["tags.labelcycle.stage"].notna() & (runs["tags.labelcycle.kind"] != "comparison")]
    assert set(stages["tags.mlflow.parentRunId"]) <= set(parents["run_id"])
    half = parents[parents["tags.mlflow.runName"] == "half"].iloc[0]
    assert half["params.sample.fraction"] == "0.5" and half["metrics.dataset.train_sample.rows"] == len(
        samples["half"]
    )
    assert half["params.dataset.train_sample.digest"] != half["params.dataset.curated.digest"]
    assert half["metrics.macro_f1_ci_low"] <= half["metrics.macro_f1"] <= half["metrics.macro_f1_ci_high"]


@pytest.mark.skipif(
    shutil.which("chromedriver") is None, reason="needs apt-get install chromium chromium-driver"
)
def test_mlflow_ui_compare_of_the_two_experiments_shows_their_params_and_primary_metric(versions, tmp_path):
    root, _, _ = versions
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import mlflow_ui_check

    assert (
        mlflow_ui_check.main(
            ["--project", str(root), "--version", "half", "--version", "cand", "--out", str(tmp_path)]
        )
        == 0
    )


def test_compare_refuses_an_unknown_version(versions):
    root, _, _ = versions
    res = lc(root, "compare", "v1", "no-such-version", check=False)
    assert res.returncode == 2 and "unknown version 'no-such-version'" in res.stderr
