from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle.versioning.digest import table_digest


def test_digest_changes_when_one_label_changes_after_row_10000():
    df = pd.DataFrame({"item_id": [f"i{i}" for i in range(12_000)], "label": ["ok"] * 12_000})
    changed = df.copy()
    changed.loc[11_500, "label"] = "prohibited"
    assert table_digest(df) != table_digest(changed)


def test_digest_ignores_row_and_column_order_but_not_names():
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert table_digest(df) == table_digest(df.iloc[::-1]) == table_digest(df[["b", "a"]])
    assert table_digest(df) != table_digest(df.rename(columns={"b": "c"}))


def test_digest_counts_duplicate_rows():
    df = pd.DataFrame({"a": [1, 1]})
    assert table_digest(df) != table_digest(df.head(1))


def test_timestamp_columns_are_canonicalised_exactly_like_astype_str():
    import numpy as np
    import pandas as pd

    from labelcycle.versioning.digest import _canonical_column

    rng = np.random.default_rng(0)
    base = pd.Timestamp("2026-09-07").value + rng.integers(0, 10**15, 500)
    for step in (10**9, 10**6, 10**3, 1):
        for tz in (None, "UTC", "Europe/Berlin"):
            v = pd.Series(pd.to_datetime(base // step * step, unit="ns"))
            v.iloc[[3, 7]] = pd.NaT
            if tz:
                v = v.dt.tz_localize(tz)
            fast, slow = _canonical_column(v), v.astype(str)
            assert fast.dtype == slow.dtype
            assert fast.isna().tolist() == slow.isna().tolist()
            assert fast.dropna().tolist() == slow.dropna().tolist(), (step, tz)
    midnight = pd.Series(pd.to_datetime(["2026-09-07", "2026-09-08"]))
    assert _canonical_column(midnight).tolist() == midnight.astype(str).tolist()


def test_row_hashes_by_slice_equal_pandas_hashes_of_the_whole_canonical_frame(monkeypatch):
    from labelcycle.versioning import digest

    stamps = pd.to_datetime(
        ["2026-01-01", "2026-01-02", None, "2026-01-04 10:00:01.5", "2026-01-05"], utc=True, format="ISO8601"
    )  # the first slice alone would print dates only; the column prints milliseconds
    df = pd.DataFrame(
        {
            "item_id": pd.Series(["i1", "i2", None, "i1", "i3"], dtype=str),
            "created_at": stamps,
            "label": pd.Categorical(["ok", "bad", "ok", "ok", "bad"]),
            "duration_s": [1.5, None, 2.0, 3.0, 0.0],
        }
    )
    canonical = pd.DataFrame({c: digest._canonical_column(df[c]) for c in sorted(df.columns)})
    want = pd.util.hash_pandas_object(canonical, index=False, categorize=True).to_numpy()
    monkeypatch.setattr(digest, "_HASH_ROWS", 2)
    assert np.array_equal(digest.row_hashes(df), want)
