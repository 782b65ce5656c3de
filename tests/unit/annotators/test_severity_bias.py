"""On an ordinal scale the annotator report says who over-flags and who under-flags."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from labelcycle.aggregation import make_aggregator
from labelcycle.annotators import analyse_annotators, render_report
from labelcycle.annotators.profiles import severity_bias

SCALE = ("none", "mild", "severe")


def _crowd(n_items: int = 60, seed: int = 0) -> pd.DataFrame:
    """Five faithful annotators, one who labels a step more severe, one a step milder."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, n_items)
    rows = []
    for i, t in enumerate(truth):
        for a in ("f1", "f2", "f3", "f4", "f5"):
            rows.append((f"i{i}", a, SCALE[t]))
        rows.append((f"i{i}", "harsh", SCALE[min(t + 1, 2)]))
        rows.append((f"i{i}", "soft", SCALE[max(t - 1, 0)]))
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


def test_severity_bias_flags_the_harsh_annotator_over_and_the_soft_one_under_and_no_faithful_one():
    ann = _crowd()
    consensus = make_aggregator("majority_vote", classes=SCALE).fit(ann).labels_
    bias = severity_bias(ann, consensus, SCALE).set_index("annotator_id")
    assert bias.loc["harsh", "flags"] == "over" and bias.loc["harsh", "severity_bias_lo"] > 0
    assert bias.loc["soft", "flags"] == "under" and bias.loc["soft", "severity_bias_hi"] < 0
    assert set(bias.loc[["f1", "f2", "f3", "f4", "f5"], "flags"]) == {""}
    assert bias.loc["f1", "severity_bias"] == 0.0 and bias.loc["harsh", "severity_n"] == 60


def test_the_report_lists_over_and_under_flaggers_when_the_table_has_severity_bias():
    ann = _crowd()
    agg = make_aggregator("majority_vote", classes=SCALE).fit(ann)
    analysis = analyse_annotators(ann, agg)
    bias = severity_bias(ann, agg.labels_, SCALE)
    with_bias = dataclasses.replace(analysis, table=analysis.table.merge(bias, on="annotator_id"))
    page = render_report(with_bias)
    section = page.split("<h2>Over- and under-flagging</h2>")[1].split("<h2>")[0]
    assert "none &lt; mild &lt; severe" in section
    assert "harsh" in section and "soft" in section and "f1" not in section
    assert "Over- and under-flagging" not in render_report(analysis)
