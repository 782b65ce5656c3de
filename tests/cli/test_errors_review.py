"""labelcycle errors / review / simulate-review: contract output and clear bad-input errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from labelcycle import catalog

ANN = "item_id,annotator_id,label\ni1,a,ok\ni1,b,ok\ni1,c,misleading\ni2,a,prohibited\ni2,b,prohibited\ni3,c,ok\n"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labelcycle.cli", *args], cwd=cwd, capture_output=True, text=True
    )


def test_errors_without_gold_writes_the_contract_and_says_it_is_unsupervised(tmp_path):
    (tmp_path / "a.csv").write_text(ANN)
    res = run_cli(tmp_path, "errors", "a.csv", "--labels", "ok,misleading,prohibited", "-o", "e.parquet")
    assert res.returncode == 0, res.stderr
    assert "unsupervised" in res.stderr
    out = pd.read_parquet(tmp_path / "e.parquet")
    assert list(out.columns) == [
        "item_id",
        "annotator_id",
        "label",
        "label_error_score",
        "is_label_error_issue",
    ]
    assert len(out) == 6


@pytest.mark.parametrize(
    "args, pattern",
    [
        (("errors", "nope.csv"), r"nope\.csv: no such file"),
        (("errors", "a.csv", "-o", "out.xlsx"), r"cannot tell the format from the extension '\.xlsx'"),
        (("errors", "a.csv", "--labels", "ok"), r"fewer than two classes; pass --labels"),
        (("errors", "a.csv", "--labels", "x,y"), r"a\.csv: none of its 6 rows is valid.*unknown_label"),
        (("errors", "a.csv", "--method", "magic"), r"--method 'magic' is not an aggregation method"),
        (("review", "export", "--budget", "5", "-o", "b.csv"), r"not inside a DVC project"),
        (("review", "import", "b.csv"), r"not inside a DVC project"),
        (("simulate-review", "--budgets", "0,lots"), r"--budgets '0,lots': give comma-separated fractions"),
        (("simulate-review", "--demo", "nodemo"), r"nodemo/truth/items\.parquet: missing"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(tmp_path, args, pattern):
    import re

    (tmp_path / "a.csv").write_text(ANN)
    (tmp_path / "nodemo").mkdir()
    res = run_cli(tmp_path, *args)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert re.search(pattern, res.stderr), res.stderr


def _pipeline_outputs(project: Path) -> None:
    """The tables review export/import read, as the pipeline would leave them."""
    ann = pd.read_csv(pd.io.common.StringIO(ANN))
    (project / catalog.ANNOTATIONS).parent.mkdir(parents=True)
    (project / catalog.LABELS_RAW).parent.mkdir(parents=True)
    ann.to_parquet(project / catalog.ANNOTATIONS)
    pd.DataFrame(
        {"item_id": ["i1", "i2", "i3"], "label": ["ok", "prohibited", "ok"], "confidence": [2 / 3, 1.0, 1.0]}
    ).to_parquet(project / catalog.LABELS_RAW)
    ann.assign(label_error_score=[0.1, 0.2, 0.9, 0.1, 0.1, 0.6], is_label_error_issue=False).to_parquet(
        project / catalog.ERROR_SCORES
    )


def test_review_export_then_import_adds_a_raw_batch(project):
    _pipeline_outputs(project)
    res = run_cli(project, "review", "export", "--budget", "0", "-o", "b.csv")
    assert res.returncode != 0 and "--budget must be a positive number" in res.stderr
    res = run_cli(project, "review", "export", "--budget", "2", "-o", "b.csv", "--stratify-by", "colour")
    assert res.returncode != 0 and "--stratify-by 'colour' is not a column" in res.stderr
    res = run_cli(project, "review", "export", "--budget", "2", "-o", "b.csv")
    assert res.returncode == 0, res.stderr
    sheet = pd.read_csv(project / "b.csv", dtype=str, keep_default_na=False)
    assert sheet["item_id"].tolist() == ["i3", "i1"]  # doubt 0.6 beats 1 - 0.85 * 2/3
    assert {"review_label", "reviewer_id", "labels_seen", "priority"} <= set(sheet.columns)

    res = run_cli(project, "review", "import", "b.csv")
    assert res.returncode != 0 and "no row has a review_label" in res.stderr
    sheet.loc[0, "review_label"] = "spam"
    sheet.to_csv(project / "bad.csv", index=False)
    res = run_cli(project, "review", "import", "bad.csv")
    assert res.returncode != 0 and "row 2: review_label 'spam' is not one of" in res.stderr
    assert "Traceback" not in res.stderr and not (project / catalog.RAW).exists()

    sheet.loc[0, "review_label"] = "misleading"
    sheet.to_csv(project / "good.csv", index=False)
    res = run_cli(project, "review", "import", "good.csv", "--reviewer", "expert-1")
    assert res.returncode == 0, res.stderr
    batches = [p for p in (project / catalog.RAW).iterdir() if p.is_dir()]
    assert len(batches) == 1 and (project / catalog.RAW_DVC).exists()
    imported = pd.read_csv(batches[0] / "annotations.csv")
    assert imported[["item_id", "annotator_id", "label"]].values.tolist() == [
        ["i3", "reviewer:expert-1", "misleading"]
    ]


# -- formula-safe sheets, idempotent imports, reviewer ids ----------------------------------------------

FORMULA_IDS = {"i1": "=cmd|' /C calc'!A0", "i2": "-2+3", "i3": "@SUM(A1)"}


def _formula_outputs(project: Path) -> None:
    """Pipeline outputs whose item ids and feature values a spreadsheet would evaluate."""
    _pipeline_outputs(project)
    for rel in (
        catalog.ANNOTATIONS,
        catalog.LABELS_RAW,
        catalog.ERROR_SCORES,
    ):
        df = pd.read_parquet(project / rel)
        df["item_id"] = df["item_id"].map(FORMULA_IDS)
        df.to_parquet(project / rel)
    pd.DataFrame({"item_id": list(FORMULA_IDS.values()), "title": ["+cmd", "ok title", "=1+1"]}).to_parquet(
        project / catalog.ITEMS
    )


@pytest.mark.parametrize("name, sep", [("sheet.csv", ","), ("sheet.tsv", "\t")])
def test_review_export_prefixes_formula_cells_in_text_sheets_and_import_removes_the_prefix(
    project, name, sep
):
    _formula_outputs(project)
    res = run_cli(project, "review", "export", "--budget", "3", "-o", name)
    assert res.returncode == 0, res.stderr
    sheet = pd.read_csv(
        project / name, sep=sep, dtype=str, keep_default_na=False, quoting=3 if sep == "\t" else 0
    )
    for column in ("item_id", "current_label", "labels_seen", "title"):
        assert not sheet[column].str.match(r"[=+\-@]").any(), sheet[column].tolist()
    assert set(sheet["item_id"]) == {"'" + v for v in FORMULA_IDS.values()}
    assert set(sheet["title"]) == {"'+cmd", "ok title", "'=1+1"}
    sheet["review_label"] = "ok"
    sheet.to_csv(project / f"done{Path(name).suffix}", sep=sep, index=False, quoting=3 if sep == "\t" else 0)
    res = run_cli(project, "review", "import", f"done{Path(name).suffix}", "--reviewer", "expert-1")
    assert res.returncode == 0, res.stderr
    (batch,) = [p for p in (project / catalog.RAW).iterdir() if p.is_dir()]
    imported = pd.read_csv(batch / "annotations.csv", dtype=str, keep_default_na=False)
    assert set(imported["item_id"]) == set(FORMULA_IDS.values())


def test_review_export_leaves_parquet_sheets_unescaped(project):
    _formula_outputs(project)
    assert run_cli(project, "review", "export", "--budget", "3", "-o", "sheet.parquet").returncode == 0
    sheet = pd.read_parquet(project / "sheet.parquet")
    assert set(sheet["item_id"]) == set(FORMULA_IDS.values())


def test_reimporting_the_same_review_sheet_is_a_no_op_with_a_message(project):
    _pipeline_outputs(project)
    assert run_cli(project, "review", "export", "--budget", "2", "-o", "b.csv").returncode == 0
    sheet = pd.read_csv(project / "b.csv", dtype=str, keep_default_na=False)
    sheet["review_label"] = "misleading"
    sheet.to_csv(project / "done.csv", index=False)
    first = run_cli(project, "review", "import", "done.csv", "--reviewer", "expert-1")
    assert first.returncode == 0, first.stderr
    again = run_cli(project, "review", "import", "done.csv", "--reviewer", "expert-1")
    assert again.returncode == 0, again.stderr
    assert "done.csv was already imported as batch" in again.stdout and "nothing to do" in again.stdout
    assert len([p for p in (project / catalog.RAW).iterdir() if p.is_dir()]) == 1


def test_reviewer_ids_are_prefixed_so_a_reviewer_never_merges_with_a_crowd_annotator(project):
    _pipeline_outputs(project)
    assert run_cli(project, "review", "export", "--budget", "2", "-o", "b.csv").returncode == 0
    sheet = pd.read_csv(project / "b.csv", dtype=str, keep_default_na=False)
    sheet["review_label"] = "ok"
    sheet["reviewer_id"] = ["a", "reviewer:b"]  # "a" is also a crowd annotator's id
    sheet.to_csv(project / "done.csv", index=False)
    res = run_cli(project, "review", "import", "done.csv")
    assert res.returncode == 0, res.stderr
    (batch,) = [p for p in (project / catalog.RAW).iterdir() if p.is_dir()]
    imported = pd.read_csv(batch / "annotations.csv", dtype=str)
    assert imported["annotator_id"].tolist() == ["reviewer:a", "reviewer:b"]
