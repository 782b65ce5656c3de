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

    from labelcycle import delimited

    path = Path(tmp_path) / name
    path.write_text(ODD_BUT_VALID[name], encoding="utf-8")
    sep = "\t" if name.endswith(".tsv") else ","
    expected = delimited._read_delimited_pandas(path, sep, None, None)
    got = delimited.read_delimited(path, sep, None, None)
    pd.testing.assert_frame_equal(got, expected)


def test_arrow_fast_path_with_names_reads_exactly_like_pandas(tmp_path):
    from labelcycle import delimited

    path = tmp_path / "headerless.csv"
    path.write_text("w1,i1,ok\nw2,i2,spam\n")
    names = ("annotator_id", "item_id", "label")
    expected = delimited._read_delimited_pandas(path, ",", None, names)
    pd.testing.assert_frame_equal(delimited.read_delimited(path, ",", None, names), expected)
    assert delimited._read_delimited_arrow(path, ",", names) is not None


# -- missing values: only an empty cell, unless the file's markers are declared -----------------------

NA_LIKE = ["NA", "none", "null", "N/A", "nan", "NULL", "None"]


@pytest.mark.parametrize("name", ["v.csv", "v.tsv", "v.csv.gz", "v.jsonl"])
def test_na_like_words_are_read_as_text_and_only_an_empty_cell_is_empty(tmp_path, name):
    frame = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(len(NA_LIKE) + 1)],
            "annotator_id": "a",
            "label": [*NA_LIKE, ""],
        }
    )
    path = tmp_path / name
    if name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    df = read_table(path, "annotations")
    assert df["label"].tolist() == [*NA_LIKE, ""]


@pytest.mark.parametrize("name", ["v.csv", "v.csv.gz", "v.jsonl"])
def test_declared_na_values_are_read_as_empty_cells_and_nothing_else_is(tmp_path, name):
    frame = pd.DataFrame(
        {"item_id": ["i1", "i2", "i3", "i4"], "annotator_id": "a", "label": ["NA", "null", "none", "ok"]}
    )
    path = tmp_path / name
    if name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    df = read_table(path, "annotations", ColumnMap(na_values=("NA", "null")))
    assert df["label"].tolist() == ["", "", "none", "ok"]


def test_declared_na_values_travel_in_the_column_map_and_absent_ones_leave_it_as_before():
    declared = ColumnMap(item_col="q", na_values=("NA", "null"))
    assert ColumnMap.from_dict(declared.to_dict()) == declared
    # a mapping without markers serialises as it always did (batch digests of old deliveries stay put)
    assert "na_values" not in ColumnMap(item_col="q").to_dict()


# -- decompression limits --------------------------------------------------------------------------------


def _bomb(path, n_bytes: int, opener=gzip.open) -> None:
    """A compressed CSV that expands to about ``n_bytes`` (one short row repeated)."""
    row = b"i1,a,ok\n"
    block = row * (1 << 17)
    with opener(path, "wb") as fh:
        fh.write(b"item_id,annotator_id,label\n")
        for _ in range(n_bytes // len(block)):
            fh.write(block)


def test_a_gzip_bomb_is_refused_early_with_a_message_saying_what_to_do(tmp_path):
    import time

    path = tmp_path / "bomb.csv.gz"
    _bomb(path, 200 * 2**20)  # about 300 KB expanding to 200 MiB (the issue: 509 KB to 200 MB)
    assert path.stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(InputFileError, match=r"bomb\.csv\.gz: decompresses to more than .*--max-input-size"):
        read_table(path, "annotations")
    assert time.perf_counter() - start < 30  # stops at the limit (the issue: 288 s and 6.6 GB)


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".jsonl.gz"])
def test_every_compression_counts_decompressed_bytes_against_the_limit(tmp_path, suffix):
    import bz2
    import lzma

    from labelcycle.compressed import InputLimits

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suffix[suffix.rindex(".") :]]
    path = tmp_path / f"big{suffix}"
    if suffix.startswith(".jsonl"):
        with opener(path, "wb") as fh:
            fh.write(b'{"item_id": "i1", "annotator_id": "a", "label": "ok"}\n' * 40_000)
    else:
        _bomb(path, 2 * 2**20, opener)
    with pytest.raises(InputFileError, match=r"decompresses to more than 1\.0 MiB"):
        read_table(path, "annotations", limits=InputLimits(max_bytes=2**20, max_ratio=None))


