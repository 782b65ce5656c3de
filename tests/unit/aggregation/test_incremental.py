"""Incremental aggregation: a new raw batch of new items re-fitted alone, and every case that falls back."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from labelcycle import schema
from labelcycle.aggregation import consensus, incremental, make_aggregator, streaming
from labelcycle.aggregation.base import encode
from labelcycle.aggregation.dawid_skene import DawidSkene
from labelcycle.aggregation.encode_parts import encode_dataset
from labelcycle.versioning.digest import digest_of_hashes, row_hashes, table_digest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from synthetic import generate  # noqa: E402

CLASSES = ("c0", "c1", "c2")


def _batches() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two raw batches of benchmarks/synthetic.py's crowd (same annotators): 20,000 items, then 1,000 new.

    5 labels per item, ~1,750 per annotator. Where items have fewer labels, or the crowd drifts between
    batches, more old items sit near a decision boundary that the new batch moves, and the frozen old
    posteriors agree less with a cold fit's (0.3-0.4% of items on tests.conftest.crowd_table's).
    """
    ann, _ = generate(n_items=21000, labels_per_item=5, n_annotators=60, n_classes=3, seed=0)
    ann[schema.LABEL] = ann[schema.LABEL].astype(str)
    new = ann[schema.ITEM_ID].isin(sorted(ann[schema.ITEM_ID].unique())[20000:])
    week1 = ann[~new].assign(raw_batch="b1").reset_index(drop=True)
    return week1, ann[new].assign(raw_batch="b2").reset_index(drop=True)


def _codes(tmp_path, name: str, annotations: pd.DataFrame, layout: str):
    """Coded parts of ``annotations`` by the ingest's writer (global items) or encode_dataset (per part)."""
    out = tmp_path / name
    if layout == "ingest":
        streaming.write_codes(annotations, CLASSES, out, digest="d")
    else:
        files = []
        for batch, rows in annotations.groupby(schema.RAW_BATCH, sort=True):
            files.append(tmp_path / f"{name}-{batch}.parquet")
            rows.drop(columns=schema.RAW_BATCH).to_parquet(files[-1], index=False)
        encode_dataset(files, out, CLASSES, rows_per_part=15000, batches=[f.stem[-2:] for f in files])
    return streaming.ParquetParts(out)


def _stored(tmp_path, source, model, name="state") -> incremental.State:
    """Cold fit over ``source``; its state saved and loaded back."""
    fit = streaming.fit(source, model)
    incremental.save_state(
        tmp_path / name, fit, model, source, incremental.scan(source), streaming.result(source, fit)
    )
    state = incremental.load_state(tmp_path / name)
    assert state is not None
    return state


def _second_week(tmp_path, layout: str):
    """A stored state of week 1 (hierarchical Dawid-Skene), both weeks coded, the incremental choice and fit."""
    week1, week2 = _batches()
    model = make_aggregator("hierarchical_dawid_skene", classes=CLASSES)
    state = _stored(tmp_path, _codes(tmp_path, "base", week1, layout), model)
    source = _codes(tmp_path, "all", pd.concat([week1, week2], ignore_index=True), layout)
    choice = incremental.choose(source, model, state, state.fit, enabled=True)
    fit = incremental.fit(model, state, choice.found.new)
    return week1, week2, model, state, source, choice, fit


@pytest.mark.parametrize("layout", ["ingest", "encode_dataset"])
def test_new_batch_of_new_items_is_fitted_alone_in_few_steps_and_matches_a_cold_fit_on_999_per_mille(
    tmp_path, layout
):
    week1, week2 = _batches()
    model = make_aggregator("hierarchical_dawid_skene", classes=CLASSES)
    state = _stored(tmp_path, _codes(tmp_path, "base", week1, layout), model)
    source = _codes(tmp_path, "all", pd.concat([week1, week2], ignore_index=True), layout)

    choice = incremental.choose(source, model, state, state.fit, enabled=True)
    assert choice.path == "incremental", choice.reason
    assert choice.found.new.layout.n_rows == len(week2)
    fit = incremental.fit(model, state, choice.found.new)
    got = incremental.labels(state, choice.found.new, fit)
    cold_fit = streaming.fit(source, model)
    cold = streaming.result(source, cold_fit)

    assert fit.warm_started and fit.n_iter <= 3 < cold_fit.n_iter
    assert sorted(got[schema.ITEM_ID]) == sorted(cold[schema.ITEM_ID])
    before = pd.read_parquet(state.labels)
    assert got.iloc[: len(before)].equals(before)  # the old items keep their stored rows
    same = got.set_index(schema.ITEM_ID)[schema.LABEL].reindex(cold[schema.ITEM_ID]).to_numpy()
    assert (same == cold[schema.LABEL].to_numpy()).mean() >= 0.999


