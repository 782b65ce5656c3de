"""DVC primitives: recorded hashes in the workspace and at a revision, sync checks, the remote and push."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from labelcycle import catalog
from labelcycle.versioning import dvc
from labelcycle.versioning.digest import file_md5

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, env={**os.environ, **GIT_ENV}
    ).stdout.strip()


def _commit(root: Path, message: str) -> str:
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", message)
    return _git(root, "rev-parse", "HEAD")


def _write_lock(root: Path, outs: dict[str, str]) -> None:
    lock = {
        "schema": "2.0",
        "stages": {"s": {"cmd": "x", "outs": [{"path": p, "md5": m} for p, m in outs.items()]}},
    }
    (root / catalog.DVC_LOCK).write_text(yaml.safe_dump(lock))


def _write_raw_dvc(root: Path, md5: str) -> None:
    (root / catalog.RAW_DVC).parent.mkdir(parents=True, exist_ok=True)
    (root / catalog.RAW_DVC).write_text(yaml.safe_dump({"outs": [{"path": "raw", "md5": md5}]}))


@pytest.fixture
def repo(tmp_path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    return tmp_path


def test_recorded_hashes_at_a_revision_are_what_was_committed_and_the_workspace_is_what_is_on_disk(repo):
    _write_lock(repo, {catalog.METRICS: "m1", catalog.QUALITY_MODEL: "q1.dir"})
    _write_raw_dvc(repo, "r1.dir")
    first = _commit(repo, "one")
    _write_lock(repo, {catalog.METRICS: "m2", catalog.QUALITY_MODEL: "q1.dir"})
    expected_first = {catalog.METRICS: "m1", catalog.QUALITY_MODEL: "q1.dir", catalog.RAW: "r1.dir"}
    assert dvc.recorded_hashes(repo, first) == expected_first
    assert dvc.recorded_hashes(repo) == {**expected_first, catalog.METRICS: "m2"}
    assert dvc.recorded_hashes(repo, "HEAD") == expected_first  # the change is not committed


def test_find_commit_with_outputs_finds_the_newest_commit_recording_every_wanted_hash(repo):
    _write_lock(repo, {catalog.PREDICTIONS: "p1", catalog.METRICS: "m1"})
    first = _commit(repo, "one")
    _write_lock(repo, {catalog.PREDICTIONS: "p2", catalog.METRICS: "m1"})
    second = _commit(repo, "two")
    assert dvc.find_commit_with_outputs(repo, {catalog.METRICS: "m1"}) == second
    assert dvc.find_commit_with_outputs(repo, {catalog.PREDICTIONS: "p1", catalog.METRICS: "m1"}) == first
    assert dvc.find_commit_with_outputs(repo, {catalog.PREDICTIONS: "p3"}) is None


def test_out_of_sync_names_changed_and_missing_outputs_and_trusts_present_folders(repo):
    (repo / "reports").mkdir()
    (repo / catalog.METRICS).write_text("{}")
    (repo / catalog.QUALITY_MODEL).mkdir(parents=True)
    _write_lock(
        repo,
        {
            catalog.METRICS: file_md5(repo / catalog.METRICS),
            catalog.QUALITY_MODEL: "x.dir",
            catalog.PREDICTIONS: "p1",
            catalog.ERROR_MODEL: "e.dir",
        },
    )
    assert dvc.out_of_sync(repo) == (
        f"{catalog.PREDICTIONS} missing (run `dvc checkout`)",
        f"{catalog.ERROR_MODEL} missing (run `dvc checkout`)",
    )
    (repo / catalog.METRICS).write_text('{"accuracy": 1}')
    assert f"{catalog.METRICS} changed since {catalog.DVC_LOCK}" in dvc.out_of_sync(repo)


def test_remote_status_counts_what_the_default_remote_lacks_and_push_sends_it(repo, tmp_path_factory):
    from dvc.repo import Repo

    Repo.init(str(repo))
    (repo / "data").mkdir()
    (repo / "data" / "raw.csv").write_text("a,b\n1,2\n")
    dvc.track(repo, repo / "data" / "raw.csv")
    _commit(repo, "data")
    no_remote = dvc.remote_status(repo)
    assert (no_remote.name, no_remote.total, no_remote.to_push, no_remote.missing) == (None, 1, 1, ())
    url = str(tmp_path_factory.mktemp("remote") / "store")
    dvc.configure_default_remote(repo, "r", url)
    before = dvc.remote_status(repo)
    assert (before.name, before.url, before.total, before.to_push, before.error) == ("r", url, 1, 1, None)
    assert dvc.push(repo, "r", None) == 1
    assert dvc.remote_status(repo).to_push == 0


def test_folder_error_names_a_folder_that_cannot_be_written(tmp_path):
    assert dvc.folder_error(str(tmp_path / "new" / "remote")) is None
    (tmp_path / "file").write_text("x")
    assert (
        dvc.folder_error(str(tmp_path / "file" / "remote")) == f"{tmp_path / 'file'} is not a writable folder"
    )
    assert dvc.folder_error("s3://bucket/prefix") is None
