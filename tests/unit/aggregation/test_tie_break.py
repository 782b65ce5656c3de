"""Consensus ties: towards the first listed label by default, the more severe (last listed) one on an
ordinal scale, or as ``ingest.tie_break`` says."""

from __future__ import annotations

import pandas as pd
import pytest

from labelcycle.aggregation import make_aggregator
from labelcycle.aggregation.base import ties_to_last
from labelcycle.detection.curate import curate_labels
from labelcycle.errors import ConfigError
from labelcycle.params import IngestParams

SCALE = ("none", "mild", "severe")
#: i1: one vote each for mild and severe (a tie); i2: a clear majority for none
VOTES = pd.DataFrame(
    {
        "item_id": ["i1", "i1", "i2", "i2", "i2"],
        "annotator_id": ["a", "b", "a", "b", "c"],
        "label": ["severe", "mild", "none", "none", "mild"],
    }
)


@pytest.mark.parametrize("method", ["majority_vote", "weighted_majority_vote"])
def test_a_tie_goes_to_the_first_listed_label_by_default_and_to_the_last_with_ties_to_last(method):
    first = make_aggregator(method, classes=SCALE).fit(VOTES).labels_
    last = make_aggregator(method, classes=SCALE, ties_to_last=True).fit(VOTES).labels_
    assert (first["i1"], last["i1"]) == ("mild", "severe")
    assert first["i2"] == last["i2"] == "none"  # no tie: the majority whatever the rule


def test_ordinal_labels_break_ties_towards_the_more_severe_label_unless_tie_break_says_otherwise():
    assert ties_to_last(IngestParams(list(SCALE), ordinal=True).tie_break, True) is True
    assert ties_to_last("lenient", True) is False
    assert ties_to_last("severe", True) is True
    assert ties_to_last(None, False) is False
    assert ties_to_last("last", False) is True


def test_lenient_or_severe_without_an_ordinal_scale_is_refused_naming_ingest_ordinal():
    with pytest.raises(ConfigError, match="ingest.ordinal: true"):
        IngestParams(list(SCALE), tie_break="severe")
    with pytest.raises(ConfigError, match="ingest.tie_break must be one of"):
        IngestParams(list(SCALE), ordinal=True, tie_break="harsh")


def test_downweight_curation_breaks_ties_by_the_same_rule():
    scores = VOTES[["item_id", "annotator_id"]].assign(label_error_score=0.0)
    raw = make_aggregator("majority_vote", classes=SCALE).fit(VOTES)
    from labelcycle.curation import curated_labels

    labels = curated_labels(VOTES, raw)
    first = curate_labels(VOTES, labels, scores, SCALE, "downweight", 0.5)
    last = curate_labels(VOTES, labels, scores, SCALE, "downweight", 0.5, ties_to_last=True)
    assert first.labels.set_index("item_id").loc["i1", "label"] == "mild"
    assert last.labels.set_index("item_id").loc["i1", "label"] == "severe"
