from __future__ import annotations

import gzip

import pandas as pd
import pytest

from labelcycle.errors import InputFileError, SchemaError
from labelcycle.readers import SOURCE_ROW, ColumnMap, read_table

ANN = "item_id,annotator_id,label\ni1,a,ok\ni2,b,misleading\n"


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_read_delimited_keeps_values_as_written(tmp_path, suffix, sep):
    path = tmp_path / f"ann{suffix}"
    path.write_text(ANN.replace(",", sep) + f"007{sep}c{sep}1.0\n")
    df = read_table(path, "annotations")
    assert list(df["item_id"]) == ["i1", "i2", "007"]
    assert df["label"].iloc[2] == "1.0"
    assert list(df[SOURCE_ROW]) == [1, 2, 3]


def test_read_parquet_and_jsonl_and_gzip_give_the_same_table(tmp_path):
    frame = pd.DataFrame({"item_id": ["i1", "i2"], "annotator_id": ["a", "b"], "label": ["ok", "misleading"]})
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    with gzip.open(tmp_path / "a.csv.gz", "wt") as fh:
        frame.to_csv(fh, index=False)
    tables = [read_table(tmp_path / n, "annotations") for n in ("a.parquet", "a.jsonl", "a.csv.gz")]
    for t in tables:
        pd.testing.assert_frame_equal(t[["item_id", "annotator_id", "label"]], frame)


def test_column_mapping_renames_to_the_contract(tmp_path):
    path = tmp_path / "answer.csv"
    path.write_text("question,worker,answer\nq1,w1,0\nq2,w2,1\n")
    df = read_table(
        path, "annotations", ColumnMap(item_col="question", annotator_col="worker", label_col="answer")
    )
    # each mapped column's values land under its contract name, and the source names are gone
    assert df[["item_id", "annotator_id", "label"]].values.tolist() == [["q1", "w1", "0"], ["q2", "w2", "1"]]
    assert not {"question", "worker", "answer"} & set(df.columns)


def test_headerless_file_takes_names(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("w1\turl1\tG\nw2\turl1\tP\n")
    df = read_table(path, "annotations", ColumnMap(names=("annotator_id", "item_id", "label")))
    assert list(df["label"]) == ["G", "P"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(InputFileError, match=r"nope\.csv: no such file"):
        read_table(tmp_path / "nope.csv", "annotations")


def test_empty_file_is_a_file_level_error(tmp_path):
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputFileError, match=r"e\.csv: the file is empty"):
        read_table(tmp_path / "e.csv", "annotations")


def test_header_only_is_a_file_level_error(tmp_path):
    (tmp_path / "h.csv").write_text("item_id,annotator_id,label\n")
    with pytest.raises(InputFileError, match=r"h\.csv: has a header but no data rows"):
        read_table(tmp_path / "h.csv", "annotations")


def test_missing_columns_name_the_file_and_the_option(tmp_path):
    (tmp_path / "m.csv").write_text("item,annotator_id,label\ni1,a,ok\n")
    with pytest.raises(SchemaError, match=r"m\.csv: missing required column\(s\) \['item_id'\].*--item-col"):
        read_table(tmp_path / "m.csv", "annotations")


def test_ragged_row_names_the_line(tmp_path):
    (tmp_path / "r.csv").write_text("item_id,annotator_id,label\ni1,a,ok\ni2,b,ok,extra\n")
    with pytest.raises(InputFileError, match=r"r\.csv: ragged row at line 3: expected 3 fields, saw 4"):
        read_table(tmp_path / "r.csv", "annotations")


def test_non_utf8_file_names_the_line_and_a_fix(tmp_path):
    (tmp_path / "l.csv").write_bytes("item_id,annotator_id,label\ni1,a,ok\ni2,Jos\xe9,ok\n".encode("latin-1"))
    with pytest.raises(InputFileError, match=r"l\.csv: is not valid UTF-8 \(line 3.*iconv"):
        read_table(tmp_path / "l.csv", "annotations")


def test_corrupt_parquet_is_reported(tmp_path):
    (tmp_path / "c.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputFileError, match=r"c\.parquet: is not a readable Parquet file"):
        read_table(tmp_path / "c.parquet", "annotations")


def test_broken_jsonl_line_is_named(tmp_path):
    (tmp_path / "b.jsonl").write_text(
        '{"item_id": "i1", "annotator_id": "a", "label": "ok"}\n{"item_id": "i2",\n'
    )
    with pytest.raises(InputFileError, match=r"b\.jsonl: line 2 is not valid JSON"):
        read_table(tmp_path / "b.jsonl", "annotations")


def test_unknown_extension_is_refused(tmp_path):
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(InputFileError, match=r"cannot tell the format"):
        read_table(tmp_path / "x.xlsx", "annotations")


ODD_BUT_VALID = {
    "quotes_and_newlines.csv": 'item_id,annotator_id,label\n"i,1",a,"line\nbreak"\ni2,"say ""hi""",ok\n',
    "spaces_and_empties.csv": "item_id , annotator_id,label\n i1 ,,NA\n\ni2,b, ok \r\ni3,c,\n",
    "raw_quotes.tsv": 'item_id\tannotator_id\tlabel\n"i1\ta"b\t"ok\ni2\tb\tx"y\n',
    "numbers.csv": "item_id,annotator_id,label,duration_s\n007,1,1.0,1e3\n8,2,nan,\n",
    "short_row.csv": "item_id,annotator_id,label\ni1,a\ni2,b,ok\n",
    "bom.csv": "\ufeffitem_id,annotator_id,label\ni1,a,ok\n",
    "dup_header.csv": "item_id,annotator_id,label,label\ni1,a,ok,x\n",
    "unnamed.csv": "item_id,annotator_id,label,\ni1,a,ok,x\n",
    "implicit_index.csv": "item_id,annotator_id,label\nr1,i1,a,ok\nr2,i2,b,ok\n",
}


@pytest.mark.parametrize("name", sorted(ODD_BUT_VALID))
def test_arrow_fast_path_reads_exactly_like_pandas(tmp_path, name):
    from pathlib import Path

    from labelcycle import readers

    path = Path(tmp_path) / name
    path.write_text(ODD_BUT_VALID[name], encoding="utf-8")
    sep = "\t" if name.endswith(".tsv") else ","
    expected = readers._read_delimited_pandas(path, sep, None, None)
    got = readers._read_delimited(path, sep, None, None)
    pd.testing.assert_frame_equal(got, expected)


def test_arrow_fast_path_with_names_reads_exactly_like_pandas(tmp_path):
    from labelcycle import readers

    path = tmp_path / "headerless.csv"
    path.write_text("w1,i1,ok\nw2,i2,spam\n")
    names = ("annotator_id", "item_id", "label")
    expected = readers._read_delimited_pandas(path, ",", None, names)
    pd.testing.assert_frame_equal(readers._read_delimited(path, ",", None, names), expected)
    assert readers._read_delimited_arrow(path, ",", names) is not None
