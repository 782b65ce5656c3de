"""`labelcycle experiments`: the workspace and DVC-experiment rows carry the curated data set's digest."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

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
    reports = root / "reports"
    reports.mkdir(exist_ok=True)
    (reports / "metrics.json").write_text(
        json.dumps({"accuracy": 0.8, "macro_f1": 0.7, "eval_digest": "e" * 64})
    )
    (reports / "aggregate.json").write_text(
        json.dumps({"method": "majority_vote", "labels_raw_digest": "r" * 64})
    )
    (reports / "curate.json").write_text(json.dumps({"curated_digest": curated_digest, "action": "relabel"}))


def test_experiments_shows_the_curated_digest_of_workspace_and_dvc_experiment_rows(project, monkeypatch):
    write_reports(project, "c" * 64)
    git(project, "add", "reports")
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
