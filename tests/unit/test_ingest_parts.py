"""The out-of-core ingest (labelcycle.ingest_parts) gives the in-memory ingest's tables, counts and digest."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelcycle import schema
from labelcycle.aggregation import make_aggregator, streaming
from labelcycle.aggregation.parts import write_codes
from labelcycle.errors import StateError
from labelcycle.ingest_parts import PartedDigest, _row_groups, validate_parts
from labelcycle.ingest_spill import _part_of, in_order, spill, text_hash
from labelcycle.readers import ColumnMap
from labelcycle.validation import validate, validate_side_tables
from labelcycle.versioning import raw
from labelcycle.versioning.digest import table_digest

LABELS = ["ok", "misleading", "prohibited"]


def _write_batch(root: Path, name: str, tables: dict[str, pd.DataFrame]) -> None:
    src = root / "in" / name
    src.mkdir(parents=True)
    files = []
    for role, df in tables.items():
        df.to_csv(src / f"{role}.csv", index=False)
        files.append(raw.BatchFile(role, src / f"{role}.csv", ColumnMap()))
    raw.write_batch(root, files, {role: len(df) for role, df in tables.items()})


@pytest.fixture
def store(tmp_path) -> Path:
    """Two raw batches with every kind of row the ingest treats specially."""
    rng = np.random.default_rng(7)
    n = 400
    first = pd.DataFrame(
        {
            "item_id": [f"i{k % 90}" for k in range(n)],
            "annotator_id": [f"a{rng.integers(0, 12)}" for _ in range(n)],
            "label": rng.choice(LABELS, n),
            # items i0-i29 judged only at midnight, the others at second resolution
            "created_at": [
                f"2026-09-{1 + k % 20:02d}T00:00:00Z"
                if k % 90 < 30
                else f"2026-09-{1 + k % 20:02d}T10:11:{k % 60:02d}Z"
                for k in range(n)
            ],
            "duration_s": np.round(rng.uniform(1, 30, n), 2).astype(str),
        }
    )
    first.loc[3, "item_id"] = "  i3 "  # stripped to i3
    first.loc[5, "label"] = "spam"  # unknown label
    first.loc[7, "annotator_id"] = ""  # missing annotator
    first.loc[9, "duration_s"] = "-1"  # bad duration
    first.loc[11, "created_at"] = "yesterday"  # bad timestamp
    first.loc[13, "item_id"] = "i999"  # no row in the items table
    items = pd.DataFrame(
        {"item_id": [f"i{k}" for k in range(95)], "category": [f"c{k % 4}" for k in range(95)]}
    )
    items = pd.concat([items, pd.DataFrame({"item_id": ["i94"], "category": ["other"]})])  # conflicting item
    gold = pd.DataFrame({"item_id": [f"i{k}" for k in range(0, 90, 3)], "label": ["ok"] * 30})
    _write_batch(tmp_path, "one", {"annotations": first, "items": items, "gold": gold})
    second = pd.concat(
        [
            first.iloc[100:140],  # re-sent unchanged: merged
            pd.DataFrame(  # new judgements of judged pairs, later: they replace the first ones
                {
                    "item_id": first["item_id"].iloc[200:220],
                    "annotator_id": first["annotator_id"].iloc[200:220],
                    "label": "prohibited",
                    "created_at": "2026-10-01T08:00:00.250Z",
                    "duration_s": "3.5",
                }
            ),
        ]
    )
    _write_batch(tmp_path, "two", {"annotations": second})
    return tmp_path


def _in_memory(root: Path):
    tables = raw.read_all(root)
    return validate(tables["annotations"], LABELS, tables["items"], tables["gold"])


def _out_of_core(root: Path, part_rows: int, workers: int = 1):
    batches = raw.list_batches(root)
    tables = raw.read_all(root, ("items", "gold"))
    items, gold, counts, q = validate_side_tables(LABELS, tables["items"], tables["gold"])
    spilled = spill(root, batches, root / "spill", part_rows, workers)
    out = root / "annotations.parquet"
    done = validate_parts(spilled, LABELS, items, gold["item_id"], out, root / "codes", workers)
    return done, out, spilled


def _sorted(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df.sort_values(by).reset_index(drop=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_out_of_core_ingest_keeps_exactly_the_in_memory_rows_counts_repeats_and_quarantine(store, workers):
    expected = _in_memory(store)
    done, out, spilled = _out_of_core(store, part_rows=60 * workers, workers=workers)
    assert spilled.n == 8  # 440 rows in parts of about 60 (part_rows / workers)
    got = pd.read_parquet(out)
    key = [schema.ITEM_ID, schema.ANNOTATOR_ID]
    want = _sorted(expected.annotations, key)
    have = _sorted(got, key)
    assert list(have.columns) == list(want.columns)
    for col in want.columns:
        assert have[col].astype(str).tolist() == want[col].astype(str).tolist(), col
    assert done.counts.to_dict() == expected.counts["annotations"].to_dict()
    assert done.counts.reconciles and done.counts.merged == 40 and done.counts.repeats > 0
    rep = ["item_id", "annotator_id", "created_at"]
    assert _sorted(done.repeats, rep).astype(str).equals(_sorted(expected.repeats, rep).astype(str))
    quarantined = pd.concat(done.quarantine)
    mine = quarantined[quarantined["table"] == "annotations"]
    theirs = expected.quarantine[expected.quarantine["table"] == "annotations"]
    cols = ["raw_batch", "source_file", "source_row", "reason", "detail", "record"]
    assert _sorted(mine[cols], cols).equals(_sorted(theirs[cols], cols))


@pytest.mark.parametrize("workers", [1, 2])
def test_out_of_core_digest_equals_the_in_memory_table_digest(store, workers):
    expected = _in_memory(store)
    done, _, _ = _out_of_core(store, part_rows=60, workers=workers)
    assert done.digest == table_digest(expected.annotations.drop(columns=[schema.RAW_BATCH]))


def test_row_groups_of_each_part_cover_a_part_split_into_several_row_groups(tmp_path):
    path = tmp_path / "a.parquet"
    tables = [pa.table({"x": np.arange(n)}) for n in (7, 2, 5)]
    with pq.ParquetWriter(path, tables[0].schema) as writer:
        for t in tables:
            writer.write_table(t, row_group_size=3)  # the writer splits a part, never joins two
    groups = _row_groups(path, [7, 2, 5])
    assert groups == [[0, 1, 2], [3], [4, 5]]
    for t, g in zip(tables, groups, strict=True):
        assert pq.ParquetFile(path).read_row_groups(g).equals(t)


def test_parted_digest_rehashes_a_part_printed_at_another_timestamp_resolution():
    stamps = pd.to_datetime(
        ["2026-09-01", "2026-09-02", "2026-09-03 10:00:00.250"], utc=True, format="ISO8601"
    )
    table = pd.DataFrame({"item_id": ["a", "b", "c"], "created_at": stamps})
    parts = [table.iloc[:2], table.iloc[2:]]  # the first part alone would print dates only
    digest = PartedDigest()
    for part in parts:
        digest.add(part)
    reread = []
    got = digest.digest(lambda i: reread.append(i) or parts[i])
    assert got == table_digest(table)
    assert reread == [0]


def test_out_of_core_codes_fit_to_the_same_labels_as_the_in_memory_codes(store, tmp_path):
    expected = _in_memory(store)
    write_codes(expected.annotations, LABELS, tmp_path / "mem_codes", "x")
    _out_of_core(store, part_rows=60)
    labels = {}
    for name, path in (("memory", tmp_path / "mem_codes"), ("parts", store / "codes")):
        source = streaming.ParquetParts(path)
        model = make_aggregator("dawid_skene", classes=LABELS)
        fitted = streaming.fit(source, model)
        labels[name] = streaming.result(source, fitted).set_index("item_id").sort_index()
    assert labels["parts"]["label"].equals(labels["memory"]["label"])
    np.testing.assert_allclose(labels["parts"]["confidence"], labels["memory"]["confidence"], atol=1e-9)
    meta = streaming.ParquetParts(store / "codes").meta
    assert meta["batches"] == [b.digest for b in raw.list_batches(store)]


def test_table_digest_of_timestamps_does_not_depend_on_the_row_index():
    stamps = pd.to_datetime(["2026-09-01 10:00:00", "2026-09-03 10:00:00.250"], utc=True, format="ISO8601")
    table = pd.DataFrame({"item_id": ["a", "c"], "created_at": stamps})
    assert table_digest(table.set_axis([7, 9])) == table_digest(table)


def test_out_of_core_ingest_of_a_parquet_folder_numbers_rows_as_reading_the_folder_whole(tmp_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "in" / "annotations"
    src.mkdir(parents=True)
    for k in range(3):
        df = pd.DataFrame(
            {
                "item_id": [f"i{rng.integers(0, 40)}" for _ in range(50)],
                "annotator_id": [f"a{rng.integers(0, 6)}" for _ in range(50)],
                "label": rng.choice(LABELS, 50),
            }
        )
        df.loc[10 + k, "label"] = "spam"  # one unknown label per file
        df.to_parquet(src / f"part-{k}.parquet", index=False)
    raw.write_batch(tmp_path, [raw.BatchFile("annotations", src, ColumnMap())], {"annotations": 150})
    expected = raw.read_all(tmp_path)
    expected = validate(expected["annotations"], LABELS)
    spilled = spill(tmp_path, raw.list_batches(tmp_path), tmp_path / "spill", 40)
    done = validate_parts(
        spilled, LABELS, None, pd.Series(dtype=str), tmp_path / "a.parquet", tmp_path / "codes"
    )
    cols = ["source_file", "source_row", "reason", "record"]
    got = _sorted(pd.concat(done.quarantine)[cols], cols)
    assert got["source_row"].tolist() == [11, 62, 113]
    assert got.equals(_sorted(expected.quarantine[cols], cols))
    assert done.digest == table_digest(expected.annotations.drop(columns=[schema.RAW_BATCH]))


def _die(job: int) -> int:
    if job == 1:
        os._exit(9)  # as the kernel's out-of-memory killer would end it
    return job


def test_a_worker_that_dies_ends_the_ingest_with_an_error_naming_the_params_to_lower():
    with pytest.raises(StateError, match="ingest.workers or ingest.part_rows"):
        list(in_order(_die, [0, 1, 2, 3], workers=2))


def _reference_hash(text: str | None) -> int:
    """text_hash's definition, one string at a time."""
    mask, h, power = (1 << 64) - 1, 0, 1
    data = (text or "").encode()
    for byte in data:
        power = (power * 0x100000001B3) & mask
        h = (h + (byte + 1) * power) & mask
    h ^= len(data)
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & mask
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & mask
    return h ^ (h >> 31)


def test_text_hash_is_its_definition_on_every_kind_of_string_and_slice():
    values = ["a", "", None, "i123", "é漢字", "x" * 300, "i124"] * 50_000 + ["tail", ""]
    arr = pa.array(values, pa.large_string())
    want = np.array([_reference_hash(v) for v in values], dtype=np.uint64)
    assert np.array_equal(text_hash(arr), want)  # more rows than one chunk of the vectorised hash
    assert np.array_equal(text_hash(arr.slice(5, 1000)), want[5:1005])


def test_an_id_goes_to_the_same_part_however_it_is_stored_or_padded():
    as_objects = pd.Series(["i1", " i2 ", "i3", "ad-77"], dtype=object)
    as_text = pd.Series(["i1", "i2", "i3", "ad-77"], dtype=str)
    assert _part_of(as_objects, 7).tolist() == _part_of(as_text, 7).tolist()
