from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from annotators_crowd import BIASED, SPAMMERS

from labelcycle.aggregation import MajorityVote
from labelcycle.annotators._common import wilson
from labelcycle.annotators.rootcause import ROOT_CAUSE_COLUMNS, RootCauseParams, root_causes
from labelcycle.errors import ConfigError


def test_wilson_interval_matches_the_published_value():
    lo, hi = wilson(8, 10)
    assert float(lo) == pytest.approx(0.4902, abs=1e-4)
    assert float(hi) == pytest.approx(0.9433, abs=1e-4)


def one_bad_annotator() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """40 items (20 'news', 20 'sport'), 4 annotators who always agree except 'w' on every sport item."""
    rows = []
    for i in range(40):
        cat = "news" if i < 20 else "sport"
        for a in ("x", "y", "z", "w"):
            label = "bad" if (a == "w" and cat == "sport") else "ok"
            rows.append((f"i{i}", a, label))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    items = pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(40)], "category": ["news"] * 20 + ["sport"] * 20}
    )
    consensus = pd.Series("ok", index=[f"i{i}" for i in range(40)])
    return ann, items, consensus


def test_root_causes_report_exact_statistics_for_one_annotator_on_one_category():
    ann, items, consensus = one_bad_annotator()
    rc = root_causes(ann, consensus, items=items)
    assert list(rc.columns) == ROOT_CAUSE_COLUMNS
    assert len(rc) == 1
    top = rc.iloc[0]
    assert top["annotators"] == "w"
    assert top["conditions"] == "annotator_id=w & category=sport"
    assert (top["n"], top["n_disagree"]) == (20, 20)
    assert top["baseline"] == pytest.approx(20 / 160)
    assert top["rate"] == 1.0 and top["lift"] == pytest.approx(8.0)
    lo, hi = wilson(20, 20)
    assert top["rate_diff_lo"] == pytest.approx(float(lo) - 0.125)
    assert top["score"] == pytest.approx(float(lo) - 0.125)  # ranked by effect size, not excess count
    assert top["dominant_confusion"] == "ok -> bad" and top["dominant_share"] == 1.0
    assert top["finding"].startswith(
        "annotator w labels category=sport items as 'bad' where the consensus says 'ok'"
    )


def test_root_causes_are_empty_when_everyone_agrees():
    ann, _, consensus = one_bad_annotator()
    ann = ann[ann["annotator_id"] != "w"]
    rc = root_causes(ann, consensus)
    assert rc.empty and list(rc.columns) == ROOT_CAUSE_COLUMNS


def test_root_causes_respect_minimum_support():
    ann, items, consensus = one_bad_annotator()
    rc = root_causes(ann, consensus, items=items, params=RootCauseParams(min_support=21))
    assert rc["conditions"].tolist()[0] == "annotator_id=w"  # the 20-label sport group is too small
    assert (rc["n"] >= 21).all()


def test_root_causes_name_the_biased_group_first_on_generated_data(crowd):
    agg = MajorityVote().fit(crowd.annotations)
    params = RootCauseParams(exclude_annotators=SPAMMERS)
    rc = root_causes(crowd.annotations, agg, items=crowd.items, gold=crowd.gold, params=params)
    top = rc.iloc[0]
    assert top["annotators"] == ", ".join(BIASED)
    assert "category=crypto" in top["conditions"]
    assert top["since_period"] == "week-05"
    assert top["guideline_version"] == "v2"
    assert top["dominant_confusion"] == "misleading -> prohibited"
    assert top["rate_diff_lo"] > 0
    finding = top["finding"]
    assert finding.startswith("annotators bias1, bias2, bias3 label category=crypto items as 'prohibited'")
    assert "since batch week-05 (guideline v2)" in finding
    # the biased group explains the category, the annotators and the guideline version: nothing else is left
    assert len(rc) <= 2
    assert np.all(np.diff(rc["rank"]) == 1)


def test_root_cause_params_reject_order_four():
    with pytest.raises(ConfigError, match="max_order must be 1, 2 or 3"):
        RootCauseParams(max_order=4)