def test_the_next_state_covers_both_batches_and_writes_the_same_labels_to_a_file(tmp_path):
    week1, week2, model, state, source, choice, fit = _second_week(tmp_path, "ingest")
    n = incremental.write_labels(state, choice.found.new, fit, tmp_path / "labels.parquet")
    frame = incremental.labels(state, choice.found.new, fit)
    assert n == len(frame) and pd.read_parquet(tmp_path / "labels.parquet").equals(frame)

    incremental.save_state(tmp_path / "next", fit, model, source, choice.found, tmp_path / "labels.parquet")
    after = incremental.load_state(tmp_path / "next")
    assert after.batches == ["b1", "b2"] and after.n_rows == len(week1) + len(week2)
    assert after.n_items == len(frame) and sum(after.batch_rows) == after.n_rows
    np.testing.assert_allclose(after.fit.stats.counts.sum(), len(week1) + len(week2))
    np.testing.assert_allclose(after.fit.stats.given.sum(), len(week1) + len(week2))


def _changed_old_row(week1, week2):
    changed = week1.copy()
    changed.loc[0, schema.LABEL] = "c1" if changed.loc[0, schema.LABEL] != "c1" else "c0"
    return pd.concat([changed, week2], ignore_index=True)


def _old_item_in_new_batch(week1, week2):
    week2 = week2.copy()
    week2.loc[0, schema.ITEM_ID] = week1.loc[0, schema.ITEM_ID]
    return pd.concat([week1, week2], ignore_index=True)


@pytest.mark.parametrize(
    ("case", "make", "reason"),
    [
        ("an old row changed", _changed_old_row, "annotations of the stored raw batches changed"),
        ("an old item in the new batch", _old_item_in_new_batch, "annotate 1 items already aggregated"),
        ("no new batch", lambda w1, w2: w1, "no new raw batch"),
        ("old batch dropped", lambda w1, w2: w2, "not all kept"),
    ],
)
def test_changed_old_rows_or_items_fall_back_to_the_warm_full_fit(tmp_path, case, make, reason):
    week1, week2 = _batches()
    model = make_aggregator("hierarchical_dawid_skene", classes=CLASSES)
    state = _stored(tmp_path, _codes(tmp_path, "base", week1, "ingest"), model)
    source = _codes(tmp_path, "all", make(week1, week2), "ingest")
    choice = incremental.choose(source, model, state, state.fit, enabled=True)
    assert (choice.path, reason in choice.reason) == ("warm", True), (case, choice.reason)


def test_another_method_hyperparameter_or_label_set_falls_back_to_a_full_fit(tmp_path):
    week1, week2 = _batches()
    state = _stored(tmp_path, _codes(tmp_path, "base", week1, "ingest"), DawidSkene(classes=CLASSES))
    source = _codes(tmp_path, "all", pd.concat([week1, week2], ignore_index=True), "ingest")
    for model in (
        make_aggregator("hierarchical_dawid_skene", classes=CLASSES),
        DawidSkene(classes=CLASSES, tol=1e-3),
    ):
        choice = incremental.choose(source, model, state, None, enabled=True)
        assert choice.path == "cold" and "changed" in choice.reason
    state.fit.classes = ("a", "b", "c")
    choice = incremental.choose(source, make_aggregator("dawid_skene"), state, None, enabled=True)
    assert choice.path == "cold" and "label set changed" in choice.reason


