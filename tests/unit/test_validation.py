from __future__ import annotations

import json

import pandas as pd

from labelcycle.validation import validate

LABELS = ["ok", "misleading", "prohibited"]


def _ann(rows):
    df = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label", "created_at", "duration_s"])
    df["_source_row"] = range(1, len(df) + 1)
    return df


def test_counts_reconcile_and_every_rejected_row_has_a_reason():
    ann = _ann(
        [
            ["i1", "a", "ok", "2026-01-01T00:00:00Z", "3.5"],
            ["i1", "b", "spam", "2026-01-01T00:00:00Z", "3"],  # unknown label
            ["", "c", "ok", "2026-01-01T00:00:00Z", "1"],  # empty item
            ["i2", "a", "ok", "not a date", "1"],  # bad timestamp
            ["i2", "b", "ok", "2026-01-01T00:00:00Z", "-4"],  # negative duration
            ["i3", "a", "ok", "2026-01-01T00:00:00Z", "2"],
            ["i3", "a", "misleading", "2026-01-02T00:00:00Z", "2"],  # later judgement wins; earlier: a repeat
            ["i9", "a", "ok", "2026-01-01T00:00:00Z", "2"],  # item without features
        ]
    )
    items = pd.DataFrame(
        {"item_id": ["i1", "i2", "i3"], "price": ["1.5", "2", ""], "category": ["x", "y", "x"]}
    )
    gold = pd.DataFrame({"item_id": ["i1", "i2", "i2"], "label": ["ok", "ok", "misleading"]})
    res = validate(ann, LABELS, items, gold)
    assert res.reconciles
    c = res.counts["annotations"]
    assert (c.read, c.kept, c.repeats, c.quarantined) == (8, 2, 1, 5)
    assert c.reasons == {
        "unknown_label": 1,
        "missing_item_id": 1,
        "bad_created_at": 1,
        "bad_duration_s": 1,
        "item_without_features": 1,
    }
    assert res.repeats[["item_id", "annotator_id", "label"]].values.tolist() == [["i3", "a", "ok"]]
    kept = res.annotations.set_index("item_id")
    assert kept.loc["i3", "label"] == "misleading"
    assert res.annotations["duration_s"].dtype == "float64"
    # gold conflict: both rows of i2 quarantined, i1 kept
    assert list(res.gold["item_id"]) == ["i1"]
    assert res.counts["gold"].reasons == {"conflicting_gold": 2}
    # items: numeric column typed as float, categorical kept as text
    assert res.items["price"].dtype == "float64" and res.items["category"].dtype == object
    q = res.quarantine
    assert set(q.columns) >= {"table", "source_row", "reason", "detail", "record"}
    bad = q[q["reason"] == "unknown_label"].iloc[0]
    assert bad["source_row"] == 2 and "spam" in bad["detail"] and json.loads(bad["record"])["label"] == "spam"


def test_identical_repeated_items_merge_and_conflicting_ones_are_quarantined():
    items = pd.DataFrame({"item_id": ["i1", "i1", "i2", "i2"], "f": ["1", "1", "2", "3"]})
    ann = _ann([["i1", "a", "ok", "", ""]])
    res = validate(ann, LABELS, items)
    c = res.counts["items"]
    assert (c.read, c.kept, c.merged, c.quarantined) == (4, 1, 1, 2)
    assert res.reconciles


def test_without_created_at_the_later_row_wins_and_the_earlier_is_a_repeat_not_quarantined():
    ann = pd.DataFrame({"item_id": ["i1", "i1"], "annotator_id": ["a", "a"], "label": ["ok", "prohibited"]})
    res = validate(ann, LABELS)
    assert list(res.annotations["label"]) == ["prohibited"]
    assert list(res.repeats["label"]) == ["ok"]
    c = res.counts["annotations"]
    assert (c.read, c.kept, c.repeats, c.quarantined, c.reasons) == (2, 1, 1, 0, {})
    assert res.quarantine.empty and res.reconciles


