from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from annotators_crowd import BIASED, RELIABLE, SPAMMERS

from labelcycle.aggregation import MajorityVote
from labelcycle.annotators.profiles import (
    ProfileParams,
    annotator_confusions,
    annotator_drift,
    annotator_table,
    drift_slopes,
    rank_one_distance,
)
from labelcycle.errors import ConfigError, NotFittedError, SchemaError


def tiny() -> pd.DataFrame:
    """4 items x 3 annotators; z disagrees on items 3 and 4; durations in seconds; two batches."""
    rows = [
        ("1", "x", "a", 10.0, "b1"), ("1", "y", "a", 12.0, "b1"), ("1", "z", "a", 2.0, "b1"),
        ("2", "x", "b", 10.0, "b1"), ("2", "y", "b", 12.0, "b1"), ("2", "z", "b", 2.0, "b1"),
        ("3", "x", "a", 10.0, "b10"), ("3", "y", "a", 12.0, "b10"), ("3", "z", "b", 2.0, "b10"),
        ("4", "x", "b", 10.0, "b10"), ("4", "y", "b", 12.0, "b10"), ("4", "z", "a", 2.0, "b10"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label", "duration_s", "batch_id"])


def test_rank_one_distance_is_one_for_a_perfect_annotator_and_zero_for_a_spammer():
    perfect = np.eye(3)[None]
    spammer = np.tile([[0.2, 0.5, 0.3]], (3, 1))[None]
    assert rank_one_distance(np.concatenate([perfect, spammer])) == pytest.approx([1.0, 0.0])


def test_rank_one_distance_matches_the_hand_computed_value():
    # rows differ by 0.4 in both columns: (0.16 + 0.16) / (2 * 1)
    assert rank_one_distance(np.array([[[0.8, 0.2], [0.4, 0.6]]]))[0] == pytest.approx(0.16)


def test_rank_one_distance_uses_only_observed_rows_and_is_nan_with_fewer_than_two():
    conf = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]])
    assert rank_one_distance(conf, observed=np.array([[True, True, False]]))[0] == pytest.approx(1.0)
    assert np.isnan(rank_one_distance(conf, observed=np.array([[True, False, False]]))[0])


def test_annotator_table_has_exact_counts_agreement_gold_and_durations():
    ann = tiny()
    agg = MajorityVote().fit(ann)
    gold = pd.DataFrame({"item_id": ["3", "4"], "label": ["a", "a"]})
    t = annotator_table(ann, agg, gold=gold, params=ProfileParams(min_labels=1)).set_index("annotator_id")
    assert t["n_labels"].tolist() == [4, 4, 4]
    assert t.loc["z", "agreement_consensus"] == 0.5
    assert t.loc["z", "kappa_consensus"] == pytest.approx(0.0)  # 2x2 with po = pe = 0.5
    assert t.loc["x", "kappa_consensus"] == pytest.approx(1.0)
    assert t.loc["x", "accuracy_est"] == pytest.approx(1.0)  # MajorityVote skills
    assert t.loc["x", "n_gold"] == 2 and t.loc["x", "gold_accuracy"] == 0.5
    assert t.loc["z", "gold_accuracy"] == 0.5
    assert t.loc["z", "median_duration_s"] == 2.0
    assert t.loc["z", "duration_ratio"] == pytest.approx(2.0 / 10.0)  # population median is 10
    assert bool(t.loc["z", "is_fast_clicker"]) and not t.loc["x", "is_fast_clicker"]
    assert t.loc["z", "drift_slope"] == pytest.approx(-1.0)  # 1.0 in b1, 0.0 in b10
    assert t.loc["z", "spammer_score"] > t.loc["x", "spammer_score"]


def test_annotator_table_without_gold_or_durations_fills_nan_and_false():
    ann = tiny()[["item_id", "annotator_id", "label"]]
    t = annotator_table(ann, MajorityVote().fit(ann))
    assert t["gold_accuracy"].isna().all() and (t["n_gold"] == 0).all()
    assert t["median_duration_s"].isna().all() and not t["is_fast_clicker"].any()
    assert t["drift_slope"].isna().all() and (t["n_periods"] == 0).all()


def test_annotator_table_flags_exactly_the_spammers_on_generated_data(crowd):
    t = annotator_table(crowd.annotations, MajorityVote().fit(crowd.annotations), gold=crowd.gold)
    t = t.set_index("annotator_id")
    assert set(t.index[t["is_spammer"]]) == set(SPAMMERS)
    assert set(t.index[t["is_fast_clicker"]]) == set(SPAMMERS)
    assert (t.loc[list(SPAMMERS), "spammer_score"] > 0.9).all()
    assert (t.loc[list(RELIABLE + BIASED), "spammer_score"] < 0.5).all()
    assert t.loc[list(SPAMMERS), "accuracy_est"].max() < t.loc[list(RELIABLE), "accuracy_est"].min()


