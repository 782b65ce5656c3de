from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from labelcycle.aggregation import MajorityVote
from labelcycle.annotators.agreement import (
    agreement_summary,
    cohen_kappa_vs_consensus,
    fleiss_kappa,
    krippendorff_alpha,
)
from labelcycle.errors import SchemaError, ValidationError


def long_table(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


def krippendorff_example() -> pd.DataFrame:
    """Krippendorff (2011), 'Computing Krippendorff's Alpha-Reliability', 4 observers x 12 units with gaps."""
    data = {
        "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    }
    return long_table(
        [(f"u{u}", a, str(v)) for a, vals in data.items() for u, v in enumerate(vals) if v is not None]
    )


def fleiss_example() -> pd.DataFrame:
    """Fleiss (1971) as on Wikipedia: 10 subjects x 14 raters x 5 categories, kappa = 0.210."""
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    rows = []
    for i, counts in enumerate(table):
        rater = 0
        for c, n in enumerate(counts):
            for _ in range(n):
                rows.append((f"s{i}", f"r{rater}", f"c{c}"))
                rater += 1
    return long_table(rows)


def test_krippendorff_alpha_matches_krippendorffs_worked_example():
    stat = krippendorff_alpha(krippendorff_example())
    assert stat.value == pytest.approx(0.743, abs=5e-4)
    assert stat.n_items == 11  # unit 12 has a single value: not pairable
    assert stat.n_labels == 40


def test_krippendorff_alpha_handles_unequal_label_counts_exactly():
    # item 1: a,a; item 2: a,b,b; item 3: b alone (unpairable) -> o = [[2,1],[1,1]], n = 5, alpha = 1 - 4*2/12
    ann = long_table(
        [("1", "x", "a"), ("1", "y", "a"), ("2", "x", "a"), ("2", "y", "b"), ("2", "z", "b"), ("3", "x", "b")]
    )
    assert krippendorff_alpha(ann).value == pytest.approx(1 / 3)


def test_krippendorff_alpha_is_one_on_perfect_agreement_and_none_on_a_single_category():
    perfect = long_table([("1", "x", "a"), ("1", "y", "a"), ("2", "x", "b"), ("2", "y", "b")])
    assert krippendorff_alpha(perfect).value == pytest.approx(1.0)
    one = long_table([("1", "x", "a"), ("1", "y", "a"), ("2", "x", "a"), ("2", "y", "a")])
    stat = krippendorff_alpha(one)
    assert stat.value is None and "one category" in stat.note


def test_fleiss_kappa_matches_the_textbook_example():
    stat = fleiss_kappa(fleiss_example())
    assert stat.value == pytest.approx(0.210, abs=5e-4)
    assert stat.n_items == 10


def test_fleiss_kappa_uses_the_items_with_the_modal_number_of_labels():
    ann = krippendorff_example()
    stat = fleiss_kappa(ann)
    assert stat.n_items == 8  # 8 units have 4 values, 3 have 3, 1 has 1
    assert "modal 4 labels" in stat.note
    sub = ann[ann.groupby("item_id")["label"].transform("size") == 4]
    assert stat.value == pytest.approx(fleiss_kappa(sub).value)


def test_fleiss_kappa_is_none_with_a_reason_when_it_does_not_apply():
    single = long_table([("1", "x", "a"), ("2", "x", "b")])
    assert fleiss_kappa(single).value is None
    assert "no item has two" in fleiss_kappa(single).note
    one_item = long_table([("1", "x", "a"), ("1", "y", "b"), ("2", "x", "a")])
    assert "fewer than two items" in fleiss_kappa(one_item).note


def test_cohen_kappa_vs_consensus_equals_sklearn_for_every_annotator(crowd):
    agg = MajorityVote().fit(crowd.annotations)
    got = cohen_kappa_vs_consensus(crowd.annotations, agg.labels_).set_index("annotator_id")
    for name, rows in crowd.annotations.groupby("annotator_id"):
        ref = agg.labels_.reindex(rows["item_id"]).to_numpy()
        assert got.loc[name, "kappa_consensus"] == pytest.approx(
            cohen_kappa_score(ref, rows["label"].to_numpy())
        )
        assert got.loc[name, "n_consensus"] == len(rows)


def test_cohen_kappa_is_nan_when_chance_agreement_is_one():
    ann = long_table([("1", "x", "a"), ("2", "x", "a")])
    got = cohen_kappa_vs_consensus(ann, pd.Series(["a", "a"], index=["1", "2"]))
    assert np.isnan(got["kappa_consensus"].iloc[0])
    assert got["agreement_consensus"].iloc[0] == 1.0


def test_agreement_summary_reports_alpha_fleiss_and_consensus_figures():
    ann = krippendorff_example()
    out = agreement_summary(ann, MajorityVote().fit(ann).labels_)
    assert out["krippendorff_alpha"] == pytest.approx(0.743, abs=5e-4)
    assert out["n_items"] == 12 and out["n_annotators"] == 4 and out["n_labels"] == 41
    assert 0 < out["consensus_agreement"] <= 1
    assert out["fleiss_kappa_n_items"] == 8


def test_agreement_rejects_a_table_without_the_label_column():
    with pytest.raises(SchemaError, match=r"lack the column\(s\) \['label'\]"):
        krippendorff_alpha(pd.DataFrame({"item_id": ["1"], "annotator_id": ["x"]}))


def test_agreement_rejects_an_empty_table():
    with pytest.raises(ValidationError, match="annotations are empty"):
        krippendorff_alpha(long_table([]))