def test_no_state_or_no_batch_column_falls_back_and_warm_start_false_forces_cold(tmp_path):
    week1, week2 = _batches()
    both = pd.concat([week1, week2], ignore_index=True)
    model = make_aggregator("hierarchical_dawid_skene", classes=CLASSES)
    state = _stored(tmp_path, _codes(tmp_path, "base", week1, "ingest"), model)
    source = _codes(tmp_path, "all", both, "ingest")

    assert incremental.choose(source, model, state, state.fit, enabled=False).path == "cold"
    assert (
        incremental.choose(source, model, None, state.fit, enabled=True).reason
        == "no stored aggregation state"
    )
    streaming.write_parts(encode(both, CLASSES), tmp_path / "plain")  # no raw batch per row
    plain = incremental.choose(streaming.ParquetParts(tmp_path / "plain"), model, state, state.fit, True)
    assert (plain.path, plain.reason) == ("warm", "the coded annotations carry no raw batch column")
    assert incremental.load_state(tmp_path / "missing") is None
    incremental.clear_state(tmp_path / "state", "why")
    assert incremental.load_state(tmp_path / "state") is None


def test_write_codes_keeps_each_rows_raw_batch_in_ingest_order(tmp_path):
    week1, week2 = _batches()
    both = pd.concat([week2, week1], ignore_index=True)  # b2 arrived first here
    source = _codes(tmp_path, "codes", both, "ingest")
    assert source.batches == ["b2", "b1"]
    meta = json.loads((tmp_path / "codes" / "meta.json").read_text())
    batch = np.concatenate(
        [pq.read_table(tmp_path / "codes" / p["file"]).column("batch").to_numpy() for p in meta["parts"]]
    )
    assert batch.dtype == np.int16 and np.bincount(batch).tolist() == [len(week2), len(week1)]


def test_encode_dataset_names_each_file_as_a_raw_batch(tmp_path):
    week1, week2 = _batches()
    source = _codes(tmp_path, "codes", pd.concat([week1, week2], ignore_index=True), "encode_dataset")
    assert source.batches == ["b1", "b2"]
    assert incremental.scan(source).batch_rows == [len(week1), len(week2)]


def test_batch_fingerprints_name_rows_by_ids_not_by_codes_so_both_layouts_agree(tmp_path):
    week1, week2 = _batches()
    both = pd.concat([week1, week2], ignore_index=True)
    ingest = incremental.scan(_codes(tmp_path, "a", both, "ingest"))
    per_part = incremental.scan(_codes(tmp_path, "b", both, "encode_dataset"))
    assert ingest.batch_rows == per_part.batch_rows and ingest.batch_votes == per_part.batch_votes
    changed = incremental.scan(_codes(tmp_path, "c", _changed_old_row(week1, week2), "ingest"))
    assert changed.batch_votes[0] != ingest.batch_votes[0] and changed.batch_votes[1] == ingest.batch_votes[1]


def test_labels_appended_to_the_stored_file_equal_the_whole_write_of_an_older_lz4_state(tmp_path):
    """The appended file holds the same rows, columns, values and schema as the stored rows + new rows
    written whole (what an older, lz4-encoded state still gets), and the next state copies its bytes."""
    import pyarrow as pa

    week1, week2, model, state, source, choice, fit = _second_week(tmp_path, "encode_dataset")
    stored_groups = pq.ParquetFile(state.labels).metadata.num_row_groups

    n = incremental.write_labels(state, choice.found.new, fit, tmp_path / "appended.parquet")
    older = tmp_path / "older.parquet"
    pq.write_table(pq.read_table(state.labels), older, compression="lz4")
    n_whole = incremental.write_labels(
        dataclasses.replace(state, labels=older), choice.found.new, fit, tmp_path / "whole.parquet"
    )

    appended, whole = pq.read_table(tmp_path / "appended.parquet"), pq.read_table(tmp_path / "whole.parquet")
    assert n == n_whole == appended.num_rows == state.n_items + choice.found.new.layout.items.size
    assert appended.equals(whole) and appended.schema.equals(whole.schema, check_metadata=True)
    assert pq.ParquetFile(tmp_path / "appended.parquet").metadata.num_row_groups == stored_groups + 1
    assert pq.ParquetFile(tmp_path / "whole.parquet").metadata.num_row_groups == 1
    assert appended.equals(
        pa.Table.from_pandas(incremental.labels(state, choice.found.new, fit), whole.schema)
    )
    incremental.save_state(tmp_path / "next", fit, model, source, choice.found, tmp_path / "appended.parquet")
    assert (tmp_path / "next" / "labels.parquet").read_bytes() == (tmp_path / "appended.parquet").read_bytes()
    assert incremental.load_state(tmp_path / "next").n_items == n


