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


@pytest.fixture(scope="module")
def full_demo_analysis():
    """The embedded default demo (what `make run` ingests) analysed with the default aggregator."""
    from labelcycle.aggregation import DEFAULT_METHOD, make_aggregator

    data = generate(seed=0)
    agg = make_aggregator(DEFAULT_METHOD).fit(data.annotations)
    return data, analyse_annotators(data.annotations, agg, items=data.items, gold=data.gold)


def test_full_demo_with_the_default_consensus_finds_spammers_fast_clickers_and_the_biased_group(
    full_demo_analysis,
):
    data, analysis = full_demo_analysis
    truth = data.truth_annotators
    table = analysis.table.set_index("annotator_id")
    assert sorted(analysis.spammers) == sorted(truth.loc[truth["kind"] == "spammer", "annotator_id"])
    fast = set(table.index[table["is_fast_clicker"]])  # spammers click fast too
    assert fast == set(truth.loc[truth["kind"].isin(["fast_clicker", "spammer"]), "annotator_id"])
    biased = ", ".join(sorted(truth.loc[truth["kind"] == "biased", "annotator_id"]))
    hits = analysis.root_causes[analysis.root_causes["annotators"] == biased]
    assert len(hits) == 1, analysis.root_causes["finding"].tolist()
    hit = hits.iloc[0]
    assert f"category={BIASED_CATEGORY}" in hit["conditions"] and hit["since_period"] == "week-05"
    assert hit["finding"].startswith(
        f"annotators {biased} label category={BIASED_CATEGORY} items as 'prohibited'"
    )
    assert hit["rate_diff_lo"] > 0
