"""Git primitives against a real repository in tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labelcycle.errors import WorkspaceError
from labelcycle.versioning import git

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def _commit(root: Path, files: dict[str, str], message: str) -> str:
    env = {**os.environ, **GIT_ENV}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", message], cwd=root, check=True, env=env)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=tmp_path, check=True)
    return tmp_path


def test_git_returns_the_output_or_none_and_raises_a_workspace_error_with_check(repo):
    first = _commit(repo, {"a.txt": "1"}, "one")
    assert git.git(repo, "rev-parse", "HEAD") == first == git.head_commit(repo)
    assert git.git(repo, "rev-parse", "no-such-rev") is None
    with pytest.raises(WorkspaceError, match=r"git rev-parse no-such-rev failed in .*"):
        git.git(repo, "rev-parse", "no-such-rev", check=True)


def test_head_commit_and_resolve_rev_are_none_before_the_first_commit(repo):
    assert git.head_commit(repo) is None and git.resolve_rev(repo, "HEAD") is None


def test_show_file_reads_bytes_at_a_revision_and_none_where_absent(repo):
    first = _commit(repo, {"dvc.lock": "one\n"}, "one")
    _commit(repo, {"dvc.lock": "two\n"}, "two")
    assert git.show_file(repo, first, "dvc.lock") == b"one\n"
    assert git.show_file(repo, "HEAD", "dvc.lock") == b"two\n"
    assert git.show_file(repo, first, "missing.txt") is None
    assert git.resolve_rev(repo, "HEAD~1") == first and git.resolve_rev(repo, "nope") is None


def test_set_tag_creates_and_deletes_annotated_tags_never_moves_one_and_tags_lists_them_peeled(repo):
    first = _commit(repo, {"a.txt": "1"}, "one")
    second = _commit(repo, {"a.txt": "2"}, "two")
    git.set_tag(repo, "dataset/v1", first, "first release")
    git.set_tag(repo, "dataset/v2", first)
    git.set_tag(repo, "other", second)
    assert git.tags(repo, "dataset/v") == {"dataset/v1": first, "dataset/v2": first}
    assert git.git(repo, "cat-file", "-t", "dataset/v1") == "tag"  # annotated
    git.set_tag(repo, "dataset/v2", first)  # already there: nothing to do
    with pytest.raises(WorkspaceError, match="dataset/v2 already points at .* never moved"):
        git.set_tag(repo, "dataset/v2", second)
    assert git.tag_commit(repo, "dataset/v2") == first
    git.set_tag(repo, "dataset/v1", None)
    assert git.tags(repo, "dataset/v") == {"dataset/v2": first}
    with pytest.raises(WorkspaceError, match="dataset/v1"):
        git.set_tag(repo, "dataset/v1", None)


def test_dirty_paths_names_changed_staged_and_untracked_files_among_those_asked(repo):
    _commit(repo, {"dvc.lock": "1", "data/raw.dvc": "1", "other.txt": "1"}, "one")
    assert git.dirty_paths(repo, ("dvc.lock", "data/raw.dvc")) == ()
    (repo / "dvc.lock").write_text("2")  # unstaged: porcelain line starts with a space
    (repo / "other.txt").write_text("2")
    assert git.dirty_paths(repo, ("dvc.lock", "data/raw.dvc")) == ("dvc.lock",)
    (repo / "data" / "raw.dvc").unlink()
    (repo / "new.dvc").write_text("x")
    assert git.dirty_paths(repo, ("dvc.lock", "data/raw.dvc", "new.dvc")) == (
        "data/raw.dvc",
        "dvc.lock",
        "new.dvc",
    )


def test_dirty_paths_covers_folders_renames_and_a_path_behind_a_committed_symlink(repo, tmp_path_factory):
    target = tmp_path_factory.mktemp("outside")
    (target / "m.py").write_text("x")
    (repo / "src").mkdir()
    (repo / "src" / "pkg").symlink_to(target)
    _commit(repo, {"stages/a.py": "1", "old.py": "1", "params.yaml": "a: 1"}, "one")
    assert git.dirty_paths(repo, ("stages", "src", "src/pkg/m.py", "params.yaml")) == ()
    (repo / "stages" / "a.py").write_text("2")
    (repo / "stages" / "new.py").write_text("new")
    (repo / "params.yaml").write_text("a: 2")
    git.git(repo, "mv", "old.py", "renamed.py", check=True)
    assert git.dirty_paths(repo, ("stages", "src/pkg/m.py", "params.yaml")) == (
        "params.yaml",
        "stages/a.py",
        "stages/new.py",
    )
    assert git.dirty_paths(repo, ("old.py",)) == ("old.py",)


def test_commits_touching_lists_the_commits_that_changed_a_path_newest_first(repo):
    first = _commit(repo, {"dvc.lock": "1"}, "one")
    _commit(repo, {"a.txt": "1"}, "unrelated")
    third = _commit(repo, {"dvc.lock": "2"}, "three")
    assert git.commits_touching(repo, "dvc.lock") == [third, first]
    assert git.list_files(repo, first) == ["dvc.lock"]