class ModelAggregator:
    """A fitted aggregator with confusion matrices (stands in for Dawid-Skene)."""

    def __init__(self, labels: pd.Series, confusions: np.ndarray, annotators: list[str]) -> None:
        self.classes_ = ("a", "b")
        self.labels_ = labels
        self.probas_ = pd.DataFrame(
            {"a": [0.75, 0.25], "b": [0.25, 0.75]}, index=labels.index
        )  # prior (0.5, 0.5)
        self.confusions_ = confusions
        self.skills_ = pd.Series([0.0] * len(annotators), index=pd.Index(annotators, name="annotator_id"))


def test_annotator_table_uses_model_confusions_for_accuracy_and_spam():
    ann = pd.DataFrame(
        {"item_id": ["1", "2", "1", "2"], "annotator_id": ["x", "x", "y", "y"], "label": ["a", "b", "a", "a"]}
    )
    conf = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.5, 0.5]]])
    agg = ModelAggregator(pd.Series(["a", "b"], index=["1", "2"]), conf, ["x", "y"])
    t = annotator_table(ann, agg).set_index("annotator_id")
    assert t.loc["x", "accuracy_est"] == pytest.approx(0.5 * 0.9 + 0.5 * 0.8)
    assert t.loc["y", "accuracy_est"] == pytest.approx(0.5)
    assert t.loc["x", "rank_one_distance"] == pytest.approx((0.7**2 * 2) / 2)
    assert t.loc["y", "rank_one_distance"] == pytest.approx(0.0)
    assert t.loc["y", "spammer_score"] == pytest.approx(1.0)


def test_annotator_table_refuses_an_unfitted_aggregator():
    with pytest.raises(NotFittedError, match="MajorityVote is not fitted"):
        annotator_table(tiny(), MajorityVote())


def test_annotator_table_rejects_gold_without_labels():
    ann = tiny()
    with pytest.raises(SchemaError, match=r"gold lacks the column\(s\) \['label'\]"):
        annotator_table(ann, MajorityVote().fit(ann), gold=pd.DataFrame({"item_id": ["1"]}))


def test_profile_params_reject_a_threshold_outside_zero_one():
    with pytest.raises(ConfigError, match="spammer_threshold must be in"):
        ProfileParams(spammer_threshold=1.5)


def test_annotator_drift_counts_agreement_per_batch_in_natural_order():
    ann = tiny()
    d = annotator_drift(ann, MajorityVote().fit(ann))
    z = d[d["annotator_id"] == "z"]
    assert z["period"].tolist() == ["b1", "b10"]
    assert z["period_index"].tolist() == [0, 1]
    assert z["n"].tolist() == [2, 2] and z["n_agree"].tolist() == [2, 0]
    assert z["agreement"].tolist() == [1.0, 0.0]
    assert d.loc[d["period"] == "b10", "period_agreement"].iloc[0] == pytest.approx(4 / 6)
    slopes = drift_slopes(d).set_index("annotator_id")
    assert slopes.loc["z", "drift_slope"] == pytest.approx(-1.0)
    assert slopes.loc["x", "drift_slope"] == pytest.approx(0.0)


def test_annotator_drift_falls_back_to_iso_weeks_of_created_at():
    ann = tiny().drop(columns="batch_id")
    ann["created_at"] = pd.to_datetime(["2024-01-02"] * 6 + ["2024-01-10"] * 6)
    d = annotator_drift(ann, MajorityVote().fit(ann))
    assert sorted(d["period"].unique()) == ["2024-W01", "2024-W02"]


def test_annotator_drift_is_empty_without_batches_or_timestamps():
    ann = tiny()[["item_id", "annotator_id", "label"]]
    d = annotator_drift(ann, MajorityVote().fit(ann))
    assert d.empty and "agreement" in d.columns


def test_annotator_confusions_give_full_square_matrices():
    ann = tiny()
    agg = MajorityVote().fit(ann)
    c = annotator_confusions(ann, agg.labels_)
    assert len(c) == 3 * 2 * 2
    z = c[c["annotator_id"] == "z"].pivot(index="true_label", columns="given_label", values="n")
    assert z.to_numpy().tolist() == [[1, 1], [1, 1]]
