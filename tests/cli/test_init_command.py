"""`labelcycle init DIR`: a git + DVC project with the pipeline's files and a first commit; a folder that
is not empty is refused unless --force."""

from __future__ import annotations

from tests.conftest import run_cli, sh

from labelcycle import catalog
from labelcycle.project import project_files


def test_init_creates_a_committed_git_and_dvc_project_with_the_pipeline_files(tmp_path):
    res = run_cli(tmp_path, "init", "proj")
    assert res.returncode == 0, res.stderr
    root = tmp_path / "proj"
    for rel, text in project_files().items():
        assert (root / rel).read_text() == text, rel
    assert (root / ".dvc" / "config").exists() and not (root / "data").exists()  # no demo data
    tracked = set(sh(root, "git", "ls-files").stdout.split())
    assert set(project_files()) <= tracked and ".dvc/config" in tracked
    assert sh(root, "git", "status", "--porcelain").stdout == ""  # everything is in the first commit
    assert "autostage = true" in (root / ".dvc" / "config").read_text()
    assert "dvc repro" in res.stdout and "labelcycle ingest" in res.stdout


def test_init_refuses_a_folder_that_is_not_empty_and_names_force(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    res = run_cli(tmp_path, "init", "proj")
    assert res.returncode == 2
    assert "not empty" in res.stderr and "--force" in res.stderr and "Traceback" not in res.stderr
    assert sorted(p.name for p in (tmp_path / "proj").iterdir()) == ["notes.txt"]


def test_init_force_writes_the_project_into_a_folder_that_is_not_empty_and_keeps_its_files(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "notes.txt").write_text("mine")
    res = run_cli(tmp_path, "init", "proj", "--force")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "proj" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "proj" / catalog.DVC_YAML).exists()
