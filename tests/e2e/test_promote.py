"""Promotion end to end: real `dvc repro`, real MLflow store and registry, real git tags and DVC remote.

Three candidates are trained on one small demo project, through existing params only:

* first release: a quick model (``train_quality.n_estimators: 12``), promoted (no production yet);
* clearly worse: 60 rounds, trained on a 5% sample of the curated training data (``sample.fraction:
  0.05``), refused;
* better: 60 rounds on all the curated training data, promoted.

The primary metric is ``log_loss`` here: on this demo every model's accuracy sits at the majority-class
rate (about 0.70 on 150 eval items), so accuracy cannot tell these models apart at any useful margin,
whereas the paired log-loss interval separates them clearly. All gold items form the eval split
(``split.eval_fraction: 1.0``) to make it as large as the small demo allows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from tests.conftest import ingest_demo

# the second full-pipeline e2e: slow suite (promotion logic is covered in the default suite by
# tests/unit/promotion against real git, DVC and MLflow)
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "labelcycle-quality"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def sh(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    if ok:
        assert res.returncode == 0, f"{args} failed:\n{res.stdout}\n{res.stderr}"
    return res


def lc(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    return sh(cwd, sys.executable, "-m", "labelcycle.cli", *args, ok=ok)


def set_params(root: Path, **sections: dict) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def train_and_commit(root: Path, message: str, **sections: dict) -> None:
    set_params(root, **sections)
    sh(root, "dvc", "repro", "-q")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", message)


def snapshot(root: Path, uri: str) -> dict:
    """Everything a promotion may change: aliases, model-version tags, git tags, release/audit records."""
    client = mlflow.MlflowClient(uri)
    versions = {v.version: dict(v.tags) for v in client.search_model_versions(f"name='{MODEL}'")}
    aliases = dict(client.get_registered_model(MODEL).aliases)
    tags = sh(root, "git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags").stdout
    exp = client.get_experiment_by_name("labelcycle-releases")
    records = len(client.search_runs([exp.experiment_id])) if exp else 0
    return {"aliases": aliases, "version_tags": versions, "git_tags": tags, "records": records}


@pytest.fixture(scope="module")
def project(tmp_path_factory, project_factory):
    root = project_factory(tmp_path_factory.mktemp("promote") / "proj")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    (root / ".gitignore").write_text("mlflow.db\nmlartifacts/\ndemo/\noptuna.db\n*.parquet\n")
    set_params(
        root,
        split={"eval_fraction": 1.0},
        tune={"n_trials": 1, "n_estimators": 60, "n_jobs": 1},
        train_error_model={"features": {"quality_rounds": 40}, "n_jobs": 1},
        train_quality={"n_estimators": 12, "n_jobs": 1, "use_tuned": False},
        evaluate={"n_boot": 100, "primary_metric": "log_loss"},
        promote={"n_boot": 300},
    )
    ingest_demo(root, 3000, 30, 1)
    train_and_commit(root, "first release candidate")
    return root, uri


def test_promote_refuse_promote_rollback(project, monkeypatch):
    root, uri = project
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the autouse fixture gives each test its own store
    client = mlflow.MlflowClient(uri)

    # dry run: the plan with every gate, and no change at all
    dry = lc(root, "promote", "--dry-run")
    assert "[n/a ] non-inferiority" in dry.stdout and "would change" in dry.stdout
    assert "dry run: nothing was changed" in dry.stdout
    assert not client.get_registered_model(MODEL).aliases and not (root.parent / "proj-dvc-remote").exists()

    # first release: everything that applies is checked; alias, tags, git tag, remote, records
    first = lc(root, "promote")
    assert "promoted dataset/v1" in first.stdout
    v1 = client.get_model_version_by_alias(MODEL, "production")
    assert v1.tags["labelcycle.release"] == "dataset/v1"
    head = sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    assert v1.tags["labelcycle.git_rev"] == head
    assert sh(root, "git", "rev-parse", "dataset/v1^{commit}").stdout.strip() == head
    assert any((root.parent / "proj-dvc-remote").rglob("*")), "data pushed to the embedded local remote"
    status = json.loads(lc(root, "status", "--json").stdout)
    assert status["release"] == "dataset/v1" and status["models"][0]["version"] == str(v1.version)
    assert status["dataset"]["dvc_hashes"]["data/raw"].endswith(".dir")
    assert status["lineage"]["raw_batches"] and "ci_low" in status["evaluation"]["metrics"]["accuracy"]

    # the same release again: a no-op that writes nothing
    before = snapshot(root, uri)
    again = lc(root, "promote")
    assert "no-op" in again.stdout and snapshot(root, uri) == before

    # a clearly worse candidate (5% sample) is refused, naming the gate; nothing changes
    train_and_commit(root, "5% sample", train_quality={"n_estimators": 60}, sample={"fraction": 0.05})
    before = snapshot(root, uri)
    worse = lc(root, "promote", ok=False)
    assert worse.returncode == 3, worse.stdout + worse.stderr
    assert "[FAIL] non-inferiority: log_loss" in worse.stdout
    assert "gate(s) non-inferiority" in worse.stderr and "nothing was changed" in worse.stderr
    assert snapshot(root, uri) == before
    assert "--reason" in lc(root, "promote", "--force", ok=False).stderr
    assert snapshot(root, uri) == before

    # the commit gate covers params.yaml and cannot be forced: an uncommitted params change is refused
    params = (root / "params.yaml").read_text()
    set_params(root, promote={"margin": 1.0})
    forced = lc(root, "promote", "--force", "--reason", "hurry", ok=False)
    assert forced.returncode == 3, forced.stdout + forced.stderr
    assert "[FAIL] data-committed: uncommitted changes in params.yaml" in forced.stdout
    assert "--force cannot override data-committed" in forced.stdout
    assert forced.stderr.count("error:") == 1 and "Traceback" not in forced.stderr
    assert snapshot(root, uri) == before
    (root / "params.yaml").write_text(params)

    # a better candidate is promoted
    train_and_commit(root, "full model", sample={"fraction": 1.0})
    before_v2 = snapshot(root, uri)
    better = lc(root, "promote")
    assert "[PASS] non-inferiority" in better.stdout and "promoted dataset/v2" in better.stdout
    v2 = client.get_model_version_by_alias(MODEL, "production")
    assert v2.version != v1.version and v2.tags["labelcycle.release"] == "dataset/v2"

    # models:/...@production serves exactly the promoted run's per-item predictions
    eval_ids = pd.read_parquet(root / "reports/predictions.parquet")["item_id"]
    # read like labelcycle reads it: only an empty cell is missing (the demo's region "NA" is a value)
    items = pd.read_csv(
        root / "demo/items.csv", dtype={"item_id": str}, keep_default_na=False, na_values=[""]
    )
    items[items["item_id"].isin(eval_ids)].to_csv(root / "eval_items.csv", index=False)
    lc(root, "predict", "eval_items.csv", "-o", "served.parquet", "--model", f"models:/{MODEL}@production")
    served = pd.read_parquet(root / "served.parquet").set_index("item_id").sort_index()
    promoted = pd.read_parquet(root / "reports/predictions.parquet").set_index("item_id").sort_index()
    pd.testing.assert_frame_equal(served, promoted[served.columns], check_exact=False, rtol=1e-12)

    # rollback restores aliases, model-version tags and git tags exactly; audited
    back = lc(root, "rollback", "--reason", "test")
    assert "rolled back to dataset/v1" in back.stdout
    after = snapshot(root, uri)
    assert {k: after[k] for k in ("aliases", "version_tags", "git_tags")} == {
        k: before_v2[k] for k in ("aliases", "version_tags", "git_tags")
    }
    assert json.loads(lc(root, "status", "--json").stdout)["release"] == "dataset/v1"
    exp = client.get_experiment_by_name("labelcycle-releases")
    audits = client.search_runs([exp.experiment_id], "tags.`labelcycle.kind` = 'audit'")
    assert sorted(r.data.tags["labelcycle.action"] for r in audits) == ["promote", "promote", "rollback"]
    assert (
        next(r for r in audits if r.data.tags["labelcycle.action"] == "rollback").data.tags[
            "labelcycle.reason"
        ]
        == "test"
    )
    # the gates judged evaluate.primary_metric, and the audit record says so
    second = next(r for r in audits if r.data.tags["labelcycle.release"] == "dataset/v2")
    plan = json.loads(
        Path(client.download_artifacts(second.info.run_id, "plan.json", str(root.parent))).read_text()
    )
    assert plan["metric"] == "log_loss" and plan["actions"][-1]["kind"] == "audit-record"
    # dataset/v1 was the first release: there is nothing before it
    assert "first release" in lc(root, "rollback", ok=False).stderr
