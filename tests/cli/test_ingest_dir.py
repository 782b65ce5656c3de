"""labelcycle ingest --annotations DIR: a directory of Parquet files is one delivery, stored whole, checked
without being loaded, and curated by the ingest stage exactly as the same rows in one file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from tests.cli.test_ingest import tree_state
from tests.conftest import dvc, make_project, run_cli, set_params

from labelcycle import catalog
from labelcycle.versioning import raw

# a vendor's export: its own column names, a repeat, an unknown label, an empty id, a declared marker
ROWS = [
    ("q1", "w1", "ok"),
    ("q1", "w2", "misleading"),
    ("q2", "w1", "prohibited"),
    ("q2", "w3", "spam"),
    ("", "w2", "ok"),
    ("q3", "w3", "N/A"),
    ("q3", "w1", "ok"),
    ("q1", "w1", "misleading"),
    ("q4", "w2", "ok"),
]
COLUMNS = ["question", "worker", "answer"]
MAPPING = [
    "--item-col",
    "question",
    "--annotator-col",
    "worker",
    "--label-col",
    "answer",
    "--na-values",
    "N/A",
]


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


def _export(folder: Path) -> Path:
    """ROWS split over three parts (one in a partition folder) plus Spark's marker file; the folder is read
    in file-name order, which is ROWS' order (that order decides which of two judgements is the later)."""
    (folder / "week=2").mkdir(parents=True)
    _frame(ROWS[:4]).to_parquet(folder / "part-0.parquet", index=False)
    _frame(ROWS[4:7]).to_parquet(folder / "part-1.parquet", index=False)
    _frame(ROWS[7:]).to_parquet(folder / "week=2" / "part-2.parquet", index=False)
    (folder / "_SUCCESS").write_text("")
    return folder


