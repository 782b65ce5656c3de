"""labelcycle ingest: file-level faults stop with a clear message; nothing already ingested changes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

GOOD = "item_id,annotator_id,label\ni1,a,ok\ni1,b,misleading\ni2,a,prohibited\n"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelcycle.cli", *args], cwd=cwd, capture_output=True, text=True
    )


def tree_state(root: Path) -> dict[str, str]:
    raw = root / "data" / "raw"
    if not raw.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in raw.rglob("*")
        if p.is_file()
    }


def test_ingest_adds_a_content_addressed_batch_once(project):
    (project / "a.csv").write_text(GOOD)
    first = run_cli(project, "ingest", "--annotations", "a.csv")
    assert first.returncode == 0, first.stderr
    batches = [p for p in (project / "data" / "raw").iterdir() if p.is_dir()]
    assert len(batches) == 1
    assert (batches[0] / "annotations.csv").read_text() == GOOD  # byte for byte
    assert (project / "data" / "raw.dvc").exists()
    before = tree_state(project)
    again = run_cli(project, "ingest", "--annotations", "a.csv")
    assert again.returncode == 0 and "already in data/raw" in again.stdout
    assert tree_state(project) == before


BAD_FILES = {
    "empty.csv": (b"", r"empty\.csv: the file is empty"),
    "header.csv": (b"item_id,annotator_id,label\n", r"header\.csv: has a header but no data rows"),
    "ragged.csv": (b"item_id,annotator_id,label\ni1,a,ok\ni2,a,ok,x\n", r"ragged\.csv: ragged row at line 3"),
    "latin1.csv": (
        "item_id,annotator_id,label\ni1,Jos\xe9,ok\n".encode("latin-1"),
        r"latin1\.csv: is not valid UTF-8 \(line 2",
    ),
    "broken.parquet": (b"not parquet at all", r"broken\.parquet: is not a readable Parquet file"),
    "broken.jsonl": (
        b'{"item_id": "i1", "annotator_id": "a", "label": "ok"}\n{oops\n',
        r"broken\.jsonl: line 2 is not valid JSON",
    ),
    "nocols.csv": (b"item,who,what\ni1,a,ok\n", r"nocols\.csv: missing required column\(s\)"),
    "unknown.csv": (
        b"item_id,annotator_id,label\ni1,a,spam\n",
        r"unknown\.csv: none of its 1 rows is valid.*unknown_label",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_exit_non_zero_with_a_clear_message_and_change_nothing(project, name):
    import re

    (project / "good.csv").write_text(GOOD)
    assert run_cli(project, "ingest", "--annotations", "good.csv").returncode == 0
    before = tree_state(project)
    content, pattern = BAD_FILES[name]
    (project / name).write_bytes(content)
    res = run_cli(project, "ingest", "--annotations", name)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert re.search(pattern, res.stderr), res.stderr
    assert tree_state(project) == before


def test_missing_path_is_named(project):
    res = run_cli(project, "ingest", "--annotations", "does/not/exist.csv")
    assert res.returncode == 2 and "exist.csv: no such file" in res.stderr and "Traceback" not in res.stderr


def test_row_level_faults_are_reported_not_fatal(project):
    (project / "mixed.csv").write_text(GOOD + "i3,c,spam\ni1,a,ok\n")
    res = run_cli(project, "ingest", "--annotations", "mixed.csv")
    assert res.returncode == 0, res.stderr
    assert "unknown_label: 1" in res.stdout and "duplicate_item_annotator: 1" in res.stdout


def test_column_mapping_and_headerless_files(project):
    (project / "answer.csv").write_text("question,worker,answer\nq1,w1,ok\nq1,w2,ok\n")
    res = run_cli(
        project,
        "ingest",
        "--annotations",
        "answer.csv",
        "--item-col",
        "question",
        "--annotator-col",
        "worker",
        "--label-col",
        "answer",
    )
    assert res.returncode == 0, res.stderr
    (project / "labels.tsv").write_text("w1\tq9\tok\n")
    res = run_cli(
        project, "ingest", "--annotations", "labels.tsv", "--no-header", "annotator_id,item_id,label"
    )
    assert res.returncode == 0, res.stderr


def test_ingest_outside_a_project_says_what_to_do(tmp_path):
    (tmp_path / "a.csv").write_text(GOOD)
    res = run_cli(tmp_path, "ingest", "--annotations", "a.csv")
    assert res.returncode != 0 and "not inside a DVC project" in res.stderr and "dvc init" in res.stderr


def test_aggregate_command_writes_the_contract(tmp_path):
    (tmp_path / "a.csv").write_text(GOOD)
    res = run_cli(
        tmp_path,
        "aggregate",
        "a.csv",
        "--method",
        "majority_vote",
        "-o",
        "out.parquet",
        "--labels",
        "ok,misleading,prohibited",
    )
    assert res.returncode == 0, res.stderr
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == [
        "item_id",
        "label",
        "confidence",
        "proba_ok",
        "proba_misleading",
        "proba_prohibited",
    ]
    assert list(out["label"]) == ["ok", "prohibited"]  # i1 tie ok/misleading -> first class in the label set