def test_a_row_re_sent_unchanged_in_a_later_batch_is_merged_and_a_changed_one_is_a_repeat():
    ann = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i1", "i2", "i3", "i3"],
            "annotator_id": ["a", "a", "a", "a", "a", "a"],
            "label": ["ok", "ok", "ok", "prohibited", "ok", "ok"],
            "raw_batch": ["b1", "b1", "b2", "b2", "b2", "b2"],
        }
    )
    res = validate(ann, LABELS)
    c = res.counts["annotations"]
    # i1 re-sent as it was: merged; i2 judged again with another label: a repeat (the later one is
    # kept); i3 twice in the same batch: a repeat too, even though identical
    assert (c.read, c.kept, c.merged, c.repeats, c.quarantined) == (6, 3, 1, 2, 0)
    assert res.annotations.set_index("item_id")["label"].to_dict() == {
        "i1": "ok",
        "i2": "prohibited",
        "i3": "ok",
    }
    assert sorted(res.repeats["item_id"]) == ["i2", "i3"] and res.reconciles


def test_na_none_and_null_are_values_and_only_an_empty_cell_is_missing():
    labels = ["ok", "none", "prohibited"]
    ann = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "NA", "i3"],
            "annotator_id": ["null", "a", "a", "a"],
            "label": ["none", "ok", "ok", " "],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "NA", "i3"],
            "region": ["NA", "EU", "", "nan"],
            "price": ["1", "N/A", "2", "3"],
        }
    )
    res = validate(ann, labels, items)
    assert res.annotations.values.tolist() == [["i1", "null", "none"], ["i2", "a", "ok"], ["NA", "a", "ok"]]
    assert res.counts["annotations"].reasons == {"missing_label": 1}  # the blank label only
    region = res.items["region"]
    assert region[region.notna()].tolist() == ["NA", "EU", "nan"] and region.isna().tolist() == [
        False,
        False,
        True,
        False,
    ]
    assert res.items["price"].tolist() == ["1", "N/A", "2", "3"]  # N/A is text, so the column is too


def test_the_arrow_empty_check_matches_python_strip_on_every_whitespace():
    from labelcycle.cells import is_empty

    values = ["", " ", "\t", "\u2003", "\u00a0", "\u200b", "\u3000 ", "NA", "none", "x", "\x85", " ok "]
    expected = [v.strip() == "" for v in values]
    assert is_empty(pd.Series(values, dtype="str")).tolist() == expected
    assert is_empty(pd.Series([*values, None], dtype=object)).tolist() == [*expected, True]


def test_the_latest_judgement_of_a_pair_wins_by_created_at_then_row_order_missing_times_first():
    ann = pd.DataFrame(
        {
            "item_id": ["i1", "i1", "i1", "i2", "i2", "i3", "i1", "i2"],
            "annotator_id": ["a", "a", "b", "a", "a", "a", "a", "a"],
            "label": ["ok", "bad", "ok", "ok", "bad", "ok", "ok", "bad"],
            "created_at": [
                "2026-01-02T00:00:00Z",  # i1/a: the latest of the three
                "2026-01-01T00:00:00Z",
                "2026-01-01T00:00:00Z",  # i1/b: judged once
                "2026-01-05T00:00:00Z",  # i2/a: tied with the last row, which comes later and wins
                "",  # i2/a: no time: earlier than any
                "2026-01-03T00:00:00Z",  # i3/a: judged once
                "",  # i1/a: no time
                "2026-01-05T00:00:00Z",  # i2/a: the winner
            ],
        }
    )
    result = validate(ann, ["ok", "bad"])
    kept = result.annotations.sort_values(["item_id", "annotator_id"])
    assert kept[["item_id", "annotator_id", "label"]].values.tolist() == [
        ["i1", "a", "ok"],
        ["i1", "b", "ok"],
        ["i2", "a", "bad"],
        ["i3", "a", "ok"],
    ]
    assert str(kept["created_at"].iloc[0]) == "2026-01-02 00:00:00+00:00"
    assert len(result.repeats) == 4 and result.counts["annotations"].reconciles
