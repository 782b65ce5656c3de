"""Raw batches whose role is a folder of Parquet files: copied whole, digested by names and content,
verified file by file."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from labelcycle import catalog, schema
from labelcycle.errors import InputFileError, WorkspaceError
from labelcycle.readers import ColumnMap
from labelcycle.versioning import raw
from labelcycle.versioning.digest import file_sha256

PARTS = {
    "part-0.parquet": [("i1", "a", "ok"), ("i2", "a", "spam")],
    "week=2/part-1.parquet": [("i3", "b", "ok")],
}


def _folder(path: Path, parts: dict = PARTS) -> Path:
    for name, rows in parts.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        df = pd.DataFrame(rows, columns=[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL])
        df.to_parquet(path / name, index=False)
    return path


def _write(root: Path, folder: Path) -> tuple[raw.Batch, bool]:
    return raw.write_batch(root, [raw.BatchFile("annotations", folder, ColumnMap())], {"annotations": 3})


def _writable(path: Path) -> Path:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


def test_a_single_file_batch_keeps_the_digest_earlier_versions_gave_it(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("question,worker,answer\nq1,w1,ok\nq2,w2,misleading\n")
    mapping = ColumnMap(item_col="question", annotator_col="worker", label_col="answer")
    # computed by the release before folders existed (commit fedb218), for this file and mapping
    assert raw.batch_digest([raw.BatchFile("annotations", path, mapping)]) == "9e1d90112717b33d"


def test_a_folder_is_stored_as_one_folder_with_every_part_listed_byte_for_byte_and_read_only(tmp_path):
    source = _folder(tmp_path / "export")
    (source / "_SUCCESS").write_text("")
    batch, new = _write(tmp_path / "proj", source)
    assert new and batch.file("annotations") == batch.path / "annotations"
    entry = batch.manifest["files"]["annotations"]
    assert entry["format"] == "parquet" and entry["rows"] == 3 and entry["columns"] == ColumnMap().to_dict()
    assert [p["file"] for p in entry["parts"]] == sorted(PARTS)
    for part in entry["parts"]:
        stored = batch.path / "annotations" / part["file"]
        assert stored.read_bytes() == (source / part["file"]).read_bytes()
        assert part["sha256"] == file_sha256(stored) and part["bytes"] == stored.stat().st_size
        assert part["rows"] == len(PARTS[part["file"]])
        assert not stored.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert entry["bytes"] == sum(p["bytes"] for p in entry["parts"])
    assert batch.files("annotations") == [batch.path / "annotations" / name for name in sorted(PARTS)]
    assert not (batch.path / "annotations" / "_SUCCESS").exists()  # metadata, not part of the data set


def test_a_stored_folder_reads_back_as_the_source_folder_does(tmp_path):
    source = _folder(tmp_path / "export")
    batch, _ = _write(tmp_path / "proj", source)
    ann = raw.read_all(tmp_path / "proj")["annotations"]
    assert ann[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]].values.tolist() == [
        list(row) for name in sorted(PARTS) for row in PARTS[name]
    ]
    assert set(ann[schema.RAW_BATCH]) == {batch.digest}


def test_the_same_folder_twice_is_one_batch_wherever_it_lies(tmp_path):
    root = tmp_path / "proj"
    first, _ = _write(root, _folder(tmp_path / "export"))
    copy = shutil.copytree(tmp_path / "export", tmp_path / "elsewhere" / "copy")
    again, new = _write(root, copy)
    assert not new and again.digest == first.digest
    assert [p.name for p in (root / catalog.RAW).iterdir()] == [first.digest]


def test_a_renamed_added_or_changed_part_makes_another_batch(tmp_path):
    base = raw.batch_digest([raw.BatchFile("annotations", _folder(tmp_path / "base"), ColumnMap())])
    renamed = _folder(
        tmp_path / "renamed", {"part-9.parquet" if k == "part-0.parquet" else k: v for k, v in PARTS.items()}
    )
    added = _folder(tmp_path / "added", {**PARTS, "part-2.parquet": [("i4", "c", "ok")]})
    changed = _folder(
        tmp_path / "changed", {**PARTS, "part-0.parquet": [("i1", "a", "spam"), ("i2", "a", "spam")]}
    )
    digests = {
        raw.batch_digest([raw.BatchFile("annotations", folder, ColumnMap())])
        for folder in (renamed, added, changed)
    }
    assert len(digests) == 3 and base not in digests


def test_a_folder_without_parquet_files_or_with_another_format_is_refused_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match=r"empty: is a directory without \.parquet files"):
        _write(tmp_path / "proj", tmp_path / "empty")
    mixed = _folder(tmp_path / "mixed")
    (mixed / "extra.csv").write_text("item_id,annotator_id,label\ni9,z,ok\n")
    with pytest.raises(
        InputFileError, match=r"mixed: .*also holds 1 other file\(s\) \(extra\.csv\); move them out"
    ):
        _write(tmp_path / "proj", mixed)
    assert not (tmp_path / "proj" / catalog.RAW).exists()


def test_verify_finds_a_changed_a_missing_and_an_unexpected_file_inside_the_folder(tmp_path):
    root = tmp_path / "proj"
    batch, _ = _write(root, _folder(tmp_path / "export"))
    assert raw.verify_store(root) == []
    folder = batch.path / "annotations"
    pd.DataFrame({"item_id": ["i1"], "annotator_id": ["a"], "label": ["spam"]}).to_parquet(
        _writable(folder / "part-0.parquet"), index=False
    )
    _writable(folder / "week=2" / "part-1.parquet").unlink()
    (folder / "week=2" / "part-7.parquet").write_bytes(b"late")
    problems = raw.verify_store(root)
    assert {(p.batch, p.file, p.kind) for p in problems} == {
        (batch.digest, "annotations/part-0.parquet", "changed"),
        (batch.digest, "annotations/week=2/part-1.parquet", "missing"),
        (batch.digest, "annotations/week=2/part-7.parquet", "unexpected"),
    }
    assert any(
        str(p) == f"{catalog.RAW}/{batch.digest}/annotations/week=2/part-7.parquet: not in the manifest "
        "(added after ingest)"
        for p in problems
    )
    with pytest.raises(WorkspaceError, match=rf"{batch.digest}/annotations/part-0\.parquet: changed since"):
        raw.read_all(root)


def test_a_missing_folder_is_reported_once(tmp_path):
    root = tmp_path / "proj"
    batch, _ = _write(root, _folder(tmp_path / "export"))
    raw.remove_batch(batch)  # also shows a batch with a folder of read-only files can be removed
    assert not batch.path.exists()
    batch, _ = _write(root, _folder(tmp_path / "export"))
    shutil.rmtree(batch.path / "annotations")
    assert [(p.file, p.kind) for p in raw.verify_store(root)] == [("annotations", "missing")]


def test_a_manifest_edited_to_match_a_tampered_part_is_caught_by_the_batch_name(tmp_path):
    root = tmp_path / "proj"
    batch, _ = _write(root, _folder(tmp_path / "export"))
    part = _writable(batch.path / "annotations" / "part-0.parquet")
    pd.DataFrame({"item_id": ["i1"], "annotator_id": ["a"], "label": ["spam"]}).to_parquet(part, index=False)
    manifest = json.loads((batch.path / raw.MANIFEST).read_text())
    manifest["files"]["annotations"]["parts"][0]["sha256"] = file_sha256(part)
    _writable(batch.path / raw.MANIFEST).write_text(json.dumps(manifest))
    assert [(p.file, p.kind) for p in raw.verify_store(root)] == [(raw.MANIFEST, "changed")]


def test_a_part_that_changes_while_it_is_copied_leaves_nothing_behind(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    source = _folder(tmp_path / "export")
    real_copy = shutil.copyfile

    def copy_then_change(src, dst, *a, **k):
        out = real_copy(src, dst, *a, **k)
        pq.write_table(pq.read_table(src).slice(0, 1), dst)  # what a writer still appending would leave
        return out

    monkeypatch.setattr(shutil, "copyfile", copy_then_change)
    with pytest.raises(WorkspaceError, match=r"export: changed while it was being ingested.*ingest it again"):
        _write(root, source)
    assert not (root / catalog.RAW).exists() and not any(raw.staging_dir(root).iterdir())
