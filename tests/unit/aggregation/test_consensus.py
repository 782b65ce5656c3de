"""The consensus table summarised from its file: each figure equals the one taken on the whole frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labelcycle.aggregation import consensus
from labelcycle.curation import agreement_summary
from labelcycle.versioning.digest import digest_of_hashes, row_hashes, table_digest


def _labels(n: int, seed: int = 0, prefix: str = "i") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), n)
    n_ann = rng.integers(1, 6, n)
    return pd.DataFrame(
        {
            "item_id": [f"{prefix}{k}" for k in range(n)],
            "label": np.array(["ok", "misleading", "prohibited"])[p.argmax(axis=1)],
            "confidence": p.max(axis=1),
            "proba_ok": p[:, 0],
            "n_annotations": n_ann,
            "vote_share": np.where(n_ann > 1, rng.integers(1, 4, n) / 3, 1.0),
        }
    )


def _file(tmp_path, frame: pd.DataFrame, row_group_size: int = 700) -> str:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


def test_head_rows_from_and_summary_equal_those_of_the_whole_frame_read_back(tmp_path):
    path = _file(tmp_path, _labels(5000))
    whole = pd.read_parquet(path)
    pd.testing.assert_frame_equal(consensus.head(path), whole.head(1000), check_exact=True)
    pd.testing.assert_frame_equal(consensus.head(path, 0), whole.head(0), check_exact=True)
    for start in (0, 1, 699, 700, 3333, 4999, 5000, 6000):
        pd.testing.assert_frame_equal(
            consensus.rows_from(path, start), whole.iloc[start:].reset_index(drop=True), check_exact=True
        )
    assert consensus.summary(path) == agreement_summary(whole)  # the same floats, not close ones
    assert consensus.num_rows(path) == 5000


def test_rows_from_a_negative_row_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not negative"):
        consensus.rows_from(_file(tmp_path, _labels(10)), -1)


def test_stored_sorted_hashes_merged_with_the_new_rows_give_table_digest_of_the_whole_table(tmp_path):
    old, new = _labels(4000, seed=1), _labels(900, seed=2, prefix="w")
    new.loc[:10] = old.loc[:10].to_numpy()  # repeated rows: the digest is of a multiset
    consensus.save_hashes(tmp_path / "h.npy", consensus.sorted_row_hashes(old))
    stored = consensus.load_hashes(tmp_path / "h.npy")
    merged = consensus.merge_sorted(stored, row_hashes(new))
    whole = pd.concat([old, new], ignore_index=True)
    assert (np.diff(merged.astype(np.float64)) >= 0).all()
    np.testing.assert_array_equal(merged, consensus.sorted_row_hashes(whole))
    assert digest_of_hashes(list(whole.columns), merged) == table_digest(whole)


def test_merge_sorted_of_empty_arrays_is_the_other_array():
    a = np.array([1, 5, 9], dtype=np.uint64)
    empty = np.array([], dtype=np.uint64)
    np.testing.assert_array_equal(consensus.merge_sorted(a, empty), a)
    np.testing.assert_array_equal(consensus.merge_sorted(empty, a[::-1].copy()), a)


def test_a_timestamp_column_is_not_hashable_by_row():
    plain = pa.Schema.from_pandas(_labels(3), preserve_index=False)
    stamped = pa.Schema.from_pandas(_labels(3).assign(at=pd.Timestamp("2026-01-01")), preserve_index=False)
    assert consensus.hashable_by_row(plain) and not consensus.hashable_by_row(stamped)
