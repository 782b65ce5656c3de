"""Ingest under a full disk or an unwritable raw folder: one clear error, nothing half-written."""

from __future__ import annotations

import errno
import os
import shutil

import pytest
from click.testing import CliRunner

from labelcycle import catalog
from labelcycle.cli import main
from labelcycle.errors import WorkspaceError
from labelcycle.readers import ColumnMap
from labelcycle.versioning import raw

GOOD = "item_id,annotator_id,label\ni1,a,ok\ni1,b,misleading\ni2,a,prohibited\n"


def _files(tmp_path) -> list[raw.BatchFile]:
    path = tmp_path / "a.csv"
    path.write_text(GOOD)
    return [raw.BatchFile("annotations", path, ColumnMap())]


def _leftovers(root) -> list[str]:
    """Everything under data/raw and the staging folder (a clean failure leaves neither)."""
    found = []
    for folder in (root / catalog.RAW, raw.staging_dir(root)):
        if folder.exists():
            found += [str(p.relative_to(root)) for p in folder.rglob("*")]
    return found


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_copying_a_file_is_a_workspace_error_and_leaves_nothing(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    monkeypatch.setattr(shutil, "copyfile", _disk_full)
    with pytest.raises(
        WorkspaceError, match=r"no space left on the device .* free some space and ingest again"
    ):
        raw.write_batch(root, _files(tmp_path), {"annotations": 3})
    assert _leftovers(root) == []


def test_disk_full_while_writing_the_manifest_leaves_nothing(tmp_path, monkeypatch):
    from pathlib import Path

    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    real_write = Path.write_text

    def write_text(self, *args, **kwargs):
        if self.name == raw.MANIFEST:
            real_write(self, '{"half":', encoding="utf-8")
            _disk_full()
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(WorkspaceError, match=r"no space left on the device"):
        raw.write_batch(root, _files(tmp_path), {"annotations": 3})
    assert _leftovers(root) == []


def test_an_unwritable_raw_folder_is_a_workspace_error_naming_it_and_leaves_no_staging(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / catalog.RAW).mkdir(parents=True)
    (root / ".dvc").mkdir()

    def denied(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(os, "rename", denied)
    with pytest.raises(WorkspaceError, match=rf"cannot write into {catalog.RAW}.*Permission denied.*chmod"):
        raw.write_batch(root, _files(tmp_path), {"annotations": 3})
    assert _leftovers(root) == []


def test_the_ingest_command_turns_a_full_disk_into_one_error_line(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    (root / catalog.PARAMS).write_text("")  # the default params
    (root / "a.csv").write_text(GOOD)
    monkeypatch.chdir(root)
    monkeypatch.setattr(shutil, "copyfile", _disk_full)
    res = CliRunner().invoke(main, ["ingest", "--annotations", "a.csv"])
    assert res.exit_code == 1, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left on the device" in errors[0]
    assert isinstance(res.exception, SystemExit)  # no other exception escaped
    assert _leftovers(root) == []


def test_a_failed_dvc_add_takes_the_new_batch_out_again_in_one_error_line(tmp_path, monkeypatch):
    from labelcycle.versioning import dvc

    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    (root / catalog.PARAMS).write_text("")
    (root / "a.csv").write_text(GOOD)
    monkeypatch.chdir(root)

    def dvc_add_fails(root, path):
        raise WorkspaceError(f"dvc add {path} failed in {root}: Unable to acquire lock.\nMost likely another")

    monkeypatch.setattr(dvc, "track", dvc_add_fails)
    res = CliRunner().invoke(main, ["ingest", "--annotations", "a.csv"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    (line,) = [x for x in res.stderr.splitlines() if x.strip()]
    assert line.startswith("error: dvc add data/raw failed") and "taken out of data/raw again" in line
    assert _leftovers(root) == []
