from __future__ import annotations

import pandas as pd

from labelcycle.annotators.self_agreement import describe, self_agreement, summary, with_self_agreement


def _t(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


def test_self_agreement_counts_pairs_and_agreeing_pairs_per_annotator():
    kept = _t(
        [["i1", "a", "ok"], ["i2", "a", "bad"], ["i1", "b", "ok"], ["i3", "b", "ok"], ["i4", "c", "ok"]]
    )
    # a: i1 twice more (ok, ok) -> agrees; i2 once more with another label -> disagrees; b: i3 agrees
    repeats = _t([["i1", "a", "ok"], ["i1", "a", "ok"], ["i2", "a", "ok"], ["i3", "b", "ok"]])
    table = self_agreement(kept, repeats)
    assert table.to_dict("records") == [
        {
            "annotator_id": "a",
            "repeat_judgements": 3,
            "repeat_pairs": 2,
            "repeat_pairs_agreeing": 1,
            "self_agreement": 0.5,
        },
        {
            "annotator_id": "b",
            "repeat_judgements": 1,
            "repeat_pairs": 1,
            "repeat_pairs_agreeing": 1,
            "self_agreement": 1.0,
        },
    ]
    assert summary(table) == {"repeats": 4, "pairs": 3, "agreeing": 2, "disagreeing": 1, "rate": 2 / 3}
    assert describe(table).startswith("self-agreement on repeats: 2 of 3 pairs agree (66.7%")
    merged = with_self_agreement(
        pd.DataFrame({"annotator_id": ["a", "b", "c"], "n_labels": [2, 2, 1]}), table
    )
    assert merged.set_index("annotator_id")["repeat_pairs"].to_dict() == {"a": 2, "b": 1, "c": 0}
    assert pd.isna(merged.set_index("annotator_id").loc["c", "self_agreement"])


def test_without_repeats_the_table_is_empty_and_the_summary_says_so():
    table = self_agreement(_t([["i1", "a", "ok"]]), None)
    assert table.empty and list(table.columns)[0] == "annotator_id"
    assert summary(table)["pairs"] == 0 and summary(table)["rate"] is None
    assert describe(table) == "self-agreement on repeats: no annotator judged an item twice"
