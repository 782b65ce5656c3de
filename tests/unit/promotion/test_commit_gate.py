"""The data-committed gate covers everything the candidate's dvc.lock depends on.

A hand-written DVC project in git: one stage whose ``dvc.lock`` records its script, the ``src`` folder,
the raw data (DVC's), its params and its output. The gate must fail on an uncommitted ``params.yaml``,
stage script or ``src`` file, and on a commit whose ``params.yaml`` or code disagrees with its own
``dvc.lock``, whether the candidate is the workspace or a git revision.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from labelcycle import catalog
from labelcycle.promotion import gates as g
from labelcycle.promotion.facts import commit_facts
from labelcycle.versioning import dvc

ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}
SCRIPT = "print('train')\n"
OUT = "model\n"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _git(root: Path, *args: str) -> str:
    res = subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, env={**os.environ, **ENV}
    )
    return res.stdout.strip()


def _commit(root: Path, message: str = "c") -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", message)
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def project(tmp_path) -> Path:
    """A project whose HEAD describes its one stage exactly, and whose workspace matches HEAD."""
    root = tmp_path / "proj"
    (root / "stages").mkdir(parents=True)
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "stages" / "train.py").write_text(SCRIPT)
    (root / "src" / "pkg" / "m.py").write_text("x = 1\n")
    (root / catalog.PARAMS).write_text(yaml.safe_dump({"train": {"rounds": 10, "lr": 0.1}, "other": 1}))
    (root / catalog.DVC_YAML).write_text("stages: {train: {cmd: python stages/train.py}}\n")
    (root / catalog.RAW_DVC).write_text(yaml.safe_dump({"outs": [{"path": "raw", "md5": "r.dir"}]}))
    (root / "model.txt").write_text(OUT)
    (root / ".gitignore").write_text("model.txt\n")
    lock = {
        "schema": "2.0",
        "stages": {
            "train": {
                "cmd": "python stages/train.py",
                "deps": [
                    {"path": "data/raw", "hash": "md5", "md5": "r.dir"},
                    {"path": "src/pkg", "hash": "md5", "md5": "s.dir"},
                    {"path": "stages/train.py", "hash": "md5", "md5": _md5(SCRIPT)},
                ],
                "params": {catalog.PARAMS: {"train": {"rounds": 10, "lr": 0.1}}},
                "outs": [{"path": "model.txt", "hash": "md5", "md5": _md5(OUT)}],
            }
        },
    }
    (root / catalog.DVC_LOCK).write_text(yaml.safe_dump(lock))
    _git(root, "init", "-q", "-b", "main")
    _commit(root, "describes its stage")
    return root


def _gate(root: Path, rev: str | None = None) -> g.Gate:
    head = _git(root, "rev-parse", "HEAD")
    return g.committed_gate(commit_facts(root, rev or head, check_workspace=rev is None))


def test_a_commit_that_describes_its_stage_passes_as_workspace_and_as_revision(project):
    assert _gate(project).passed, _gate(project).evidence
    assert _gate(project, _git(project, "rev-parse", "HEAD")).passed


def test_the_git_held_dependencies_are_the_stage_code_not_dvc_data(project):
    assert dvc.source_deps(project) == ("src/pkg", "stages/train.py")


def test_an_uncommitted_params_yaml_fails_the_commit_gate(project):
    (project / catalog.PARAMS).write_text(yaml.safe_dump({"train": {"rounds": 10, "lr": 0.1}, "other": 2}))
    gate = _gate(project)
    assert not gate.passed and f"uncommitted changes in {catalog.PARAMS}" in gate.evidence


@pytest.mark.parametrize(
    "path", ["stages/train.py", "src/pkg/m.py", "src/pkg/new.py", catalog.DVC_YAML], ids=str
)
def test_an_uncommitted_stage_script_src_file_or_dvc_yaml_fails_the_commit_gate(project, path):
    (project / path).write_text("changed\n")
    gate = _gate(project)
    assert not gate.passed and f"uncommitted changes in {path}" in gate.evidence


def test_a_commit_whose_params_yaml_disagrees_with_its_dvc_lock_fails_as_workspace_and_as_revision(project):
    (project / catalog.PARAMS).write_text(yaml.safe_dump({"train": {"rounds": 99, "lr": 0.1}, "other": 1}))
    rev = _commit(project, "params changed, no dvc repro")
    for gate in (_gate(project), _gate(project, rev)):
        assert not gate.passed
        assert (
            f"disagrees with its {catalog.DVC_LOCK}: stage train: params.yaml train.rounds = 99 (recorded 10)"
            in (gate.evidence)
        )


def test_a_commit_whose_stage_script_differs_from_its_dvc_lock_fails(project):
    (project / "stages" / "train.py").write_text("print('other')\n")
    rev = _commit(project, "code changed, no dvc repro")
    gate = _gate(project, rev)
    assert (
        not gate.passed and f"stages/train.py differs from what {catalog.DVC_LOCK} recorded" in gate.evidence
    )


def test_a_dependency_missing_from_the_commit_fails_the_gate(project):
    _git(project, "rm", "-q", "-r", "src")
    rev = _commit(project, "src gone")
    gate = _gate(project, rev)
    assert not gate.passed and "not committed: src/pkg" in gate.evidence


def test_an_output_written_after_dvc_lock_fails_the_gate_so_an_unrecorded_model_cannot_be_promoted(project):
    # `dvc repro` killed after a stage wrote (and registered) a new model but before dvc.lock recorded it:
    # the workspace output no longer matches dvc.lock, and the commit gate refuses the candidate
    (project / "model.txt").write_text("a model dvc.lock never recorded\n")
    gate = _gate(project)
    assert not gate.passed
    assert f"workspace differs from {catalog.DVC_LOCK}" in gate.evidence and "model.txt" in gate.evidence
