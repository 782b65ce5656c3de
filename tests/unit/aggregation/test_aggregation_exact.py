"""Exact answers on tiny hand-made tables, for every aggregator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.aggregation import (
    DEFAULT_METHOD,
    METHODS,
    DawidSkene,
    HierarchicalDawidSkene,
    MajorityVote,
    OneCoinDawidSkene,
    StructuredDawidSkene,
    WeightedMajorityVote,
    make_aggregator,
)
from labelcycle.errors import ConfigError, NotFittedError, SchemaError, ValidationError

ALL = sorted(METHODS)
EM = [DawidSkene, OneCoinDawidSkene, HierarchicalDawidSkene, StructuredDawidSkene]


def table(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])


def reliable_vs_constant() -> pd.DataFrame:
    """a and b always right; c always says x; on i13 only a (y) and c (x) answer: a tie for the vote."""
    rows = []
    for n in range(12):
        truth = "x" if n % 2 == 0 else "y"
        item = f"i{n:02d}"
        rows += [(item, "a", truth), (item, "b", truth), (item, "c", "x")]
    rows += [("i13", "a", "y"), ("i13", "c", "x")]
    return table(rows)


def test_registry_holds_every_method_and_the_default():
    assert set(METHODS) == {
        "majority_vote",
        "weighted_majority_vote",
        "dawid_skene",
        "one_coin_dawid_skene",
        "hierarchical_dawid_skene",
        "structured_dawid_skene",
    }
    assert DEFAULT_METHOD == "hierarchical_dawid_skene"
    assert isinstance(make_aggregator(DEFAULT_METHOD, classes=("x", "y")), HierarchicalDawidSkene)


def test_unknown_method_is_a_config_error_naming_the_choices():
    with pytest.raises(
        ConfigError, match=r"unknown aggregation method 'nope'; choose one of \['dawid_skene'"
    ):
        make_aggregator("nope")


@pytest.mark.parametrize("method", ALL)
def test_a_two_way_tie_goes_to_the_earlier_class_in_the_label_set(method):
    data = table([("i1", "a", "x"), ("i1", "b", "y")])
    assert make_aggregator(method).fit(data).labels_.to_dict() == {"i1": "x"}
    assert make_aggregator(method, classes=("y", "x")).fit(data).labels_.to_dict() == {"i1": "y"}


@pytest.mark.parametrize("cls", EM)
def test_em_methods_keep_a_symmetric_tie_at_one_half(cls):
    model = cls().fit(table([("i1", "a", "x"), ("i1", "b", "y")]))
    np.testing.assert_allclose(model.probas_.to_numpy(), [[0.5, 0.5]], atol=1e-12)


def test_weighted_vote_breaks_a_tie_with_the_agreeing_annotator_weight():
    model = WeightedMajorityVote().fit(table([("i1", "a", "x"), ("i1", "b", "y")]))
    # a agrees with the initial vote (x), b does not: weights 1 and 0
    assert model.skills_.to_dict() == {"a": 1.0, "b": 0.0}
    assert model.probas_.loc["i1"].to_dict() == {"x": 1.0, "y": 0.0}


@pytest.mark.parametrize("method", ALL)
def test_a_single_annotator_gets_their_own_labels(method):
    data = table([("i1", "a", "x"), ("i2", "a", "y"), ("i3", "a", "y")])
    model = make_aggregator(method).fit(data)
    assert model.labels_.to_dict() == {"i1": "x", "i2": "y", "i3": "y"}
    assert list(model.skills_.index) == ["a"]


@pytest.mark.parametrize("method", ALL)
def test_an_item_with_one_label_takes_it(method):
    data = pd.concat([reliable_vs_constant(), table([("solo", "b", "y")])], ignore_index=True)
    assert make_aggregator(method).fit(data).labels_["solo"] == "y"


@pytest.mark.parametrize("method", ALL)
def test_an_annotator_with_one_label_gets_a_finite_skill(method):
    data = pd.concat([reliable_vs_constant(), table([("i00", "once", "y")])], ignore_index=True)
    model = make_aggregator(method).fit(data)
    assert 0.0 <= model.skills_["once"] <= 1.0
    assert model.labels_["i00"] == "x"  # one dissenting newcomer does not flip a 3-vote item


@pytest.mark.parametrize("cls", [WeightedMajorityVote, *EM])
def test_the_reliable_annotator_wins_a_tie_against_a_constant_one(cls):
    model = cls().fit(reliable_vs_constant())
    assert MajorityVote().fit(reliable_vs_constant()).labels_["i13"] == "x"  # the plain vote is fooled
    assert model.labels_["i13"] == "y"
    assert model.skills_["a"] > model.skills_["c"]
    truth = {f"i{n:02d}": ("x" if n % 2 == 0 else "y") for n in range(12)}
    assert model.labels_.drop("i13").to_dict() == truth


@pytest.mark.parametrize("method", ALL)
def test_a_class_nobody_used_gets_a_column_but_never_wins(method):
    model = make_aggregator(method, classes=("x", "y", "z")).fit(reliable_vs_constant())
    assert list(model.probas_.columns) == ["x", "y", "z"]
    assert not (model.labels_ == "z").any()
    np.testing.assert_allclose(model.probas_.sum(axis=1), 1.0)
    frame = model.result_frame()
    assert list(frame.columns) == ["item_id", "label", "confidence", "proba_x", "proba_y", "proba_z"]


@pytest.mark.parametrize("cls", [DawidSkene, HierarchicalDawidSkene, StructuredDawidSkene, OneCoinDawidSkene])
def test_confusions_are_annotators_by_true_by_given_with_rows_summing_to_one(cls):
    model = cls(classes=("x", "y", "z")).fit(reliable_vs_constant())
    assert model.confusions_.shape == (3, 3, 3)
    np.testing.assert_allclose(model.confusions_.sum(axis=2), 1.0)
    if cls is not OneCoinDawidSkene:  # one coin cannot express "always says x"
        assert (model.confusions_[2, :2, 0] > 0.8).all()


def test_one_coin_confusions_have_one_accuracy_per_annotator():
    model = OneCoinDawidSkene().fit(reliable_vs_constant())
    conf = model.confusions_
    np.testing.assert_allclose(conf[:, 0, 0], conf[:, 1, 1])
    np.testing.assert_allclose(conf[:, 0, 1], 1 - conf[:, 0, 0])


def test_hierarchical_dawid_skene_shrinks_a_sparse_annotator_to_the_pooled_matrix():
    data = pd.concat([reliable_vs_constant(), table([("i00", "once", "y")])], ignore_index=True)
    model = HierarchicalDawidSkene().fit(data)
    once = list(model.skills_.index).index("once")
    pooled = model.pooled_confusion_
    plain = DawidSkene().fit(data)
    # plain DS trusts the single (wrong) label; the hierarchical prior pulls the row toward the crowd
    assert plain.confusions_[once, 0, 1] > 0.95
    assert abs(model.confusions_[once, 0, 1] - pooled[0, 1]) < abs(
        plain.confusions_[once, 0, 1] - pooled[0, 1]
    )
    assert model.strengths_.shape == (2,)
    fixed = HierarchicalDawidSkene(strength=1e4).fit(data)
    np.testing.assert_allclose(fixed.confusions_[once], fixed.pooled_confusion_, atol=1e-3)


def test_structured_dawid_skene_centres_rows_on_a_skill_model_with_the_crowds_error_pattern():
    data = pd.concat([reliable_vs_constant(), table([("i00", "once", "y")])], ignore_index=True)
    model = StructuredDawidSkene(classes=("x", "y", "z"), strength=1e4).fit(data)
    # with a huge strength every row is its centre: the class accuracy on the diagonal, the rest
    # spread by the pooled error pattern, which has a zero diagonal and rows summing to 1
    acc = model.accuracies_
    conf = model.confusions_
    np.testing.assert_allclose(np.diagonal(conf, axis1=1, axis2=2), acc, atol=1e-3)
    e = model.error_patterns_
    np.testing.assert_allclose(np.diagonal(e), 0.0)
    np.testing.assert_allclose(e.sum(axis=1), 1.0)
    np.testing.assert_allclose(conf[:, 0, 1:], (1 - acc[:, :1]) * e[0, 1:], atol=1e-3)
    once = list(model.skills_.index).index("once")
    reliable = list(model.skills_.index).index("a")
    assert acc[reliable, 0] > acc[once, 0]
    assert acc.shape == (4, 3) and model.strengths_.shape == (3,)


def test_structured_strengths_come_from_empirical_bayes_and_must_be_positive():
    model = StructuredDawidSkene().fit(reliable_vs_constant())
    assert (model.strengths_ >= 0.1).all() and (model.strengths_ <= 1e4).all()
    assert model.pooled_centre_.dtype == bool and model.accuracy_strength_ > 0
    with pytest.raises(ConfigError, match="strength must be > 0 or None, got -1"):
        StructuredDawidSkene(strength=-1).fit(reliable_vs_constant())


@pytest.mark.parametrize("method", ALL)
def test_duplicate_rows_do_not_crash_and_count_as_votes(method):
    data = table([("i1", "a", "x"), ("i1", "a", "x"), ("i1", "b", "y"), ("i2", "a", "y"), ("i2", "b", "y")])
    model = make_aggregator(method).fit(data)
    assert model.labels_.to_dict() == {"i1": "x", "i2": "y"}


def test_majority_vote_shares_count_duplicates():
    data = table([("i1", "a", "x"), ("i1", "a", "x"), ("i1", "b", "y")])
    np.testing.assert_allclose(MajorityVote().fit(data).probas_.loc["i1"].to_numpy(), [2 / 3, 1 / 3])


@pytest.mark.parametrize("cls", EM)
def test_em_reports_iterations_and_convergence(cls):
    model = cls(max_iter=1).fit(reliable_vs_constant())
    assert model.n_iter_ == 1 and model.converged_ is False
    model = cls().fit(reliable_vs_constant())
    assert model.converged_ and model.n_iter_ < 100
    assert np.isfinite(model.log_likelihood_)


@pytest.mark.parametrize("kwargs", [{"tol": 0}, {"tol": -1.0}, {"max_iter": 0}])
@pytest.mark.parametrize("cls", EM)
def test_bad_em_settings_are_config_errors(cls, kwargs):
    with pytest.raises(ConfigError, match=r"(tol must be > 0|max_iter must be >= 1)"):
        cls(**kwargs).fit(reliable_vs_constant())


def test_weighted_vote_rejects_zero_rounds():
    with pytest.raises(ConfigError, match="max_iter must be >= 1, got 0"):
        WeightedMajorityVote(max_iter=0).fit(reliable_vs_constant())


def test_hierarchical_strength_must_be_positive():
    with pytest.raises(ConfigError, match="strength must be > 0 or None, got 0"):
        HierarchicalDawidSkene(strength=0).fit(reliable_vs_constant())


@pytest.mark.parametrize("cls", [WeightedMajorityVote, *EM])
def test_an_empty_table_is_a_validation_error(cls):
    with pytest.raises(ValidationError, match="no annotations to aggregate"):
        cls().fit(table([]))


@pytest.mark.parametrize("method", ALL)
def test_a_label_outside_the_label_set_is_a_schema_error(method):
    with pytest.raises(SchemaError, match=r"labels \['q'\] are not in the label set \['x', 'y'\]"):
        make_aggregator(method, classes=("x", "y")).fit(table([("i1", "a", "q")]))


@pytest.mark.parametrize("method", ALL)
def test_a_missing_column_is_a_schema_error(method):
    with pytest.raises(SchemaError, match=r"annotations lack the column\(s\) \['label'\]"):
        make_aggregator(method).fit(pd.DataFrame({"item_id": ["i"], "annotator_id": ["a"]}))


@pytest.mark.parametrize("method", ALL)
def test_result_frame_before_fit_is_a_not_fitted_error(method):
    with pytest.raises(NotFittedError, match="is not fitted; call fit"):
        make_aggregator(method).result_frame()


def systematic_confusion() -> pd.DataFrame:
    """Class z is only ever recognised by annotator c: a and b say x and y on it.

    On ``odd`` only a (x) and b (y) answer, the exact pattern of a z item.
    """
    rows = []
    for n in range(20):
        rows += [(f"x{n}", who, "x") for who in "abc"]
        rows += [(f"y{n}", who, "y") for who in "abc"]
        rows += [(f"z{n}", "a", "x"), (f"z{n}", "b", "y"), (f"z{n}", "c", "z")]
    rows += [("odd", "a", "x"), ("odd", "b", "y")]
    return table(rows)


def test_classic_dawid_skene_can_pick_a_class_nobody_voted_for():
    model = DawidSkene(support="all").fit(systematic_confusion())
    assert model.labels_["odd"] == "z"
    assert model.probas_.loc["odd", "z"] > 0.9


@pytest.mark.parametrize("cls", [DawidSkene, HierarchicalDawidSkene, StructuredDawidSkene])
def test_voted_support_keeps_each_item_within_the_labels_it_was_given(cls):
    data = systematic_confusion()
    model = cls(support="voted").fit(data)
    voted = pd.crosstab(data["item_id"], data["label"]).reindex(
        index=model.labels_.index, columns=model.classes_
    )
    codes = pd.Index(model.classes_).get_indexer(model.labels_)
    assert (voted.to_numpy()[np.arange(len(codes)), codes] > 0).all()  # every label is one the item was given
    # the label is the most probable of the given labels ...
    masked = model.probas_.where(voted > 0, -1.0)
    assert (model.labels_ == masked.idxmax(axis=1)).all()
    assert model.labels_["odd"] in {"x", "y"}
    # ... while the probabilities stay the fitted model's posterior over every class: 'odd' looks like a z item
    assert model.probas_.loc["odd", "z"] > model.probas_.loc["odd", model.labels_["odd"]]
    np.testing.assert_allclose(model.probas_.sum(axis=1), 1.0)
    frame = model.result_frame().set_index("item_id")
    assert frame.loc["odd", "confidence"] == pytest.approx(model.probas_.loc["odd", model.labels_["odd"]])
    # the z items still come out as z: c, who alone gives z, is trusted
    assert (model.labels_[[f"z{n}" for n in range(20)]] == "z").all()


def test_voted_support_keeps_a_single_unreliable_label_uncertain():
    """One label from an annotator who is right half the time: the label is theirs, the confidence is not 1."""
    rows = []
    for n in range(30):
        truth = "x" if n % 2 == 0 else "y"
        rows += [(f"i{n}", "a", truth), (f"i{n}", "b", truth), (f"i{n}", "coin", "x" if n % 4 < 2 else "y")]
    rows += [("lone", "coin", "x")]
    model = HierarchicalDawidSkene().fit(table(rows))
    assert model.labels_["lone"] == "x"
    assert 0.3 < model.probas_.loc["lone", "x"] < 0.7


def test_the_default_aggregator_restricts_to_voted_labels_with_a_weak_fixed_prior():
    model = make_aggregator(DEFAULT_METHOD)
    assert model.support == "voted" and model.strength == 3.0
    assert DawidSkene().support == "all"  # the textbook model stays the textbook model


@pytest.mark.parametrize("cls", [DawidSkene, HierarchicalDawidSkene, StructuredDawidSkene])
def test_unknown_support_is_a_config_error(cls):
    with pytest.raises(ConfigError, match=r"support must be one of \('all', 'voted'\), got 'some'"):
        cls(support="some").fit(reliable_vs_constant())
