"""Invariants on larger generated data, and hypothesis properties of the EM code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelcycle.aggregation import (
    METHODS,
    DawidSkene,
    HierarchicalDawidSkene,
    MajorityVote,
    StructuredDawidSkene,
    make_aggregator,
)

ALL = sorted(METHODS)
EM_METHODS = ["dawid_skene", "one_coin_dawid_skene", "hierarchical_dawid_skene", "structured_dawid_skene"]


def generated_crowd(
    seed: int = 0, n_items: int = 400, n_annotators: int = 60, k: int = 3
) -> tuple[pd.DataFrame, pd.Series]:
    """Sparse crowd: Zipf activity, 20% uniform spammers, good annotators at 0.6-0.95 accuracy."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    accuracy = rng.uniform(0.6, 0.95, n_annotators)
    accuracy[rng.random(n_annotators) < 0.2] = 1.0 / k
    activity = 1.0 / np.arange(1, n_annotators + 1)
    activity /= activity.sum()
    item = np.repeat(np.arange(n_items), 4)
    annotator = rng.choice(n_annotators, size=len(item), p=activity)
    correct = rng.random(len(item)) < accuracy[annotator]
    wrong = (truth[item] + rng.integers(1, k, len(item))) % k
    label = np.where(correct, truth[item], wrong)
    classes = np.array([f"c{c}" for c in range(k)])
    frame = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in item],
            "annotator_id": [f"a{a}" for a in annotator],
            "label": classes[label],
        }
    )
    return frame, pd.Series(classes[truth], index=[f"i{i}" for i in range(n_items)])


@pytest.fixture(scope="module")
def crowd() -> tuple[pd.DataFrame, pd.Series]:
    return generated_crowd()


@pytest.mark.parametrize("method", ALL)
def test_probabilities_sum_to_one_and_labels_are_in_the_label_set(method, crowd):
    annotations, _ = crowd
    model = make_aggregator(method, classes=("c0", "c1", "c2", "unused")).fit(annotations)
    probas = model.probas_.to_numpy()
    assert probas.shape == (annotations["item_id"].nunique(), 4)
    assert np.all(probas >= 0) and np.all(np.isfinite(probas))
    np.testing.assert_allclose(probas.sum(axis=1), 1.0, atol=1e-9)
    assert set(model.labels_) <= {"c0", "c1", "c2"}
    # the label is the most probable class, among the given labels where the model's support is "voted"
    if getattr(model, "support", "all") == "voted":
        voted = pd.crosstab(annotations["item_id"], annotations["label"]).reindex(
            index=model.probas_.index, columns=model.probas_.columns, fill_value=0
        )
        assert (model.labels_ == model.probas_.where(voted > 0, -1.0).idxmax(axis=1)).all()
    else:
        assert (model.labels_ == model.probas_.idxmax(axis=1)).all()
    assert model.skills_.between(0, 1).all()
    frame = model.result_frame()
    chosen = model.probas_.to_numpy()[
        np.arange(len(probas)), pd.Index(model.classes_).get_indexer(model.labels_)
    ]
    np.testing.assert_allclose(frame["confidence"], chosen)


@pytest.mark.parametrize("method", ALL)
def test_fitting_twice_gives_identical_results(method, crowd):
    annotations, _ = crowd
    first = make_aggregator(method).fit(annotations).probas_
    second = make_aggregator(method).fit(annotations).probas_
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize(
    "method", ["one_coin_dawid_skene", "hierarchical_dawid_skene", "weighted_majority_vote"]
)
def test_skill_aware_methods_beat_the_plain_vote_on_a_crowd_with_spammers(method, crowd):
    # plain Dawid-Skene is left out on purpose: on a sparse crowd its per-annotator matrices overfit
    annotations, truth = crowd
    mv = (MajorityVote().fit(annotations).labels_.reindex(truth.index) == truth).mean()
    acc = (make_aggregator(method).fit(annotations).labels_.reindex(truth.index) == truth).mean()
    assert acc > mv


def test_hierarchical_prior_helps_when_most_annotators_give_a_handful_of_labels():
    accs = {"ds": [], "hds": []}
    for seed in range(3):
        annotations, truth = generated_crowd(seed=seed, n_items=600, n_annotators=300, k=4)
        for key, model in (("ds", DawidSkene()), ("hds", HierarchicalDawidSkene())):
            accs[key].append((model.fit(annotations).labels_.reindex(truth.index) == truth).mean())
    assert np.mean(accs["hds"]) >= np.mean(accs["ds"])


def test_structured_prior_acts_like_one_coin_with_many_classes_and_few_labels_per_annotator():
    accs = {"ds": [], "sds": []}
    for seed in range(3):
        annotations, truth = generated_crowd(seed=seed, n_items=400, n_annotators=60, k=10)
        for key, model in (("ds", DawidSkene()), ("sds", StructuredDawidSkene())):
            accs[key].append((model.fit(annotations).labels_.reindex(truth.index) == truth).mean())
    assert np.mean(accs["sds"]) > np.mean(accs["ds"])