def test_an_explicit_limit_lets_a_genuine_high_ratio_file_through(tmp_path):
    from labelcycle.compressed import InputLimits

    path = tmp_path / "repetitive.csv.gz"
    _bomb(path, 18 * 2**20)  # over the ratio floor (16 MiB) at a ratio far above 100x
    with pytest.raises(InputFileError, match="decompresses to more than"):
        read_table(path, "annotations")
    df = read_table(path, "annotations", limits=InputLimits.explicit(64 * 2**20))
    assert len(df) == 18 * 2**20 // 8


def test_the_environment_sets_the_limit_and_a_bad_value_is_a_config_error(tmp_path, monkeypatch):
    from labelcycle.compressed import MAX_INPUT_ENV, InputLimits
    from labelcycle.errors import ConfigError

    monkeypatch.setenv(MAX_INPUT_ENV, "1MiB")
    assert InputLimits.from_env() == InputLimits.explicit(2**20)
    path = tmp_path / "small.csv.gz"
    _bomb(path, 2 * 2**20)
    with pytest.raises(InputFileError, match=r"more than 1\.0 MiB.*LABELCYCLE_MAX_INPUT_BYTES"):
        read_table(path, "annotations")
    monkeypatch.setenv(MAX_INPUT_ENV, "lots")
    with pytest.raises(ConfigError, match=r"LABELCYCLE_MAX_INPUT_BYTES='lots'.*e\.g\. 4GiB"):
        InputLimits.from_env()


def test_parse_size_reads_plain_bytes_and_binary_and_decimal_units():
    from labelcycle.compressed import parse_size

    assert parse_size("1024") == 1024
    assert parse_size("4GiB") == 4 * 2**30
    assert parse_size("500 MB") == 500 * 10**6
    assert parse_size("2g") == 2 * 2**30


@pytest.mark.parametrize("stored", ["categorical", "text"])
def test_a_parquet_file_whose_data_expands_past_the_limit_is_refused_before_it_is_decoded(tmp_path, stored):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labelcycle.compressed import InputLimits

    path = tmp_path / "bomb.parquet"
    # one 100 KB message repeated: 2 GB (categorical) or 100 MB (text) once read, a few KB on disk
    n = 20_000 if stored == "categorical" else 1_000
    text = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array(["x" * 100_000]))
    if stored == "text":
        text = text.dictionary_decode()
    table = pa.table({"item_id": [f"i{i}" for i in range(n)], "text": text})
    pq.write_table(table, path, use_dictionary=True, compression="zstd")
    assert path.stat().st_size < 2_000_000
    with pytest.raises(InputFileError, match=r"bomb\.parquet: holds more than 64\.0 MiB .*--max-input-size"):
        read_table(path, "items", limits=InputLimits(max_bytes=64 * 2**20))


def test_a_parquet_file_under_the_limit_reads_as_it_was_written_categories_and_vectors_included(tmp_path):
    import pyarrow.parquet as pq

    from labelcycle.compressed import InputLimits

    path = tmp_path / "items.parquet"
    df = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "region": pd.Categorical(["NA", "EU", "NA"]),
            "text": ["hello", None, "bye"],
            "emb": [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
            "price": [1.5, 2.0, None],
        }
    )
    df.to_parquet(path, index=False, row_group_size=2)
    got = read_table(path, "items", limits=InputLimits(max_bytes=2**20))
    expected = pq.read_table(path).to_pandas()
    expected["item_id"] = expected["item_id"].astype(str)
    pd.testing.assert_frame_equal(got[expected.columns.tolist()], expected)


def test_a_directory_of_parquet_files_reads_as_one_table_in_file_name_order(tmp_path):
    data = tmp_path / "annotations"
    (data / "week=2").mkdir(parents=True)
    first = pd.DataFrame({"item_id": ["i1", "i2"], "annotator_id": ["a1", "a1"], "label": ["ok", "spam"]})
    second = pd.DataFrame({"item_id": ["i3"], "annotator_id": ["a2"], "label": ["ok"]})
    first.to_parquet(data / "part-0.parquet", index=False)
    second.to_parquet(data / "week=2" / "part-1.parquet", index=False)
    (data / "_SUCCESS").write_text("")
    df = read_table(data, "annotations")
    assert df["item_id"].tolist() == ["i1", "i2", "i3"] and df["_source_row"].tolist() == [1, 2, 3]


def test_a_directory_without_parquet_files_is_an_input_error_saying_what_it_needs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="directory without .parquet files"):
        read_table(tmp_path / "empty", "annotations")
