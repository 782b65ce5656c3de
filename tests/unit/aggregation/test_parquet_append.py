"""Appending one Parquet file's row groups to a copy of another, byte for byte."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelcycle.aggregation import parquet_append


def _table(n: int, seed: int, prefix: str) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "item_id": [f"{prefix}{i}" for i in range(n)],
            "label": pa.array(rng.choice(["ok", "bad", "ugly"], n)),
            "confidence": rng.random(n),
            "n_annotations": rng.integers(1, 9, n),
            "maybe": pa.array([None if i % 7 == 0 else float(i) for i in range(n)]),
        }
    ).replace_schema_metadata({"origin": "first"})


def _write(table: pa.Table, path, **options) -> None:
    pq.write_table(table, path, compression="snappy", use_dictionary=["label"], **options)


def test_a_decoded_footer_encodes_back_to_its_own_bytes(tmp_path):
    _write(_table(3000, 0, "i"), tmp_path / "a.parquet", row_group_size=700)
    start, meta = parquet_append.footer(tmp_path / "a.parquet")
    raw = (tmp_path / "a.parquet").read_bytes()
    assert parquet_append.encode(meta) == raw[start:-8]


def test_appended_file_reads_as_the_two_tables_concatenated_with_the_first_files_metadata(tmp_path):
    first, second = _table(5000, 0, "i"), _table(1234, 1, "w").replace_schema_metadata({"origin": "second"})
    _write(first, tmp_path / "a.parquet", row_group_size=2000)
    _write(second, tmp_path / "b.parquet")

    n = parquet_append.append(tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "out.parquet")

    got = pq.read_table(tmp_path / "out.parquet")
    assert n == got.num_rows == 6234
    assert got.equals(pa.concat_tables([first, second.replace_schema_metadata(first.schema.metadata)]))
    assert got.schema.metadata == first.schema.metadata
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert meta.num_row_groups == 4 and meta.row_group(3).num_rows == 1234
    last = pq.ParquetFile(tmp_path / "out.parquet").read_row_group(3)  # offsets of the moved row group
    assert last.column("item_id").to_pylist() == second.column("item_id").to_pylist()
    assert meta.row_group(3).column(2).statistics.max == pytest.approx(
        max(second.column("confidence").to_pylist())
    )


def test_files_of_different_schemas_or_with_page_indexes_are_refused_and_nothing_is_written(tmp_path):
    _write(_table(100, 0, "i"), tmp_path / "a.parquet")
    _write(_table(100, 1, "w").drop_columns(["maybe"]), tmp_path / "other.parquet")
    _write(_table(100, 1, "w"), tmp_path / "indexed.parquet", write_page_index=True)
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")

    for second, why in (("other", "different Parquet schemas"), ("indexed", "page indexes"), ("bad", "not")):
        with pytest.raises(parquet_append.CannotAppend, match=why):
            parquet_append.append(
                tmp_path / "a.parquet", tmp_path / f"{second}.parquet", tmp_path / "out.parquet"
            )
        assert not (tmp_path / "out.parquet").exists()


def test_a_file_appended_to_week_after_week_keeps_every_row_group_in_order(tmp_path):
    weeks = [_table(3000, 0, "i")] + [_table(100 + w, w, f"w{w}-") for w in range(1, 4)]
    for w, table in enumerate(weeks):
        _write(table, tmp_path / f"{w}.parquet")
    current = tmp_path / "0.parquet"
    for w in range(1, 4):
        parquet_append.append(current, tmp_path / f"{w}.parquet", tmp_path / f"after{w}.parquet")
        current = tmp_path / f"after{w}.parquet"

    got = pq.read_table(current)
    assert got.equals(pa.concat_tables([t.replace_schema_metadata(weeks[0].schema.metadata) for t in weeks]))
    meta = pq.ParquetFile(current).metadata
    assert [meta.row_group(g).num_rows for g in range(meta.num_row_groups)] == [3000, 101, 102, 103]
