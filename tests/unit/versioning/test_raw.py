"""Raw batches: content-addressed copies whose column mapping travels with them."""

from __future__ import annotations

import stat

from labelcycle import catalog, schema
from labelcycle.readers import ColumnMap
from labelcycle.versioning import raw

MAPPING = ColumnMap(item_col="question", annotator_col="worker", label_col="answer")


def _delivery(tmp_path, columns: ColumnMap) -> list[raw.BatchFile]:
    path = tmp_path / "answers.csv"
    path.write_text("question,worker,answer\nq1,w1,ok\nq2,w2,misleading\n")
    return [raw.BatchFile("annotations", path, columns)]


def test_a_batch_with_a_column_mapping_reads_back_under_the_contract_names(tmp_path):
    root = tmp_path / "proj"
    batch, new = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert new and batch.path == root / catalog.RAW / batch.digest
    tables = raw.read_all(root)
    ann = tables["annotations"]
    assert ann[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]].values.tolist() == [
        ["q1", "w1", "ok"],
        ["q2", "w2", "misleading"],
    ]
    assert set(ann[schema.RAW_BATCH]) == {batch.digest}
    assert tables["items"] is None and tables["gold"] is None


def test_the_same_delivery_is_one_batch_and_a_new_mapping_is_another(tmp_path):
    root = tmp_path / "proj"
    first, _ = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    again, new = raw.write_batch(root, _delivery(tmp_path, MAPPING), {"annotations": 2})
    assert not new and again.digest == first.digest
    swapped = ColumnMap(item_col="worker", annotator_col="question", label_col="answer")
    other, new = raw.write_batch(root, _delivery(tmp_path, swapped), {"annotations": 2})
    assert new and other.digest != first.digest
    assert [b.digest for b in raw.list_batches(root)] == sorted(
        [first.digest, other.digest], key=lambda d: raw.load_batch(root / catalog.RAW / d).ingested_at
    )


def test_batch_files_are_read_only(tmp_path):
    batch, _ = raw.write_batch(tmp_path / "proj", _delivery(tmp_path, MAPPING), {"annotations": 2})
    for child in batch.path.iterdir():
        assert not child.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
