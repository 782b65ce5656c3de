"""``curate.exclude_annotators`` and ``curate.annotator_weights``: the annotator actions of curation."""

from __future__ import annotations

import pandas as pd
import pytest

from labelcycle.aggregation import make_aggregator
from labelcycle.curation import curated_labels
from labelcycle.detection.curate import curate_labels, without_annotators
from labelcycle.errors import ConfigError
from labelcycle.params import CurateParams

CLASSES = ("ok", "bad")
#: i1 is decided by z (2 bad vs 1 ok with z; ok without z ... a tie broken to ok); i2 is unanimous
ANN = pd.DataFrame(
    {
        "item_id": ["i1", "i1", "i1", "i2", "i2", "i2"],
        "annotator_id": ["x", "y", "z", "x", "y", "z"],
        "label": ["ok", "bad", "bad", "ok", "ok", "ok"],
    }
)
SCORES = ANN[["item_id", "annotator_id"]].assign(label_error_score=0.0)


def _labels(ann: pd.DataFrame) -> pd.DataFrame:
    return curated_labels(ann, make_aggregator("majority_vote", classes=CLASSES).fit(ann))


def test_without_annotators_drops_exactly_their_annotations_and_scores():
    ann, scores = without_annotators(ANN, SCORES, ["z"])
    assert set(ann["annotator_id"]) == set(scores["annotator_id"]) == {"x", "y"}
    assert len(ann) == len(scores) == 4


def test_an_unknown_annotator_in_curate_params_is_refused_with_the_key_to_fix():
    with pytest.raises(ConfigError, match=r"curate.exclude_annotators names annotator\(s\) \['zz'\]"):
        without_annotators(ANN, SCORES, ["zz"])
    with pytest.raises(ConfigError, match="curate.annotator_weights"):
        without_annotators(ANN, SCORES, [], ["ww"])


def test_weight_zero_removes_an_annotator_from_the_relabel_consensus():
    labels = _labels(ANN)
    plain = curate_labels(ANN, labels, SCORES, CLASSES, "relabel", 0.5, "majority_vote")
    weighted = curate_labels(
        ANN, labels, SCORES, CLASSES, "relabel", 0.5, "majority_vote", annotator_weights={"z": 0.0}
    )
    assert plain.labels.set_index("item_id").loc["i1", "label"] == "bad"
    assert weighted.labels.set_index("item_id").loc["i1", "label"] == "ok"  # x vs y: tie, first listed
    assert weighted.summary["annotations_removed"] == 2.0


def test_weights_scale_the_votes_of_downweight():
    labels = _labels(ANN)
    out = curate_labels(
        ANN, labels, SCORES, CLASSES, "downweight", 0.5, annotator_weights={"y": 0.5, "z": 0.5}
    )
    row = out.labels.set_index("item_id").loc["i1"]
    assert row["label"] == "ok" and row["proba_ok"] == pytest.approx(0.5)  # 1 vs 0.5 + 0.5: a tie


def test_curate_params_check_the_annotator_actions():
    assert CurateParams(exclude_annotators=[5]).exclude_annotators == ["5"]
    with pytest.raises(ConfigError, match=r"weights in \[0, 1\]"):
        CurateParams(annotator_weights={"a": 2})
    with pytest.raises(ConfigError, match="set it to relabel, drop or downweight"):
        CurateParams(action="none", annotator_weights={"a": 0.5})
