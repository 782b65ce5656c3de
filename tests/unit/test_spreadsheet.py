from __future__ import annotations

import pandas as pd

from labelcycle.spreadsheet import escape_cell, escape_frame, unescape_frame


def test_escape_cell_prefixes_every_formula_trigger_with_an_apostrophe():
    for value in ('=HYPERLINK("http://x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert escape_cell(value) == "'" + value


def test_escape_cell_leaves_plain_text_and_numbers_alone():
    for value in ("ok", "item-1", "a=b", -3, 2.5, None):
        assert escape_cell(value) == value


def test_escape_then_unescape_round_trips_ids_labels_and_apostrophes_exactly():
    df = pd.DataFrame({"item_id": ["=cmd|' /C calc'!A0", "-i2", "'quoted", "plain"], "n": [1, -2, 3, 4]})
    escaped = escape_frame(df)
    assert escaped["item_id"].tolist() == ["'=cmd|' /C calc'!A0", "'-i2", "''quoted", "plain"]
    assert escaped["n"].tolist() == [1, -2, 3, 4]
    pd.testing.assert_frame_equal(unescape_frame(escaped), df)


def test_escape_frame_makes_column_names_formula_safe():
    assert list(escape_frame(pd.DataFrame({"=x": [1]})).columns) == ["'=x"]
