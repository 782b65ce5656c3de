"""A directory of Parquet files checked at ingest from its schemas, footers and label column."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelcycle.compressed import InputLimits
from labelcycle.errors import InputFileError, SchemaError
from labelcycle.parquet_dir import inspect_parquet_dir
from labelcycle.readers import ColumnMap, read_table


def _part(path: Path, **columns) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_parquet(path, index=False, row_group_size=2)


def _export(path: Path) -> Path:
    _part(
        path / "a.parquet", question=["q1", "q2", "q3"], worker=["w1", "w1", "w2"], answer=["ok", "bad", None]
    )
    _part(path / "b.parquet", question=["q4", "q5"], worker=["w2", "w3"], answer=[" ok", "NA"])
    (path / "_SUCCESS").write_text("")
    return path


MAPPING = ColumnMap(item_col="question", annotator_col="worker", label_col="answer", na_values=("NA",))


def test_rows_and_label_counts_match_what_reading_the_whole_folder_gives(tmp_path):
    folder = inspect_parquet_dir(_export(tmp_path / "x"), "annotations", MAPPING, InputLimits(), True)
    whole = read_table(tmp_path / "x", "annotations", MAPPING)
    assert folder.rows == len(whole) == 5
    assert (
        dict(folder.labels)
        == whole["label"].fillna("").value_counts().to_dict()
        == {"ok": 1, "bad": 1, "": 2, " ok": 1}
    )
    assert folder.rows_with_label_in(["ok"]) == 2 and folder.labels_seen() == {"ok", "bad"}
    assert [p.name for p in folder.files] == ["a.parquet", "b.parquet"]
    assert [p.name for p in folder.skipped] == ["_SUCCESS"]


def test_without_a_size_limit_only_the_label_column_is_read_and_counted_the_same(tmp_path):
    limited = inspect_parquet_dir(_export(tmp_path / "x"), "annotations", MAPPING, InputLimits(), True)
    unlimited = inspect_parquet_dir(tmp_path / "x", "annotations", MAPPING, InputLimits.unlimited(), True)
    assert unlimited.labels == limited.labels and unlimited.rows == limited.rows


def test_a_part_missing_a_mapped_column_is_named(tmp_path):
    _export(tmp_path / "x")
    _part(tmp_path / "x" / "c.parquet", question=["q6"], who=["w4"], answer=["ok"])
    with pytest.raises(
        SchemaError, match=r"c\.parquet: the mapped column\(s\) \['worker'\] are not in the file"
    ):
        inspect_parquet_dir(tmp_path / "x", "annotations", MAPPING, InputLimits(), True)


def test_a_column_whose_type_differs_between_parts_is_named_with_both_files(tmp_path):
    _export(tmp_path / "x")
    _part(tmp_path / "x" / "c.parquet", question=[6], worker=["w4"], answer=["ok"])
    with pytest.raises(
        SchemaError, match=r"c\.parquet: column 'question' is int64 here but \w+ in .*a\.parquet"
    ):
        inspect_parquet_dir(tmp_path / "x", "annotations", MAPPING, InputLimits(), True)


def test_parts_without_rows_are_nothing_to_ingest(tmp_path):
    _part(tmp_path / "x" / "a.parquet", item_id=pd.Series([], dtype=str), label=pd.Series([], dtype=str))
    with pytest.raises(InputFileError, match=r"x: its 1 Parquet file\(s\) hold no rows"):
        inspect_parquet_dir(tmp_path / "x", "gold", ColumnMap(), InputLimits(), True)


def test_a_part_past_the_size_limit_is_refused_naming_the_part(tmp_path):
    _part(tmp_path / "x" / "a.parquet", item_id=["i1"], label=["ok"])
    big = pa.table({"item_id": [f"i{k}" for k in range(1000)], "label": ["x" * 1000] * 1000})
    pq.write_table(big, tmp_path / "x" / "c.parquet")  # dictionary-encoded: tiny on disk
    with pytest.raises(InputFileError, match=r"c\.parquet: holds more than 9\.8 KiB of data once read"):
        inspect_parquet_dir(tmp_path / "x", "gold", ColumnMap(), InputLimits.explicit(10_000), True)


def test_a_part_that_is_not_parquet_is_named(tmp_path):
    _export(tmp_path / "x")
    (tmp_path / "x" / "c.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputFileError, match=r"c\.parquet: is not a readable Parquet file"):
        inspect_parquet_dir(tmp_path / "x", "annotations", MAPPING, InputLimits(), True)


def test_parts_whose_types_differ_only_in_width_are_one_data_set_and_read_as_one(tmp_path):
    small = pa.table({"item_id": pa.array(["i1"], pa.string()), "n": pa.array([1], pa.int32())})
    large = pa.table({"item_id": pa.array(["i2"], pa.large_string()), "n": pa.array([2], pa.int64())})
    (tmp_path / "x").mkdir()
    pq.write_table(small, tmp_path / "x" / "a.parquet")
    pq.write_table(large, tmp_path / "x" / "b.parquet")
    assert inspect_parquet_dir(tmp_path / "x", "items", ColumnMap(), InputLimits(), False).rows == 2
    items = read_table(tmp_path / "x", "items")
    assert items["item_id"].tolist() == ["i1", "i2"] and items["n"].tolist() == [1, 2]


def test_the_size_limit_holds_for_each_file_not_for_their_total(tmp_path):
    (tmp_path / "x").mkdir()
    for k in range(3):
        part = pa.table({"item_id": [f"i{k}-{j}" for j in range(100)], "label": ["y" * 50] * 100})
        pq.write_table(part, tmp_path / "x" / f"p{k}.parquet")  # ~6.5 KB each once read, ~20 KB together
    folder = inspect_parquet_dir(tmp_path / "x", "gold", ColumnMap(), InputLimits.explicit(10_000), True)
    assert folder.rows == 300 and folder.labels == {"y" * 50: 300}
