"""`labelcycle experiments`: the workspace and DVC-experiment rows carry the curated data set's digest."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from labelcycle import catalog
from labelcycle.cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def git(root: Path, *args: str) -> str:
    res = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, env={**os.environ, **GIT_ENV}, check=True
    )
    return res.stdout.strip()


def write_reports(root: Path, curated_digest: str) -> None:
    """The reports the pipeline leaves: aggregate.json has no curated digest, curate.json has it."""
    (root / catalog.REPORTS).mkdir(exist_ok=True)
    (root / catalog.METRICS).write_text(
        json.dumps({"accuracy": 0.8, "macro_f1": 0.7, "eval_digest": "e" * 64})
    )
    (root / catalog.AGGREGATE_REPORT).write_text(
        json.dumps({"method": "majority_vote", "labels_raw_digest": "r" * 64})
    )
    (root / catalog.CURATE_REPORT).write_text(
        json.dumps({"curated_digest": curated_digest, "action": "relabel"})
    )


def test_experiments_shows_the_curated_digest_of_workspace_and_dvc_experiment_rows(project, monkeypatch):
    write_reports(project, "c" * 64)
    git(project, "add", catalog.REPORTS)
    git(project, "commit", "-qm", "experiment outputs")
    sha = git(project, "rev-parse", "HEAD")
    git(
        project, "update-ref", "refs/exps/ab/cdef0123456789/my-exp", sha
    )  # as `dvc exp run -n my-exp` leaves it
    write_reports(project, "d" * 64)  # the workspace has moved on since
    monkeypatch.chdir(project)

    res = CliRunner().invoke(main, ["experiments", "--json"], catch_exceptions=False)

    assert res.exit_code == 0, res.output
    rows = {r["version"]: r for r in json.loads(res.stdout)}
    assert rows["my-exp"]["source"] == "dvc" and rows["my-exp"]["curated_digest"] == "c" * 12
    assert rows["workspace"]["curated_digest"] == "d" * 12


def log_old_version(client, exp_id: str, group: str, labels, preds, tmp: Path) -> str:
    """A version as projects before parent runs logged it: stage runs sharing a pipeline-run tag, no parent."""
    tags = {"labelcycle.pipeline_run": group, "mlflow.source.git.commit": "a" * 40}
    curate = client.create_run(
        exp_id, tags={**tags, "labelcycle.stage": "curate", "curated_digest": group * 4}
    )
    labels.to_parquet(tmp / "labels.parquet", index=False)
    client.log_artifact(curate.info.run_id, str(tmp / "labels.parquet"), "curated")
    evaluate = client.create_run(exp_id, tags={**tags, "labelcycle.stage": "evaluate", "eval_digest": "d1"})
    preds.to_parquet(tmp / "predictions.parquet", index=False)
    client.log_artifact(evaluate.info.run_id, str(tmp / "predictions.parquet"))
    client.log_metric(evaluate.info.run_id, "accuracy", float((preds["label"] == preds["gold_label"]).mean()))
    for run in (curate, evaluate):
        client.set_terminated(run.info.run_id)
    return evaluate.info.run_id


def test_stage_runs_of_older_projects_without_parent_runs_appear_in_experiments_and_compare(
    project, monkeypatch
):
    import mlflow
    from tests.cli.test_compare import LABELS_A, LABELS_B, predictions

    from labelcycle.tracking.runs import configure

    monkeypatch.chdir(project)
    exp_id = configure(project)
    client = mlflow.MlflowClient()
    base = log_old_version(client, exp_id, "old1", LABELS_A, predictions(90, 0.6, 0), project)
    cand = log_old_version(client, exp_id, "old2", LABELS_B, predictions(90, 0.9, 1), project)

    res = CliRunner().invoke(main, ["experiments", "--json"], catch_exceptions=False)
    rows = {r["version"]: r for r in json.loads(res.stdout)}
    assert {base, cand} <= set(rows) and rows[base]["source"] == "mlflow" and rows[base]["name"] == ""
    assert rows[cand]["curated_digest"] == "old2" * 3

    res = CliRunner().invoke(
        main, ["compare", base, cand, "--json", "--no-log", "--n-boot", "50"], catch_exceptions=False
    )
    out = json.loads(res.stdout)
    assert out["base"]["run_ids"]["evaluate"] == base and out["base"]["parent_run"] is None
    assert (out["dataset_diff"]["items_added"], out["dataset_diff"]["items_removed"]) == (1, 1)


def test_experiments_narrows_the_list_to_the_versions_named(project, monkeypatch):
    write_reports(project, "c" * 64)
    git(project, "add", catalog.REPORTS)
    git(project, "commit", "-qm", "experiment outputs")
    git(project, "update-ref", "refs/exps/ab/cdef0123456789/my-exp", git(project, "rev-parse", "HEAD"))
    monkeypatch.chdir(project)

    res = CliRunner().invoke(main, ["experiments", "my-exp", "--json"], catch_exceptions=False)

    assert [r["version"] for r in json.loads(res.stdout)] == ["my-exp"]
    unknown = CliRunner().invoke(main, ["experiments", "nope"])
    assert unknown.exit_code == 2 and "unknown version 'nope'" in unknown.output