def _curated(project: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ingest stage's clean annotations and quarantine, without the columns naming the batch and file."""
    provenance = ["raw_batch", "_source_file", "source_file"]
    ann = pd.read_parquet(project / catalog.ANNOTATIONS)
    quarantine = pd.read_parquet(project / catalog.QUARANTINE)
    return (
        ann.drop(columns=[c for c in provenance if c in ann.columns]),
        quarantine.drop(columns=[c for c in provenance if c in quarantine.columns]),
    )


@pytest.mark.slow
def test_a_parquet_directory_ingested_then_curated_gives_the_clean_annotations_of_the_same_rows_in_one_file(
    tmp_path,
):
    as_dir, as_file = make_project(tmp_path / "dir"), make_project(tmp_path / "file")
    for project in (as_dir, as_file):
        set_params(project, ingest={"labels": []})  # both discover the labels: from the folder, from the file
    _export(tmp_path / "export")
    _frame(ROWS).to_parquet(tmp_path / "all.parquet", index=False)
    res = run_cli(as_dir, "ingest", "--annotations", str(tmp_path / "export"), *MAPPING)
    assert res.returncode == 0, res.stderr
    assert "annotations: 9 rows in 3 Parquet file(s), 8 with a known label" in res.stdout
    assert "left out 1 metadata file(s): _SUCCESS" in res.stdout
    assert (
        run_cli(as_file, "ingest", "--annotations", str(tmp_path / "all.parquet"), *MAPPING).returncode == 0
    )
    labels = [yaml.safe_load((p / catalog.PARAMS).read_text())["ingest"]["labels"] for p in (as_dir, as_file)]
    assert labels[0] == labels[1] == ["misleading", "ok", "prohibited", "spam"]
    for project in (as_dir, as_file):
        res = dvc(project, "repro", "ingest")
        assert res.returncode == 0, res.stdout + res.stderr
    (ann_dir, q_dir), (ann_file, q_file) = _curated(as_dir), _curated(as_file)
    pd.testing.assert_frame_equal(ann_dir, ann_file)
    pd.testing.assert_frame_equal(q_dir, q_file)
    assert len(ann_dir) + len(q_dir) + len(pd.read_parquet(as_dir / catalog.REPEATS)) == len(ROWS)


def test_a_directory_batch_is_verified_part_by_part_and_a_second_ingest_is_a_no_op(project, tmp_path):
    export = _export(tmp_path / "export")
    assert run_cli(project, "ingest", "--annotations", str(export), *MAPPING).returncode == 0
    (batch,) = raw.list_batches(project)
    manifest = json.loads((batch.path / raw.MANIFEST).read_text())["files"]["annotations"]
    assert manifest["rows"] == 9 and [p["rows"] for p in manifest["parts"]] == [4, 3, 2]
    assert [p["file"] for p in manifest["parts"]] == [
        "part-0.parquet",
        "part-1.parquet",
        "week=2/part-2.parquet",
    ]
    res = run_cli(project, "verify")
    assert res.returncode == 0 and "1 raw batches (3 files) match their manifests" in res.stdout
    before = tree_state(project)
    again = run_cli(project, "ingest", "--annotations", str(export), *MAPPING)
    assert again.returncode == 0 and "already in data/raw" in again.stdout and tree_state(project) == before
    part = batch.path / "annotations" / "part-0.parquet"
    part.chmod(0o644)
    _frame(ROWS[:1]).to_parquet(part, index=False)
    res = run_cli(project, "verify")
    assert res.returncode == 1, res.stdout
    assert f"data/raw/{batch.digest}/annotations/part-0.parquet: changed since it was ingested" in res.stdout


def _no_parquet(folder: Path) -> list[str]:
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    return []


def _mixed(folder: Path) -> list[str]:
    _export(folder)
    (folder / "late.csv").write_text("question,worker,answer\nq9,w9,ok\n")
    return MAPPING


def _headerless(folder: Path) -> list[str]:
    _export(folder)
    return ["--no-header", "question,worker,answer"]


def _unknown_labels(folder: Path) -> list[str]:
    folder.mkdir()
    _frame([("q1", "w1", "spam"), ("q2", "w1", "eggs")]).to_parquet(folder / "part-0.parquet", index=False)
    return MAPPING


def _one_part_too_big(folder: Path) -> list[str]:
    _export(folder)
    big = pa.table({c: [f"{c}{k % 3}" * 200 for k in range(2000)] for c in COLUMNS})
    pq.write_table(big, folder / "part-9.parquet")  # a few KiB on disk, 1.2 MB once read
    return [*MAPPING, "--max-input-size", "1MB"]


REFUSED = {
    "no_parquet": (_no_parquet, 2, r"delivery: is a directory without \.parquet files"),
    "mixed": (_mixed, 2, r"delivery: a directory is read as one Parquet data set, but it also holds 1 other"),
    "headerless": (
        _headerless,
        2,
        r"delivery: is a directory of Parquet files.*--no-header is for a text file",
    ),
    "unknown_labels": (
        _unknown_labels,
        2,
        r"delivery: none of its 2 annotations rows has a label in the label set",
    ),
    "one_part_too_big": (
        _one_part_too_big,
        2,
        r"part-9\.parquet: holds more than 976\.6 KiB of data once read",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_directory_that_is_no_parquet_data_set_is_refused_in_one_line_naming_it_and_nothing_changes(
    project, tmp_path, case
):
    make, code, pattern = REFUSED[case]
    args = make(tmp_path / "delivery")
    res = run_cli(project, "ingest", "--annotations", str(tmp_path / "delivery"), *args)
    assert res.returncode == code, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert re.search(pattern, line), line
    assert not (project / catalog.RAW).exists()


def test_items_and_gold_directories_are_stored_as_folders_beside_an_annotations_file(project, tmp_path):
    (project / "a.csv").write_text("item_id,annotator_id,label\ni1,a,ok\ni2,a,prohibited\n")
    for role, frame in (
        ("items", pd.DataFrame({"item_id": ["i1", "i2"], "price": [1.5, 2.0]})),
        ("gold", pd.DataFrame({"item_id": ["i1"], "label": ["ok"]})),
    ):
        (tmp_path / role).mkdir()
        frame.to_parquet(tmp_path / role / "part-0.parquet", index=False)
    res = run_cli(
        project,
        "ingest",
        "--annotations",
        "a.csv",
        "--items",
        str(tmp_path / "items"),
        "--gold",
        str(tmp_path / "gold"),
    )
    assert res.returncode == 0, res.stderr
    assert (
        "annotations: 2 rows, 2 valid" in res.stdout and "items: 2 rows in 1 Parquet file(s);" in res.stdout
    )
    assert "gold: 1 rows in 1 Parquet file(s), 1 with a known label" in res.stdout
    (batch,) = raw.list_batches(project)
    assert batch.file("items") == batch.path / "items" and batch.file("gold") == batch.path / "gold"
    assert batch.file("annotations") == batch.path / "annotations.csv"
    tables = raw.read_all(project)
    assert tables["items"]["price"].tolist() == [1.5, 2.0] and tables["gold"]["label"].tolist() == ["ok"]
