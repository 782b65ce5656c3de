"""Raw batches: content-addressed copies whose column mapping travels with them."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from labelcycle import catalog, schema
from labelcycle.errors import WorkspaceError
from labelcycle.readers import ColumnMap
from labelcycle.versioning import raw
from labelcycle.versioning.digest import file_sha256

MAPPING = ColumnMap(item_col="question", annotator_col="worker", label_col="answer")


def _delivery(tmp_path, columns: ColumnMap) -> list[raw.BatchFile]:
    path = tmp_path / "answers.csv"
    path.write_text("question,worker,answer\nq1,w1,ok\nq2,w2,misleading\n")
    return [raw.BatchFile("annotations", path, columns)]


def test_a_batch_with_a_column_mapping_reads_back_under_the_contract_names(tmp_path):
    root = tmp_path / "proj"
    batch, new = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert new and batch.path == root / catalog.RAW / batch.digest
    tables = raw.read_all(root)
    ann = tables["annotations"]
    assert ann[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]].values.tolist() == [
        ["q1", "w1", "ok"],
        ["q2", "w2", "misleading"],
    ]
    assert set(ann[schema.RAW_BATCH]) == {batch.digest}
    assert tables["items"] is None and tables["gold"] is None


def test_the_same_delivery_is_one_batch_and_a_new_mapping_is_another(tmp_path):
    root = tmp_path / "proj"
    first, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    again, new = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert not new and again.digest == first.digest
    swapped = ColumnMap(item_col="worker", annotator_col="question", label_col="answer")
    other, new = raw.write_batch(root, _delivery(tmp_path, swapped), {"annotations": 2})
    assert new and other.digest != first.digest
    assert [b.digest for b in raw.list_batches(root)] == sorted(
        [first.digest, other.digest], key=lambda d: raw.load_batch(root / catalog.RAW / d).ingested_at
    )


def test_batch_files_are_read_only(tmp_path):
    batch, _ = raw.write_batch(tmp_path / "proj", _delivery(tmp_path, MAPPING), {"annotations": 2})
    for child in batch.path.iterdir():
        assert not child.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


# -- verification ----------------------------------------------------------------------------------------


def _tamper(path, text: str) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.write_text(text)


def test_reading_the_store_refuses_a_batch_edited_in_place_naming_it_and_what_to_do(tmp_path):
    root = tmp_path / "proj"
    batch, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    _tamper(batch.file("annotations"), "question,worker,answer\nq1,w1,misleading\nq2,w2,misleading\n")
    pattern = rf"{batch.digest}/annotations\.csv: changed since it was ingested.*dvc checkout"
    with pytest.raises(WorkspaceError, match=pattern):
        raw.read_all(root)


def test_verify_store_lists_changed_missing_and_unexpected_files_and_nothing_for_a_clean_store(tmp_path):
    root = tmp_path / "proj"
    first, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert raw.verify_store(root) == []
    swapped = ColumnMap(item_col="worker", annotator_col="question", label_col="answer")
    second, _ = raw.write_batch(root, _delivery(tmp_path, swapped), {"annotations": 2})
    _tamper(first.file("annotations"), "question,worker,answer\nq1,w1,misleading\n")
    second.file("annotations").chmod(stat.S_IRUSR | stat.S_IWUSR)
    second.file("annotations").unlink()
    (second.path / "notes.txt").write_text("hello")
    problems = {(p.batch, p.file, p.kind) for p in raw.verify_store(root)}
    assert problems == {
        (first.digest, "annotations.csv", "changed"),
        (second.digest, "annotations.csv", "missing"),
        (second.digest, "notes.txt", "unexpected"),
    }


def test_a_manifest_edited_to_match_a_tampered_file_is_caught_by_the_batch_name(tmp_path):
    root = tmp_path / "proj"
    batch, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    data = batch.file("annotations")
    _tamper(data, "question,worker,answer\nq1,w1,misleading\n")
    manifest = json.loads((batch.path / raw.MANIFEST).read_text())
    manifest["files"]["annotations"]["sha256"] = file_sha256(data)
    manifest["files"]["annotations"]["bytes"] = data.stat().st_size
    _tamper(batch.path / raw.MANIFEST, json.dumps(manifest))
    assert [(p.file, p.kind) for p in raw.verify_store(root)] == [(raw.MANIFEST, "changed")]


# -- writing: staged outside data/raw, atomic, race-safe -----------------------------------------------


def test_a_batch_is_staged_outside_the_raw_folder(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    seen = []
    real_copy = shutil.copyfile

    def copy_and_look(src, dst, *a, **k):
        seen.append(dst)
        raw_dir = root / catalog.RAW
        seen.extend(raw_dir.iterdir() if raw_dir.exists() else [])
        return real_copy(src, dst, *a, **k)

    monkeypatch.setattr(shutil, "copyfile", copy_and_look)
    batch, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert seen and not any(str(p).startswith(str(root / catalog.RAW)) for p in seen)
    assert [p.name for p in (root / catalog.RAW).iterdir()] == [batch.digest]


def test_the_loser_of_a_race_finds_the_identical_batch_and_reports_no_new_batch(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    files = _delivery(tmp_path, MAPPING)
    real_stage = raw.stage_batch

    def stage_while_another_process_wins(*args, **kwargs):
        staged = real_stage(*args, **kwargs)
        monkeypatch.setattr(raw, "stage_batch", real_stage)
        raw.write_batch(root, files, {"annotations": 2})  # the other ingest renames its copy first
        return staged

    monkeypatch.setattr(raw, "stage_batch", stage_while_another_process_wins)
    batch, new = raw.write_batch(root, files, {"annotations": 2})
    assert not new
    assert [p.name for p in (root / catalog.RAW).iterdir()] == [batch.digest]
    assert not any(raw.staging_dir(root).iterdir())


def test_stale_temporary_folders_of_dead_ingests_are_removed_by_the_next_one(tmp_path):
    root = tmp_path / "proj"
    (root / ".dvc").mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stale_staging = raw.staging_dir(root) / f"0123456789abcdef-{pid}"
    stale_staging.mkdir(parents=True)
    (stale_staging / "annotations.csv").write_text("half")
    old_style = root / catalog.RAW / f".tmp-0123456789abcdef-{pid}"  # left inside data/raw by older versions
    old_style.mkdir(parents=True)
    live = raw.staging_dir(root) / f"fedcba9876543210-{os.getpid()}"  # an ingest running right now
    live.mkdir()
    raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert not stale_staging.exists() and not old_style.exists()
    assert live.exists()


def test_declared_na_values_are_recorded_so_rereading_the_batch_gives_the_same_table(tmp_path):
    root = tmp_path / "proj"
    path = tmp_path / "a.csv"
    path.write_text("item_id,annotator_id,label\ni1,a,ok\ni2,b,NA\ni3,c,none\n")
    columns = ColumnMap(na_values=("NA",))
    batch, _ = raw.write_batch(root, [raw.BatchFile("annotations", path, columns)], {"annotations": 3})
    assert batch.manifest["files"]["annotations"]["columns"]["na_values"] == ["NA"]
    assert raw.read_all(root)["annotations"]["label"].tolist() == ["ok", "", "none"]


def test_no_new_batch_is_written_while_another_batch_differs_from_its_manifest(tmp_path):
    root = tmp_path / "proj"
    first, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    _tamper(first.file("annotations"), "question,worker,answer\nq1,w1,misleading\n")
    swapped = ColumnMap(item_col="worker", annotator_col="question", label_col="answer")
    with pytest.raises(WorkspaceError, match=rf"{first.digest}/annotations\.csv: changed.*nothing was added"):
        raw.write_batch(root, _delivery(tmp_path, swapped), {"annotations": 2})
    assert [p.name for p in (root / catalog.RAW).iterdir()] == [first.digest]
