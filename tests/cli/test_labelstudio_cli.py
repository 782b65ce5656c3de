"""`review export --format label-studio` and `review import` of a Label Studio JSON export, via the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import run_cli, set_params

from labelcycle import catalog

ANN = pd.DataFrame(
    {
        "item_id": ["i1", "i1", "i1", "i2", "i2", "i3"],
        "annotator_id": ["a", "b", "c", "a", "b", "c"],
        "label": ["ok", "ok", "misleading", "prohibited", "prohibited", "ok"],
    }
)


def _pipeline_outputs(project: Path) -> None:
    """The tables review export/import read, as the pipeline would leave them (with a text column)."""
    for rel in (catalog.ANNOTATIONS, catalog.LABELS_RAW):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
    ANN.to_parquet(project / catalog.ANNOTATIONS)
    pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "label": ["ok", "prohibited", "ok"],
            "confidence": [0.7, 0.9, 0.8],
            "proba_ok": [0.7, 0.05, 0.8],
            "proba_misleading": [0.25, 0.05, 0.1],
            "proba_prohibited": [0.05, 0.9, 0.1],
        }
    ).to_parquet(project / catalog.LABELS_RAW)
    ANN.assign(label_error_score=[0.1, 0.2, 0.9, 0.1, 0.1, 0.6], is_label_error_issue=False).to_parquet(
        project / catalog.ERROR_SCORES
    )
    pd.DataFrame(
        {"item_id": ["i1", "i2", "i3"], "text": ["first post", "second post", "third post"]}
    ).to_parquet(project / catalog.ITEMS)
    set_params(project, features={"text": ["text"]})


def _batches(project: Path) -> set[str]:
    raw = project / catalog.RAW
    return {p.name for p in raw.iterdir() if p.is_dir()} if raw.exists() else set()


def test_review_export_label_studio_writes_tasks_with_suggestions_and_prints_the_label_config(project):
    _pipeline_outputs(project)
    res = run_cli(project, "review", "export", "--budget", "2", "-o", "tasks.json")
    assert res.returncode == 0, res.stderr
    tasks = json.loads((project / "tasks.json").read_text())
    assert [t["data"]["item_id"] for t in tasks] == ["i3", "i1"]
    assert tasks[0]["data"]["text"] == "third post"
    (pred,) = tasks[1]["predictions"]
    assert pred["result"][0]["value"] == {"choices": ["ok"]} and pred["score"] == 0.7
    config = ET.fromstring(res.stdout[res.stdout.index("<View>") :])
    assert [c.get("value") for c in config.iter("Choice")] == ["ok", "misleading", "prohibited"]
    assert next(config.iter("Choices")).get("toName") == "text"

    res = run_cli(project, "review", "export", "--budget", "2", "-o", "b.csv", "--format", "tsv")
    assert res.returncode == 2 and "--format tsv does not match -o b.csv" in res.stderr


def _export(*tasks: dict) -> str:
    return json.dumps(list(tasks))


def _task(tid: int, item: str, label: str | None, user: object = 5, **ann: object) -> dict:
    annotations = []
    if label is not None:
        result = [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]
        annotations = [
            {"id": tid * 10, "completed_by": user, "result": result, "was_cancelled": False, **ann}
        ]
    return {"id": tid, "data": {"item_id": item}, "annotations": annotations}


def test_review_import_of_a_label_studio_export_adds_a_batch_and_says_what_was_set_aside(project):
    _pipeline_outputs(project)
    (project / "export.json").write_text(
        _export(
            _task(1, "i1", "misleading", updated_at="2026-03-01T10:00:00Z"),
            _task(2, "i2", None),
            _task(3, "i3", "ok", was_cancelled=True),
        )
    )
    res = run_cli(project, "review", "import", "export.json")
    assert res.returncode == 0, res.stderr
    assert (
        "1 reviewed labels (Label Studio export of 3 tasks; set aside: 1 tasks nobody annotated, 1 "
        in res.stdout
    )
    (batch,) = _batches(project)
    imported = pd.read_csv(project / catalog.RAW / batch / "annotations.csv")
    assert imported[["item_id", "annotator_id", "label", "created_at"]].values.tolist() == [
        ["i1", "reviewer:labelstudio-user-5", "misleading", "2026-03-01T10:00:00Z"]
    ]
    again = run_cli(project, "review", "import", "export.json")
    assert again.returncode == 0 and "was already imported as batch" in again.stdout
    assert _batches(project) == {batch}


def test_review_import_refuses_a_bad_label_studio_export_with_a_clear_message(project):
    _pipeline_outputs(project)
    (project / "broken.json").write_text('[{"id": 1, "data": {"item_id": "i1"},\n "annotations": [}]')
    (project / "spam.json").write_text(_export(_task(1, "i1", "spam"), _task(2, "zz", "ok")))
    for name, patterns in (
        ("broken.json", ["broken.json: not valid JSON at line 2, column 18"]),
        (
            "spam.json",
            [
                "label 'spam' is not one of",
                "items that are not in this project: import the export into the project that made",
            ],
        ),
    ):
        res = run_cli(project, "review", "import", name)
        assert res.returncode == 2, res.stdout
        assert "Traceback" not in res.stderr
        for pattern in patterns:
            assert pattern in res.stderr, res.stderr
    assert _batches(project) == set()


def test_review_judgements_names_a_missing_export_file(tmp_path):
    from labelcycle.cli.review_files import review_judgements
    from labelcycle.errors import InputFileError

    with pytest.raises(
        InputFileError, match=r"gone\.json: no such file; give the path of the Label Studio JSON"
    ):
        review_judgements(tmp_path / "gone.json", tmp_path, None)
