from __future__ import annotations

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