def test_batch_fingerprints_by_count_table_equal_those_added_row_by_row(tmp_path, monkeypatch):
    week1, week2 = _batches()
    source = _codes(tmp_path, "all", pd.concat([week1, week2], ignore_index=True), "encode_dataset")
    by_table = incremental.scan(source, 1)
    monkeypatch.setattr(incremental, "_batch_pair_counts", lambda *args: None)
    by_row = incremental.scan(source, 1)
    assert by_table.batch_votes == by_row.batch_votes and by_table.batch_rows == by_row.batch_rows
    assert (by_table.old_items, by_table.mixed_items) == (by_row.old_items, by_row.mixed_items) == (20000, 0)
    assert by_table.new.layout.n_rows == len(week2)


def test_a_stored_file_that_cannot_be_appended_to_is_written_whole_and_no_temporary_file_is_left(
    tmp_path, monkeypatch
):
    from labelcycle.aggregation import parquet_append

    week1, week2, model, state, source, choice, fit = _second_week(tmp_path, "ingest")
    out = tmp_path / "out" / "labels.parquet"
    out.parent.mkdir()

    def refuse(*args):
        raise parquet_append.CannotAppend("refused for the test")

    monkeypatch.setattr(parquet_append, "append", refuse)
    n = incremental.write_labels(state, choice.found.new, fit, out)

    assert [p.name for p in out.parent.iterdir()] == ["labels.parquet"]
    assert pq.ParquetFile(out).metadata.num_row_groups == 1  # written whole
    assert n == len(pd.read_parquet(out)) and pd.read_parquet(out).equals(
        incremental.labels(state, choice.found.new, fit)
    )


def test_the_states_sorted_row_hashes_merged_with_the_new_rows_digest_the_appended_labels_as_table_digest(
    tmp_path,
):
    week1, week2 = _batches()
    model = make_aggregator("hierarchical_dawid_skene", classes=CLASSES)
    base = _codes(tmp_path, "base", week1, "ingest")
    fit = streaming.fit(base, model)
    frame = streaming.result(base, fit)
    hashes = consensus.sorted_row_hashes(frame)
    incremental.save_state(tmp_path / "state", fit, model, base, incremental.scan(base), frame, hashes.copy())
    state = incremental.load_state(tmp_path / "state")
    # the hashes kept from the in-memory frame are those of the stored file read back
    np.testing.assert_array_equal(
        consensus.load_hashes(state.hashes), consensus.sorted_row_hashes(pd.read_parquet(state.labels))
    )

    source = _codes(tmp_path, "all", pd.concat([week1, week2], ignore_index=True), "ingest")
    choice = incremental.choose(source, model, state, state.fit, enabled=True)
    assert choice.path == "incremental", choice.reason
    new_fit = incremental.fit(model, state, choice.found.new)
    out = tmp_path / "labels.parquet"
    incremental.write_labels(state, choice.found.new, new_fit, out)
    new_rows = consensus.rows_from(out, state.n_items)
    merged = consensus.merge_sorted(consensus.load_hashes(state.hashes), row_hashes(new_rows))
    whole = pd.read_parquet(out)
    assert digest_of_hashes(consensus.head(out, 0).columns, merged) == table_digest(whole)
    assert table_digest(whole) == table_digest(incremental.labels(state, choice.found.new, new_fit))


def test_a_state_saved_without_row_hashes_loads_with_none_and_wrong_length_hashes_are_refused(tmp_path):
    week1, _ = _batches()
    model = make_aggregator("hierarchical_dawid_skene", classes=CLASSES)
    state = _stored(tmp_path, _codes(tmp_path, "base", week1, "ingest"), model)
    assert state.hashes is None and not (tmp_path / "state" / incremental.HASHES).exists()

    source = _codes(tmp_path, "again", week1, "ingest")
    with pytest.raises(ValueError, match="row hashes for a result table"):
        incremental.save_state(
            tmp_path / "bad",
            state.fit,
            model,
            source,
            incremental.scan(source),
            state.labels,
            np.zeros(3, np.uint64),
        )
    assert not list(tmp_path.glob("bad*"))  # nothing written