def test_em_skills_track_true_annotator_accuracy(crowd):
    annotations, truth = crowd
    model = HierarchicalDawidSkene().fit(annotations)
    counts = annotations.groupby("annotator_id").size()
    busy = counts[counts >= 30].index
    true_acc = annotations["label"].to_numpy() == truth.reindex(annotations["item_id"]).to_numpy()
    per_annotator = pd.Series(true_acc, index=annotations["annotator_id"]).groupby(level=0).mean()
    corr = np.corrcoef(per_annotator[busy], model.skills_[busy])[0, 1]
    assert corr > 0.8


# --- hypothesis properties -------------------------------------------------------------------------

rows_strategy = st.lists(
    st.tuples(st.integers(0, 7), st.integers(0, 5), st.sampled_from(["x", "y", "z"])),
    min_size=1,
    max_size=40,
)


def as_frame(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [f"i{r[0]}" for r in rows],
            "annotator_id": [f"a{r[1]}" for r in rows],
            "label": [r[2] for r in rows],
        }
    )


def assert_same_result(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal probabilities; equal labels wherever the winner is not a (near) tie."""
    b = b.loc[a.index]
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-7)
    top2 = np.sort(a.to_numpy(), axis=1)[:, -2:] if a.shape[1] > 1 else None
    clear = (top2[:, 1] - top2[:, 0] > 1e-6) if top2 is not None else np.ones(len(a), bool)
    assert (a.idxmax(axis=1)[clear] == b.idxmax(axis=1)[clear]).all()


@pytest.mark.parametrize("method", ALL)
@settings(max_examples=25, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**16))
def test_permuting_rows_does_not_change_the_result(method, rows, seed):
    frame = as_frame(rows)
    shuffled = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    classes = ("x", "y", "z")
    assert_same_result(
        make_aggregator(method, classes).fit(frame).probas_,
        make_aggregator(method, classes).fit(shuffled).probas_,
    )


# Known defect, left visible: structured_dawid_skene's empirical-Bayes strength search depends on the
# order of ids, so renaming can move probabilities by ~1e-3 (the labels stay the same). Not the default.
RENAMING = [
    pytest.param(
        m, marks=pytest.mark.xfail(reason="EB strength search is id-order dependent (~1e-3)", strict=False)
    )
    if m == "structured_dawid_skene"
    else m
    for m in ALL
]


@pytest.mark.parametrize("method", RENAMING)
@settings(max_examples=25, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**16))
def test_renaming_items_and_annotators_does_not_change_the_result(method, rows, seed):
    frame = as_frame(rows)
    rng = np.random.default_rng(seed)
    item_names = {f"i{n}": f"item-{v}" for n, v in enumerate(rng.permutation(100)[:8])}
    ann_names = {f"a{n}": f"worker-{v}" for n, v in enumerate(rng.permutation(100)[:6])}
    renamed = frame.assign(
        item_id=frame["item_id"].map(item_names), annotator_id=frame["annotator_id"].map(ann_names)
    )
    classes = ("x", "y", "z")
    original = make_aggregator(method, classes).fit(frame).probas_
    result = make_aggregator(method, classes).fit(renamed).probas_
    result.index = result.index.map({v: k for k, v in item_names.items()})
    assert_same_result(original, result)


@pytest.mark.parametrize("method", ALL)
@settings(max_examples=25, deadline=None)
@given(
    truth=st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=12),
    coverage=st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=12, max_size=12),
)
def test_perfect_annotators_are_recovered(method, truth, coverage):
    """Two or more perfect annotators per item (with one per item, plain DS can flip a one-label annotator)."""
    rows = []
    for i, label in enumerate(truth):
        who = [a for a in range(4) if coverage[i][a]]
        who = who if len(who) >= 2 else [i % 4, (i + 1) % 4]  # two perfect annotators per item
        rows += [(f"i{i}", f"a{a}", label) for a in who]
    frame = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    model = make_aggregator(method, ("x", "y", "z")).fit(frame)
    assert model.labels_.to_dict() == {f"i{i}": label for i, label in enumerate(truth)}


@pytest.mark.parametrize("method", EM_METHODS)
@settings(max_examples=25, deadline=None)
@given(rows=rows_strategy)
def test_em_probabilities_are_finite_and_normalised_on_any_table(method, rows):
    model = make_aggregator(method, ("x", "y", "z")).fit(as_frame(rows))
    probas = model.probas_.to_numpy()
    assert np.all(np.isfinite(probas))
    np.testing.assert_allclose(probas.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(model.confusions_.sum(axis=2), 1.0, atol=1e-9)
