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
