"""Label Studio tasks out, Label Studio JSON exports in (labelcycle.labelstudio, pure)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from labelcycle import labelstudio as ls
from labelcycle.errors import InputFileError, SchemaError, ValidationError

CLASSES = ["ok", "misleading", "prohibited"]
NOW = pd.Timestamp("2026-01-02T03:04:05Z")


def _sheet() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2"],
            "current_label": ["ok", "prohibited"],
            "label_doubt": [0.1, 0.2],
            "uncertainty": [0.3, 0.0],
            "n_annotations": [3, 2],
            "priority": [0.37, 0.2],
            "labels_seen": ["misleading:1|ok:2", "prohibited:2"],
            "body text": ["123", "a long post"],
            "length": [12, np.nan],
            "channel": ["web", None],
            "review_label": "",
            "reviewer_id": "",
        }
    )


def _proba() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": ["i1", "i2"],
            "proba_ok": [0.7, 0.1],
            "proba_misleading": [0.2, 0.1],
            "proba_prohibited": [0.1, 0.8],
        }
    )


def test_tasks_carry_item_fields_as_data_and_the_consensus_as_a_scored_prediction():
    tasks = ls.tasks_from_sheet(
        _sheet(), CLASSES, text_columns=["body text"], probabilities=_proba(), model_version="mv 1"
    )
    assert len(tasks) == 2
    data = tasks[0]["data"]
    assert data["item_id"] == "i1"
    assert data["body_text"] == "123"  # a text column stays text, its key usable as $body_text
    assert data["length"] == 12 and isinstance(data["length"], float | int)
    assert data["channel"] == "web"
    assert tasks[1]["data"]["length"] is None and tasks[1]["data"]["channel"] is None
    assert data["lc_current_label"] == "ok" and data["lc_labels_seen"] == "misleading:1|ok:2"
    assert data["lc_proba_ok"] == 0.7 and data["lc_proba_prohibited"] == 0.1
    assert "review_label" not in data and "lc_review_label" not in data
    (pred,) = tasks[1]["predictions"]
    assert pred["model_version"] == "mv 1"
    assert pred["score"] == 0.8
    assert pred["result"] == [
        {
            "from_name": "label",
            "to_name": "body_text",
            "type": "choices",
            "value": {"choices": ["prohibited"]},
        }
    ]
    json.dumps(tasks, allow_nan=False)  # plain JSON: no NaN, no numpy types


def test_tasks_without_probabilities_suggest_the_consensus_without_a_score():
    (task, _) = ls.tasks_from_sheet(_sheet(), CLASSES)
    assert "score" not in task["predictions"][0]
    assert task["predictions"][0]["result"][0]["to_name"] == "item"
    assert task["data"]["lc_suggestion"].startswith("consensus: ok")


def test_tasks_refuse_two_columns_that_map_to_one_data_key():
    sheet = _sheet().assign(**{"body-text": "x"})
    with pytest.raises(SchemaError, match="'body text' and 'body-text' both become .* 'body_text'; rename"):
        ls.tasks_from_sheet(sheet, CLASSES)


def test_label_config_has_choices_over_the_labels_and_text_for_the_text_column():
    config = ls.label_config(["ok", 'say "no" & <stop>'], ["body text"])
    root = ET.fromstring(config)
    texts = {t.get("name"): t.get("value") for t in root.iter("Text")}
    assert texts["body_text"] == "$body_text"
    (choices,) = root.iter("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "body_text"
    assert choices.get("choice") == "single"
    assert [c.get("value") for c in choices.iter("Choice")] == ["ok", 'say "no" & <stop>']


def test_label_config_without_text_columns_shows_the_item_id():
    root = ET.fromstring(ls.label_config(CLASSES))
    assert {t.get("name"): t.get("value") for t in root.iter("Text")}["item"] == "$item_id"
    assert next(root.iter("Choices")).get("toName") == "item"


# -- imports ----------------------------------------------------------------------------------------


def _ann(aid, label, user=1, cancelled=False, updated="2026-01-01T10:00:00Z", lead=2.5):
    result = (
        [] if label is None else [{"from_name": "label", "type": "choices", "value": {"choices": [label]}}]
    )
    return {
        "id": aid,
        "completed_by": user,
        "result": result,
        "was_cancelled": cancelled,
        "created_at": "2026-01-01T09:00:00Z",
        "updated_at": updated,
        "lead_time": lead,
    }


def _task(tid, item, *annotations):
    return {"id": tid, "data": {"item_id": item, "text": "x"}, "annotations": list(annotations)}


def _import(export, known=("i1", "i2", "i3")):
    return ls.judgements_from_export(export, CLASSES, known, now=NOW)


def test_one_completed_annotation_per_task_becomes_a_judgement_by_that_reviewer():
    export = [
        _task(1, "i1", _ann(10, "misleading", user=7)),
        _task(2, "i2", _ann(11, "ok", user={"id": 3, "email": "ann@example.com"})),
    ]
    judgements, rejected = _import(export)
    assert rejected.empty
    assert judgements[["item_id", "annotator_id", "label"]].values.tolist() == [
        ["i1", "reviewer:labelstudio-user-7", "misleading"],
        ["i2", "reviewer:ann@example.com", "ok"],
    ]
    assert judgements["created_at"].tolist() == ["2026-01-01T10:00:00Z"] * 2
    assert judgements["duration_s"].tolist() == [2.5, 2.5]
    assert set(judgements["batch_id"]) == {"review-20260102"}


def test_unknown_labels_are_rejected_and_the_import_refused_naming_ingest_labels():
    judgements, rejected = _import([_task(1, "i1", _ann(10, "spam")), _task(2, "i2", _ann(11, "ok"))])
    assert judgements["item_id"].tolist() == ["i2"]
    assert rejected[["task_id", "reason"]].values.tolist() == [[1, "unknown_label"]]
    with pytest.raises(ValidationError, match=r"x\.json: 1 annotation.*task 1: label 'spam' is not one of.*"):
        ls.check_rejected(judgements, rejected, "x.json")
    with pytest.raises(ValidationError, match="ingest.labels in params.yaml"):
        ls.check_rejected(judgements, rejected, "x.json")


def test_tasks_without_annotations_are_set_aside_as_not_annotated():
    judgements, rejected = _import([_task(1, "i1"), _task(2, "i2", _ann(11, "ok"))])
    assert rejected[["task_id", "reason"]].values.tolist() == [[1, "not_annotated"]]
    assert ls.check_rejected(judgements, rejected, "x.json") == "1 tasks nobody annotated"


def test_cancelled_annotations_are_set_aside_and_an_export_of_only_skips_is_refused():
    export = [_task(1, "i1", _ann(10, None, cancelled=True)), _task(2, "i2", _ann(11, "ok"))]
    judgements, rejected = _import(export)
    assert judgements["item_id"].tolist() == ["i2"]
    assert rejected[["annotation_id", "reason"]].values.tolist() == [[10, "cancelled"]]
    judgements, rejected = _import(export[:1])
    with pytest.raises(ValidationError, match=r"no completed annotation to import \(1 annotations skipped"):
        ls.check_rejected(judgements, rejected, "x.json")


def test_duplicate_submissions_by_one_reviewer_keep_the_latest_updated_at():
    export = [
        _task(
            1,
            "i1",
            _ann(12, "prohibited", updated="2026-01-01T12:00:00Z"),
            _ann(10, "misleading", updated="2026-01-01T08:00:00Z"),
            _ann(11, "ok", user=2, updated="2026-01-01T07:00:00Z"),  # another reviewer: kept too
        ),
        _task(2, "i1", _ann(13, "ok", updated="2026-01-01T09:00:00Z")),  # same item in another task
    ]
    judgements, rejected = _import(export)
    assert judgements[["annotator_id", "label"]].values.tolist() == [
        ["reviewer:labelstudio-user-1", "prohibited"],
        ["reviewer:labelstudio-user-2", "ok"],
    ]
    assert sorted(rejected["annotation_id"]) == [10, 13]
    assert set(rejected["reason"]) == {"superseded"}
    assert "also submitted annotation 12" in rejected["detail"].iloc[0]
    assert "latest is kept" in rejected["detail"].iloc[0]


def test_items_not_in_the_project_are_rejected_and_the_import_refused_naming_repo():
    judgements, rejected = _import([_task(1, "zz", _ann(10, "ok")), _task(2, "i2", _ann(11, "ok"))])
    assert rejected[["task_id", "item_id", "reason"]].values.tolist() == [[1, "zz", "unknown_item"]]
    with pytest.raises(ValidationError, match=r"items that are not in this project.*--repo DIR.*'zz'"):
        ls.check_rejected(judgements, rejected, "x.json")


def test_tasks_without_an_item_id_and_empty_or_multiple_choices_are_faults():
    export = [
        {"id": 1, "data": {"text": "x"}, "annotations": [_ann(10, "ok")]},
        _task(2, "i2", _ann(11, None)),
        _task(
            3,
            "i3",
            {**_ann(12, "ok"), "result": [{"type": "choices", "value": {"choices": ["ok", "misleading"]}}]},
        ),
    ]
    _, rejected = _import(export)
    assert rejected[["task_id", "reason"]].values.tolist() == [
        [1, "no_item_id"],
        [2, "no_label"],
        [3, "several_labels"],
    ]


def test_malformed_json_names_the_file_and_the_position():
    with pytest.raises(InputFileError, match=r"e\.json: not valid JSON at line 2, column 3 \(character 4\)"):
        ls.load_export(b"[\n {,]", "e.json")


@pytest.mark.parametrize(
    "raw, pattern",
    [
        (b'{"tasks": []}', "expected a list of tasks .* got a JSON dict"),
        (b'[{"id": 1, "label": "ok", "annotator": 1}]', "task 0 .* has no 'data'.*JSON-MIN"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_exports_of_the_wrong_shape_are_refused_with_what_to_export(raw, pattern):
    with pytest.raises(InputFileError, match=pattern):
        ls.load_export(raw, "e.json")


def test_is_export_by_extension_or_a_json_array():
    assert ls.is_export(b"", ".JSON")
    assert ls.is_export(b"  [{", ".txt")
    assert not ls.is_export(b"item_id,review_label", ".csv")


def test_duplicate_submissions_without_timestamps_keep_the_higher_annotation_id():
    undated = [
        {**_ann(aid, label), "updated_at": None, "created_at": None}
        for aid, label in ((10, "ok"), (9, "misleading"))
    ]
    judgements, rejected = _import([_task(1, "i1", *undated)])
    assert judgements["label"].tolist() == ["ok"]
    assert rejected[["annotation_id", "reason"]].values.tolist() == [[9, "superseded"]]


def test_a_later_export_sets_aside_the_judgements_imported_before():
    first = [{**_task(1, "i1", _ann(10, "ok")), "project": 4}]
    judgements, _ = _import(first)
    assert judgements["batch_id"].tolist() == ["labelstudio-4"]
    later = [*first, {**_task(2, "i2", _ann(11, "prohibited")), "project": 4}]
    new, rejected = ls.judgements_from_export(later, CLASSES, ["i1", "i2"], imported=judgements, now=NOW)
    assert new["item_id"].tolist() == ["i2"]
    assert rejected[["annotation_id", "reason"]].values.tolist() == [[10, "already_imported"]]
    none_new, rejected = ls.judgements_from_export(first, CLASSES, ["i1"], imported=judgements, now=NOW)
    assert none_new.empty
    assert (
        ls.check_rejected(none_new, rejected, "x.json")
        == "1 annotations imported before from an earlier export"
    )


def test_a_sheet_without_current_label_is_refused():
    with pytest.raises(
        SchemaError, match=r"lacks the column\(s\) \['current_label'\]; make it with export_sheet"
    ):
        ls.tasks_from_sheet(_sheet().drop(columns="current_label"), CLASSES)


def test_annotations_without_completed_by_are_a_fault_unless_a_default_reviewer_is_given():
    export = [_task(1, "i1", {**_ann(10, "ok"), "completed_by": None})]
    judgements, rejected = _import(export)
    with pytest.raises(ValidationError, match="annotations without completed_by: pass --reviewer ID"):
        ls.check_rejected(judgements, rejected, "x.json")
    judgements, _ = ls.judgements_from_export(export, CLASSES, ["i1"], default_reviewer="lead", now=NOW)
    assert judgements["annotator_id"].tolist() == ["reviewer:lead"]
