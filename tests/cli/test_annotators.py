"""labelcycle annotators: the annotator table, an offline HTML report and a short summary; clean errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from labelcycle.demo import generate

SRC = Path(__file__).resolve().parents[2] / "src"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "labelcycle.cli", *args], cwd=cwd, capture_output=True, text=True, env=env
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("demo")
    data = generate(n_items=4000, n_annotators=40, seed=0)
    data.annotations.to_csv(d / "annotations.csv", index=False)
    data.items.to_csv(d / "items.csv", index=False)
    data.gold.to_csv(d / "gold.csv", index=False)
    data.truth_annotators.to_csv(d / "truth.csv", index=False)
    return d


def test_annotators_writes_the_table_the_report_and_a_summary(demo_dir):
    res = run_cli(
        demo_dir,
        "annotators",
        "annotations.csv",
        "--items",
        "items.csv",
        "--gold",
        "gold.csv",
        "-o",
        "out/annotators.parquet",
        "--report",
        "out/report.html",
    )
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(demo_dir / "out" / "annotators.parquet")
    for col in (
        "annotator_id",
        "n_labels",
        "accuracy_est",
        "gold_accuracy",
        "kappa_consensus",
        "median_duration_s",
        "spammer_score",
        "is_spammer",
        "drift_slope",
    ):
        assert col in table.columns
    truth = pd.read_csv(demo_dir / "truth.csv")
    assert len(table) == len(truth)
    spammers = sorted(truth.loc[truth["kind"] == "spammer", "annotator_id"])
    assert sorted(table.loc[table["is_spammer"], "annotator_id"]) == spammers
    assert re.search(r"Krippendorff alpha 0\.\d{3}, Fleiss kappa 0\.\d{3}", res.stdout), res.stdout
    assert f"spammers ({len(spammers)}): {', '.join(spammers)}" in res.stdout
    assert "1. " in res.stdout and "top root causes" in res.stdout
    page = (demo_dir / "out" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert len(re.findall(r"<img[^>]*\ssrc=\"data:image/png;base64,", page)) >= 3
    assert not re.search(r"<(script|link)[^>]*(src|href)=[\"']?https?://", page)
    assert "<script" not in page


def test_annotators_dedups_repeats_and_writes_csv(tmp_path):
    (tmp_path / "a.csv").write_text(
        "item,who,what\ni1,a,ok\ni1,b,ok\ni1,a,bad\ni2,a,ok\ni2,b,ok\ni3,a,bad\ni3,b,bad\n"
    )
    res = run_cli(
        tmp_path,
        "annotators",
        "a.csv",
        "--item-col",
        "item",
        "--annotator-col",
        "who",
        "--label-col",
        "what",
        "-o",
        "t.csv",
    )
    assert res.returncode == 0, res.stderr
    assert "1 repeats" in res.stdout and "0 of 1 pairs agree" in res.stdout
    table = pd.read_csv(tmp_path / "t.csv")
    assert table.set_index("annotator_id")["n_labels"].to_dict() == {"a": 3, "b": 3}


@pytest.mark.parametrize(
    ("content", "args", "pattern"),
    [
        ("", (), r"a\.csv: the file is empty"),
        ("item,who,what\ni1,a,ok\n", (), r"a\.csv: missing required column"),
        ("item_id,annotator_id,label\ni1,a,spam\n", ("--labels", "ok,bad"), r"none of its 1 rows is valid"),
        (
            "item_id,annotator_id,label\ni1,a,ok\ni1,b,ok\n",
            ("--method", "nope"),
            r"unknown aggregation method",
        ),
    ],
)
def test_bad_input_gives_a_clean_error(tmp_path, content, args, pattern):
    (tmp_path / "a.csv").write_text(content)
    res = run_cli(tmp_path, "annotators", "a.csv", *args)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert re.search(pattern, res.stderr), res.stderr


def test_missing_file_is_named(tmp_path):
    res = run_cli(tmp_path, "annotators", "nope.csv")
    assert res.returncode != 0 and "nope.csv: no such file" in res.stderr and "Traceback" not in res.stderr
