"""Row-level diff of curated label tables: exact counts on tiny frames."""

from __future__ import annotations

import pandas as pd
import pytest

from labelcycle.errors import SchemaError, ValidationError
from labelcycle.versioning.diff import diff_datasets


def labels(pairs):
    return pd.DataFrame(pairs, columns=["item_id", "label"])


BASE = labels([("i1", "ok"), ("i2", "ok"), ("i3", "misleading"), ("i4", "prohibited"), ("i5", "ok")])
CAND = labels(
    [("i1", "ok"), ("i2", "misleading"), ("i3", "ok"), ("i4", "prohibited"), ("i6", "ok"), ("i7", "ok")]
)


def test_diff_counts_added_removed_and_changed_items():
    d = diff_datasets(BASE, CAND)
    assert (d.items_base, d.items_candidate) == (5, 6)
    assert (d.items_added, d.items_removed, d.items_common, d.labels_changed) == (2, 1, 4, 2)
    assert d.changed["item_id"].tolist() == ["i2", "i3"]
    assert d.changed["candidate_label"].tolist() == ["misleading", "ok"]


def test_transition_matrix_counts_every_common_item_once():
    t = diff_datasets(BASE, CAND).transitions
    assert list(t.index) == ["misleading", "ok", "prohibited"] == list(t.columns)
    assert t.loc["ok", "ok"] == 1 and t.loc["ok", "misleading"] == 1
    assert t.loc["misleading", "ok"] == 1 and t.loc["prohibited", "prohibited"] == 1
    assert int(t.to_numpy().sum()) == 4
    off_diagonal = int(t.to_numpy().sum() - t.to_numpy().trace())
    assert off_diagonal == 2


def test_identical_versions_have_an_empty_diff_whatever_the_row_order():
    d = diff_datasets(BASE, BASE.iloc[::-1])
    assert (d.items_added, d.items_removed, d.labels_changed) == (0, 0, 0)
    assert d.changed.empty and d.by_annotator.empty


def test_changes_are_broken_down_by_annotator_batch_and_method():
    base_ann = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i2", "i3", "i4", "i5"],
            "annotator_id": ["a", "a", "b", "b", "c", "c"],
            "label": ["ok", "ok", "misleading", "misleading", "prohibited", "ok"],
            "batch_id": ["w1", "w1", "w1", "w1", "w2", "w2"],
        }
    )
    cand_ann = pd.concat(
        [
            base_ann[base_ann["item_id"] != "i5"],
            pd.DataFrame(
                {
                    "item_id": ["i2", "i3", "i6", "i7"],
                    "annotator_id": ["c", "c", "a", "b"],
                    "label": ["misleading", "ok", "ok", "ok"],
                    "batch_id": ["w3"] * 4,
                }
            ),
        ],
        ignore_index=True,
    )
    d = diff_datasets(
        BASE,
        CAND,
        base_annotations=base_ann,
        candidate_annotations=cand_ann,
        base_method="majority_vote",
        candidate_method="dawid_skene",
    )
    by_ann = d.by_annotator.set_index("annotator_id")
    # i2 (ok -> misleading) was annotated by a, b, c; i3 (misleading -> ok) by b, c
    assert by_ann["items_changed"].to_dict() == {"a": 1, "b": 2, "c": 2}
    assert by_ann.loc["c", "agrees_with_candidate"] == 2 and by_ann.loc["c", "agrees_with_base"] == 0
    assert by_ann.loc["b", "agrees_with_base"] == 1
    by_batch = d.by_batch.set_index("batch")
    assert by_batch.loc["w3", "items_added"] == 2 and by_batch.loc["w3", "items_changed"] == 2
    assert by_batch.loc["w2", "items_removed"] == 1 and by_batch.loc["w1", "items_changed"] == 2
    assert d.by_method.iloc[0].to_dict() == {
        "method_base": "majority_vote",
        "method_candidate": "dawid_skene",
        "items_added": 2,
        "items_removed": 1,
        "labels_changed": 2,
    }
    assert d.annotations == {
        "base": 6,
        "candidate": 9,
        "added": 4,
        "removed": 1,
        "relabelled": 0,
        "items_count_changed": 5,
    }


def test_diff_to_dict_is_json_ready():
    import json

    out = json.loads(json.dumps(diff_datasets(BASE, CAND).to_dict()))
    assert out["items_added"] == 2 and out["transitions"]["ok"]["misleading"] == 1


def test_diff_rejects_tables_without_labels_or_with_duplicate_items():
    with pytest.raises(SchemaError, match=r"base curated labels lack column\(s\) \['label'\]"):
        diff_datasets(BASE[["item_id"]], CAND)
    with pytest.raises(ValidationError, match="candidate curated labels have duplicated item ids"):
        diff_datasets(BASE, pd.concat([CAND, CAND.head(1)]))


def test_arrow_text_tables_and_object_tables_give_the_same_diff():
    """Parquet versions load as Arrow-backed text; the diff works on them as they are (no Python strings)."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 3000
    ids = np.array([f"i{k:05d}" for k in range(n)], dtype=object)
    classes = np.array(["ok", "misleading", "prohibited"], dtype=object)

    def version(seed: int, keep: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        r = np.random.default_rng(seed)
        kept = ids[r.random(n) < keep]
        lab = pd.DataFrame({"item_id": kept, "label": classes[r.integers(0, 3, kept.size)]})
        ann = pd.DataFrame(
            {
                "item_id": np.repeat(kept, 3),
                "annotator_id": [f"w{k}" for k in rng.integers(0, 40, kept.size * 3)],
                "label": classes[r.integers(0, 3, kept.size * 3)],
                "batch_id": [f"b{k}" for k in r.integers(0, 5, kept.size * 3)],
            }
        )
        return lab, ann

    (bl, ba), (cl, ca) = version(1, 0.95), version(2, 0.95)
    as_object = diff_datasets(bl, cl, base_annotations=ba, candidate_annotations=ca)
    arrow = [f.astype("string[pyarrow]") for f in (bl, ba, cl, ca)]
    as_arrow = diff_datasets(arrow[0], arrow[2], base_annotations=arrow[1], candidate_annotations=arrow[3])
    assert as_arrow.to_dict(max_rows=10_000) == as_object.to_dict(max_rows=10_000)
    for name in ("changed", "added", "removed", "by_annotator", "by_batch"):
        pd.testing.assert_frame_equal(getattr(as_arrow, name), getattr(as_object, name), check_dtype=False)
    assert (
        as_object.labels_changed > 0 and as_object.items_added > 0 and as_object.annotations["relabelled"] > 0
    )
