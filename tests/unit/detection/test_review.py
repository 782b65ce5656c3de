"""Review selection, sheets, parsing, and curation actions on tiny tables."""

from __future__ import annotations

import pandas as pd
import pytest

from labelcycle.detection.curate import curate_labels
from labelcycle.detection.review import item_priorities, parse_review, select_for_review
from labelcycle.errors import SchemaError, ValidationError

CLASSES = ("ok", "misleading", "prohibited")
SCORES = pd.DataFrame(
    {
        "item_id": ["i1", "i1", "i1", "i2", "i2", "i3"],
        "annotator_id": ["a", "b", "c", "a", "b", "c"],
        "label": ["ok", "ok", "misleading", "prohibited", "misleading", "ok"],
        "label_error_score": [0.2, 0.4, 0.9, 0.8, 0.1, 0.5],
    }
)
LABELS = pd.DataFrame(
    {"item_id": ["i1", "i2", "i3"], "label": ["ok", "misleading", "ok"], "confidence": [2 / 3, 0.5, 1.0]}
)


def test_item_priorities_exact():
    pri = item_priorities(SCORES, LABELS).set_index("item_id")
    assert pri.loc["i1", "label_doubt"] == pytest.approx(0.3)  # mean of the two ok votes
    assert pri.loc["i2", "label_doubt"] == pytest.approx(0.1)
    assert pri.loc["i1", "priority"] == pytest.approx(1 - 0.7 * (2 / 3))
    assert pri.loc["i3", "priority"] == pytest.approx(0.5)
    assert list(pri.index) == ["i2", "i1", "i3"]  # 0.55, 0.533, 0.5


def test_select_budget_and_stratification():
    pri = item_priorities(SCORES, LABELS)
    assert select_for_review(pri, 1)["item_id"].tolist() == ["i2"]
    by_label = select_for_review(pri, 2, stratify=pri["current_label"])
    assert sorted(by_label["current_label"]) == ["misleading", "ok"]
    with pytest.raises(ValidationError, match="positive number"):
        select_for_review(pri, 0)


def test_parse_review_validates_rows_with_line_numbers():
    sheet = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i9", "i3"],
            "review_label": ["ok", "spam", "ok", ""],
            "reviewer_id": ["r1", "r1", "r1", ""],
        }
    )
    with pytest.raises(
        ValidationError, match=r"row 3: review_label 'spam'.*row 4: item 'i9' is not in the project"
    ):
        parse_review(sheet, CLASSES, pd.Series(["i1", "i2", "i3"]), source="b.csv")
    good = sheet.iloc[[0, 3]]
    out, skipped = parse_review(good, CLASSES, pd.Series(["i1", "i3"]))
    assert skipped == 1 and out[["item_id", "annotator_id", "label"]].values.tolist() == [
        ["i1", "reviewer:r1", "ok"]
    ]
    with pytest.raises(SchemaError, match="missing column"):
        parse_review(sheet.drop(columns="review_label"), CLASSES, pd.Series(["i1"]))
    with pytest.raises(ValidationError, match="no reviewer_id"):
        parse_review(sheet.iloc[[0]].assign(reviewer_id=""), CLASSES, pd.Series(["i1"]))


def test_curate_actions():
    ann = SCORES[["item_id", "annotator_id", "label"]]
    labels = LABELS.assign(n_annotations=[3, 2, 1], vote_share=[2 / 3, 0.5, 1.0])
    relabel = curate_labels(ann, labels, SCORES, CLASSES, "relabel", 0.75, "majority_vote")
    # i1 loses the misleading vote, i2 loses the prohibited one: labels stay ok and misleading
    assert relabel.labels.set_index("item_id")["label"].to_dict() == {
        "i1": "ok",
        "i2": "misleading",
        "i3": "ok",
    }
    assert relabel.summary["annotations_removed"] == 2
    drop = curate_labels(ann, labels, SCORES, CLASSES, "drop", 0.5)
    assert drop.labels["item_id"].tolist() == ["i1", "i2"]  # i3's only support scores 0.5
    down = curate_labels(ann, labels, SCORES, CLASSES, "downweight", 0.5).labels.set_index("item_id")
    assert down.loc["i2", "label"] == "misleading" and down.loc["i1", "confidence"] == pytest.approx(
        (0.8 + 0.6) / 3
    )
    with pytest.raises(SchemaError, match="unknown curate action"):
        curate_labels(ann, labels, SCORES, CLASSES, "burn", 0.5)
