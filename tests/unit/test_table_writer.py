"""CSV/TSV outputs written with Arrow are the bytes pandas' ``to_csv`` writes, piece by piece or whole."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import lzma

import numpy as np
import pandas as pd
import pytest

from labelcycle.errors import ConfigError
from labelcycle.readers import read_table, write_table
from labelcycle.table_writer import TableWriter, float_text


def _zoo() -> pd.DataFrame:
    """One column of each kind an output may hold, with the cells that need quoting or care."""
    n = 6
    return pd.DataFrame(
        {
            "item_id": ["a", "b,c", 'q"x', "l\nm", "", None],
            "text": ["a\tb", "x;y", "plain", None, "'=1", " sp "],
            "score": [1.0, 0.1, 1e16, 1e-5, np.nan, 0.30000000000000004],
            "f32": np.array([0.1, 1.0, 1e-5, 3.4e38, np.nan, 16777216.0], dtype=np.float32),
            "n": np.arange(n),
            "u8": np.arange(n, dtype=np.uint8),
            "Int": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "Float": pd.array([1.5, None, 3.0, 4, 5, 6], dtype="Float64"),
            "flag": [True, False, True, False, True, False],
            "maybe": pd.array([True, None, False, True, True, False], dtype="boolean"),
            "at": pd.to_datetime(
                ["2024-01-01", "2024-01-01 10:00:01.5", None, *["2024-01-01"] * 3], format="mixed"
            ),
            "day": pd.to_datetime(["2024-01-01", "2024-01-02", None, *["2024-01-01"] * 3]),
            "tz": pd.to_datetime(["2024-01-01 10:00", None, *["2024-01-02 00:00"] * 4]).tz_localize(
                "Europe/Paris"
            ),
            "took": pd.to_timedelta([1, 2, None, 4, 5, 6], unit="s"),
            "cat": pd.Categorical(["x", "y,z", "x", None, "y", "x"]),
            "cat_float": pd.Categorical([1.0, 2.5, None, 1.0, 1.0, 1.0]),
            "cat_day": pd.Categorical(pd.to_datetime(["2024-01-01"] * 5 + [None])),
            "mixed": [1, "a", 2.5, True, None, float("nan")],
            "bools": [True, False, None, True, True, False],
            "objects": [[1, 2], {"a": 1}, (1,), b"x", pd.Timestamp("2024-01-01"), np.float64(0.1)],
            "month": pd.period_range("2024-01", periods=n, freq="M"),
            "string": pd.array(["a", None, "c", "d", "e", "f"], dtype="string"),
            7: range(n),
            "a,b": range(n),
        }
    )


@pytest.mark.parametrize("name, sep", [("out.csv", ","), ("out.tsv", "\t")])
def test_write_table_writes_csv_and_tsv_byte_for_byte_as_pandas_to_csv(tmp_path, name, sep):
    df = _zoo()
    write_table(df, tmp_path / name)
    assert (tmp_path / name).read_text(encoding="utf-8") == df.to_csv(index=False, sep=sep)


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame({"item_id": ["a", "", None, "b,c"]}),
        pd.DataFrame({"score": [1.0, np.nan]}),
        pd.DataFrame({"item_id": pd.Series([], dtype=object), "score": pd.Series([], dtype=float)}),
        pd.DataFrame(index=range(3)),
    ],
    ids=["one-text-column", "one-float-column", "no-rows", "no-columns"],
)
def test_edge_shapes_are_written_as_pandas_writes_them(tmp_path, df):
    write_table(df, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text(encoding="utf-8") == df.to_csv(index=False)


def test_float_text_is_pythons_repr_of_every_float64_and_nan_is_null():
    rng = np.random.default_rng(7)
    any_bits = rng.integers(0, 2**64, 200_000, dtype=np.uint64).view(np.float64)  # every sign and exponent
    edges = [0.0, -0.0, 1.0, -1.0, 1e15, 1e16, 1e21, 1e-4, 1.5e-4, 1e-5, 1e-6, 9.99e-7, 1e-7, 5e-324]
    edges += [123456789012345.0, 123456789012345.6, 9999999999999998.0, 2.0**53 + 2, np.inf, -np.inf, np.nan]
    values = np.concatenate(
        [
            any_bits[np.isfinite(any_bits)],
            np.array(edges),
            rng.random(20_000),
            rng.integers(-(10**6), 10**6, 20_000).astype(float),
            rng.random(20_000) * 1e-5,
            rng.random(20_000) * 1e-8,
            np.exp(rng.normal(0, 30, 50_000)),
        ]
    )
    expected = [None if np.isnan(v) else repr(float(v)) for v in values]
    assert float_text(values).to_pylist() == expected


def test_a_carriage_return_is_quoted_so_the_cell_reads_back_whole(tmp_path):
    df = pd.DataFrame({"item_id": ["i1", "i2"], "annotator_id": ["a", "b"], "label": ["ok", "x\ry"]})
    write_table(df, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes().endswith(b'i2,b,"x\ry"\n')
    assert read_table(tmp_path / "out.csv", "annotations")["label"].tolist() == ["ok", "x\ry"]


def test_text_with_commas_quotes_and_newlines_reads_back_as_written(tmp_path):
    ids = ["plain", "a,b", 'say "hi"', "two\nlines", "", "  spaced  "]
    df = pd.DataFrame({"item_id": ids, "annotator_id": "a", "label": ["ok", "x", "y", "z", "w", "v"]})
    write_table(df, tmp_path / "out.csv")
    back = read_table(tmp_path / "out.csv", "annotations")
    assert back["item_id"].tolist() == ids


def test_floats_read_back_exactly_and_stay_floats(tmp_path):
    scores = np.random.default_rng(3).random(1000) ** 9
    df = pd.DataFrame({"score": np.concatenate([scores, [1.0, 2.0, 0.0]])})
    write_table(df, tmp_path / "out.csv")
    back = pd.read_csv(tmp_path / "out.csv")
    assert back["score"].dtype == np.float64
    np.testing.assert_array_equal(back["score"].to_numpy(), df["score"].to_numpy())


@pytest.mark.parametrize("suffix, opener", [(".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open)])
def test_compressed_outputs_hold_the_same_text(tmp_path, suffix, opener):
    df = _zoo()
    write_table(df, tmp_path / f"out.csv{suffix}")
    with opener(tmp_path / f"out.csv{suffix}", "rt", encoding="utf-8", newline="") as fh:
        assert fh.read() == df.to_csv(index=False)


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is not None, reason="zstandard is installed")
def test_a_zst_output_without_zstandard_is_a_config_error_that_says_what_to_install(tmp_path):
    with pytest.raises(ConfigError, match=r"out\.csv\.zst: writing \.zst files needs the zstandard package"):
        write_table(_zoo(), tmp_path / "out.csv.zst")
    assert list(tmp_path.iterdir()) == []  # no part file left behind


@pytest.mark.parametrize("name", ["out.csv", "out.tsv", "out.csv.gz"])
def test_table_writer_pieces_give_the_file_write_table_gives(tmp_path, name):
    df = _zoo().drop(columns=["at", "day", "tz", "cat_day"])  # a date column's format follows its values
    with TableWriter(tmp_path / "pieces" / name) as writer:
        for lo in range(0, len(df), 4):
            writer.write(df.iloc[lo : lo + 4])
    write_table(df, tmp_path / "whole" / name)
    read = gzip.open if name.endswith(".gz") else open
    with read(tmp_path / "pieces" / name, "rb") as a, read(tmp_path / "whole" / name, "rb") as b:
        assert a.read() == b.read()
