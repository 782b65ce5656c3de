"""On the realistic demo data the analysis finds the spammers and names the category-biased group."""

from __future__ import annotations

import pytest

from labelcycle.aggregation import MajorityVote
from labelcycle.annotators import analyse_annotators
from labelcycle.demo import BIASED_CATEGORY, generate


@pytest.fixture(scope="module")
def demo_analysis():
    data = generate(n_items=4000, n_annotators=40, seed=0)
    agg = MajorityVote().fit(data.annotations)
    return data, analyse_annotators(data.annotations, agg, items=data.items, gold=data.gold)


def test_demo_spammers_are_flagged(demo_analysis):
    data, analysis = demo_analysis
    truth = data.truth_annotators
    assert sorted(analysis.spammers) == sorted(truth.loc[truth["kind"] == "spammer", "annotator_id"])


def test_demo_biased_group_is_among_the_top_three_root_causes(demo_analysis):
    data, analysis = demo_analysis
    truth = data.truth_annotators
    biased = sorted(truth.loc[truth["kind"] == "biased", "annotator_id"])
    top = analysis.root_causes.head(3)
    hits = top[top["annotators"] == ", ".join(biased)]
    assert len(hits) == 1, top["finding"].tolist()
    hit = hits.iloc[0]
    assert f"category={BIASED_CATEGORY}" in hit["conditions"]
    assert hit["since_period"] == "week-05"
    assert hit["finding"].startswith(
        f"annotators {', '.join(biased)} label category={BIASED_CATEGORY} items as 'prohibited'"
    )
    assert "since batch week-05" in hit["finding"]
