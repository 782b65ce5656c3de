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


def test_benjamini_hochberg_threshold_is_bonferroni_without_signal_and_adapts_with_it():
    from scipy import stats

    from labelcycle.annotators.groupstats import bh_threshold as _bh_z

    m = 1000
    noise = np.zeros(m)  # every p-value 0.5: nothing to reject
    assert _bh_z(noise, 0.05) == pytest.approx(stats.norm.isf(0.05 / m))
    strong = noise.copy()
    strong[:100] = 10.0  # 100 groups clearly above baseline: the threshold is the 100th BH step
    assert _bh_z(strong, 0.05) == pytest.approx(stats.norm.isf(0.05 * 100 / m))
    assert _bh_z(strong, 0.05) < _bh_z(noise, 0.05)


def test_sub_slices_of_a_bad_annotator_do_not_crowd_out_a_small_cohort():
    """One very bad annotator on every slice and a small three-annotator cohort on one slice.

    The bad annotator's sub-slices (annotator x category x batch) all pass the candidate filter but
    none is worse than the annotator alone; they are explained by that parent and the cohort is reported
    even with a candidate cap far below the number of sub-slices.
    """
    rng = np.random.default_rng(3)
    cats = [f"c{j}" for j in range(8)]
    items = pd.DataFrame({"item_id": [f"i{j}" for j in range(4000)], "category": np.repeat(cats, 500)})
    rows = []
    for who in [f"ok{j}" for j in range(10)] + ["bad"] + ["co1", "co2", "co3"]:
        for it, cat in zip(items["item_id"], items["category"], strict=True):
            if rng.random() > (0.5 if who == "bad" else 0.06):
                continue
            p_wrong = 0.7 if who == "bad" else 0.6 if (who.startswith("co") and cat == "c3") else 0.05
            label = "y" if rng.random() < p_wrong else "x"
            rows.append((it, who, label, f"week-{rng.integers(1, 9):02d}"))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label", "batch_id"])
    consensus = pd.Series("x", index=items["item_id"])
    rc = root_causes(ann, consensus, items=items, params=RootCauseParams(max_candidates=20))
    assert rc.iloc[0]["conditions"] == "annotator_id=bad"
    cohort = rc[rc["annotators"] == "co1, co2, co3"]
    assert len(cohort) == 1 and cohort.iloc[0]["conditions"].endswith("& category=c3")
    assert not rc["conditions"].str.contains("annotator_id=bad &").any()
