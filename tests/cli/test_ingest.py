"""labelcycle ingest: file-level faults stop with a clear message; nothing already ingested changes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import set_params, sh

from labelcycle import catalog
from labelcycle.versioning import raw

GOOD = "item_id,annotator_id,label\ni1,a,ok\ni1,b,misleading\ni2,a,prohibited\n"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelcycle.cli", *args], cwd=cwd, capture_output=True, text=True
    )


def tree_state(root: Path) -> dict[str, str]:
    raw = root / catalog.RAW
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
    batches = [p for p in (project / catalog.RAW).iterdir() if p.is_dir()]
    assert len(batches) == 1
    assert (batches[0] / "annotations.csv").read_text() == GOOD  # byte for byte
    assert (project / catalog.RAW_DVC).exists()
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
    assert "unknown_label: 1" in res.stdout and "1 repeats (kept for self-agreement)" in res.stdout


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


# -- missing-value markers --------------------------------------------------------------------------------


def test_na_region_and_none_label_survive_ingest_and_declared_markers_are_kept_with_the_batch(project):
    set_params(project, ingest={"labels": ["ok", "none", "prohibited"]})
    (project / "a.csv").write_text("item_id,annotator_id,label\ni1,a,none\ni2,a,ok\ni3,a,null\n")
    (project / "items.csv").write_text("item_id,region\ni1,NA\ni2,EU\ni3,null\n")
    res = run_cli(project, "ingest", "--annotations", "a.csv", "--items", "items.csv", "--na-values", "null")
    assert res.returncode == 0, res.stderr
    (batch,) = [p for p in (project / catalog.RAW).iterdir() if p.is_dir()]
    manifest = json.loads((batch / raw.MANIFEST).read_text())
    assert all(f["columns"]["na_values"] == ["null"] for f in manifest["files"].values())
    sh(project, sys.executable, "stages/ingest.py")  # what `dvc repro ingest` runs
    region = pd.read_parquet(project / catalog.ITEMS).set_index("item_id")["region"]
    assert region.dropna().to_dict() == {"i1": "NA", "i2": "EU"} and pd.isna(region["i3"])
    ann = pd.read_parquet(project / catalog.ANNOTATIONS)
    assert ann[["item_id", "label"]].values.tolist() == [["i1", "none"], ["i2", "ok"]]  # i3's null is missing


# -- decompression limits ----------------------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_in_one_error_line_and_the_limit_is_an_option(project):
    import gzip

    with gzip.open(project / "bomb.csv.gz", "wb") as fh:
        fh.write(b"item_id,annotator_id,label\n" + b"i1,a,ok\n" * (20 * 2**20 // 8))
    res = run_cli(project, "ingest", "--annotations", "bomb.csv.gz")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: bomb.csv.gz: decompresses to more than") and "--max-input-size" in line
    assert not (project / catalog.RAW).exists()
    (project / "small.csv.gz").write_bytes(gzip.compress(GOOD.encode() * 1000))
    res = run_cli(project, "ingest", "--annotations", "small.csv.gz", "--max-input-size", "10KB")
    assert res.returncode == 2 and "decompresses to more than 9.8 KiB" in res.stderr
    res = run_cli(project, "ingest", "--annotations", "small.csv.gz", "--max-input-size", "lots")
    assert res.returncode == 2 and "--max-input-size" in res.stderr and "'lots'" in res.stderr


# -- races and unwritable folders --------------------------------------------------------------------------


def _temp_folders(root: Path) -> list[str]:
    found = [p.name for p in (root / catalog.RAW).iterdir() if p.name.startswith(".")]
    staging = raw.staging_dir(root)
    return found + ([p.name for p in staging.iterdir()] if staging.exists() else [])


def test_two_concurrent_ingests_of_the_same_batch_make_one_batch_and_no_temporary_folders(project):
    rows = "".join(f"i{k},a{k % 7},ok\n" for k in range(100_000))
    (project / "big.csv").write_text("item_id,annotator_id,label\n" + rows)
    cmd = [sys.executable, "-m", "labelcycle.cli", "ingest", "--annotations", "big.csv"]
    procs = [
        subprocess.Popen(cmd, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, _out, err in results:
        assert "Traceback" not in err
        assert code == 0 or (len(err.strip().splitlines()) == 1 and err.startswith("error: ")), err
    assert sum("added batch" in out for _, out, _ in results) == 1
    batches = [p for p in (project / catalog.RAW).iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(batches) == 1
    assert _temp_folders(project) == []
    assert (project / catalog.RAW_DVC).exists()


def _without_root_override() -> list[str]:
    """A command prefix under which root obeys file permissions (None: not possible here)."""
    import os
    import shutil

    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder cannot be simulated")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_a_read_only_raw_folder_ends_in_one_error_line_and_changes_nothing(project):
    (project / "good.csv").write_text(GOOD)
    assert run_cli(project, "ingest", "--annotations", "good.csv").returncode == 0
    before = tree_state(project)
    (project / "other.csv").write_text(GOOD + "i3,c,ok\n")
    raw_dir = project / catalog.RAW
    raw_dir.chmod(0o555)
    try:
        res = subprocess.run(
            [
                *_without_root_override(),
                sys.executable,
                "-m",
                "labelcycle.cli",
                "ingest",
                "--annotations",
                "other.csv",
            ],
            cwd=project,
            capture_output=True,
            text=True,
        )
    finally:
        raw_dir.chmod(0o755)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: cannot write into data/raw") and "chmod" in line
    assert tree_state(project) == before and _temp_folders(project) == []
