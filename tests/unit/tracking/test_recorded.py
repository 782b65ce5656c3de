"""A model version registered by a dvc run killed before dvc.lock was written is found and marked unpromotable
by the next train_quality run; versions some dvc.lock records, versions of other workspaces and versions
holding an alias are left alone."""

from __future__ import annotations

import json

import mlflow
import yaml
from tests.conftest import sh

from labelcycle import catalog
from labelcycle.tracking.recorded import (
    TAG_RECORDED_IN,
    TAG_REPORT_MD5,
    TAG_UNRECORDED,
    TAG_WORKSPACE,
    mark_unrecorded,
    workspace_id,
)

NAME = "labelcycle-quality"


def _lock(root, md5: str) -> None:
    stages = {
        "train_quality": {
            "cmd": "python stages/train_quality.py",
            "outs": [{"path": catalog.TRAIN_QUALITY_REPORT, "hash": "md5", "md5": md5, "size": 10}],
        }
    }
    (root / catalog.DVC_LOCK).write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def _commit(root, message: str) -> None:
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-q", "-m", message)


def _version(client, tags: dict[str, str]) -> str:
    with mlflow.start_run() as run:
        mlflow.log_dict({"x": 1}, "model/MLmodel.json")
    v = client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    for key, value in tags.items():
        client.set_model_version_tag(NAME, v.version, key, value)
    return str(v.version)


def test_only_this_workspaces_versions_no_dvc_lock_records_are_tagged_unrecorded_once(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    sh(root, "git", "init", "-q", "-b", "main")
    sh(root, "git", "config", "user.email", "t@example.com")
    sh(root, "git", "config", "user.name", "t")
    (root / "README").write_text("x\n")
    _commit(root, "init")
    client = mlflow.MlflowClient()
    assert mark_unrecorded(root, NAME) == []  # nothing registered yet
    client.create_registered_model(NAME)
    me = workspace_id(root)
    committed = _version(client, {TAG_WORKSPACE: me, TAG_REPORT_MD5: "a" * 32})
    _lock(root, "a" * 32)
    _commit(root, "dataset v1")
    v1_commit = sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    in_experiment = _version(client, {TAG_WORKSPACE: me, TAG_REPORT_MD5: "d" * 32})
    _lock(root, "d" * 32)
    _commit(root, "an experiment")
    sh(root, "git", "update-ref", "refs/exps/ab/cd/exp-1", "HEAD")
    exp_commit = sh(root, "git", "rev-parse", "HEAD").stdout.strip()
    sh(root, "git", "reset", "-q", "--hard", "HEAD~1")
    in_workspace = _version(client, {TAG_WORKSPACE: me, TAG_REPORT_MD5: "b" * 32})
    _lock(root, "b" * 32)  # not committed: the workspace's dvc.lock records it
    killed_before_report = _version(client, {TAG_WORKSPACE: me})
    killed_before_lock = _version(client, {TAG_WORKSPACE: me, TAG_REPORT_MD5: "c" * 32})
    other_workspace = _version(client, {TAG_WORKSPACE: "elsewhere:/proj", TAG_REPORT_MD5: "e" * 32})
    production = _version(client, {TAG_WORKSPACE: me, TAG_REPORT_MD5: "f" * 32})
    client.set_registered_model_alias(NAME, "production", production)
    before_this_feature = _version(client, {})

    assert mark_unrecorded(root, NAME) == [killed_before_report, killed_before_lock]
    assert mark_unrecorded(root, NAME) == []  # tagged once
    tags = {str(v.version): v.tags for v in client.search_model_versions(f"name = '{NAME}'")}
    for v in (committed, in_experiment, in_workspace, other_workspace, production, before_this_feature):
        assert TAG_UNRECORDED not in tags[v], v
    # found in a commit: tagged with it, and never looked up again; the workspace's lock is read each time
    assert tags[committed][TAG_RECORDED_IN] == v1_commit
    assert tags[in_experiment][TAG_RECORDED_IN] == exp_commit
    assert TAG_RECORDED_IN not in tags[in_workspace]
    marked = client.get_model_version(NAME, killed_before_lock)
    assert "interrupted" in marked.tags[TAG_UNRECORDED] and "cannot be promoted" in marked.description
    json.dumps(tags)  # tags stay plain strings
