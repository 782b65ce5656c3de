"""Detection features: exact values on tiny cases and the leakage guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.detection.features import (
    PER_CLASS,
    FeatureParams,
    annotation_context,
    annotation_features,
    features_from_context,
    item_folds,
    loo_sum,
)
from labelcycle.detection.model import detect_label_errors, gold_targets
from labelcycle.errors import SchemaError
from labelcycle.params import ErrorModelParams

CLASSES = ("ok", "misleading", "prohibited")
FAST = FeatureParams(n_folds=3, aggregator="majority_vote", quality_rounds=10)


def test_loo_sum_excludes_the_row_itself_exactly():
    values = np.array([[1.0], [2.0], [4.0], [8.0], [16.0]])
    groups = np.array([0, 1, 0, 0, 1])
    assert loo_sum(values, groups)[:, 0].tolist() == [12.0, 16.0, 9.0, 5.0, 2.0]


def test_item_folds_depend_on_the_id_alone():
    ids = pd.Series([f"i{k}" for k in range(200)])
    f = item_folds(ids, 5)
    assert set(f) == {0, 1, 2, 3, 4}
    assert (item_folds(ids[::-1], 5) == f[::-1]).all()


def test_tiny_item_agreement_is_leave_one_out(tiny_annotations):
    ctx = annotation_context(tiny_annotations, CLASSES, params=FAST)
    feats = annotation_features(tiny_annotations, CLASSES, params=FAST)
    # item i1: ok, ok, misleading -> for row 0 (ok) the others are ok + misleading
    assert ctx.loc[0, "n_annotations"] == 3 and ctx.loc[0, "n_others"] == 2
    assert feats.loc[0, "others_share_given"] == 0.5
    assert feats.loc[2, "others_share_given"] == 0.0  # nobody else said misleading on i1
    assert ctx.loc[2, "others_share__ok"] == 1.0
    # i3 has a single annotation: no others, share undefined, others entropy undefined
    assert ctx.loc[5, "n_others"] == 0 and np.isnan(feats.loc[5, "others_share_given"])
    assert np.isnan(ctx.loc[5, "others_entropy"])


def test_posteriors_are_distributions(small_demo):
    ctx = annotation_context(small_demo.annotations, CLASSES, small_demo.items, FAST)
    for name in ("others_post", "model_proba"):
        total = ctx[[f"{name}__{c}" for c in CLASSES]].sum(axis=1)
        assert np.allclose(total, 1.0)
    full = ctx[[f"full_post__{c}" for c in CLASSES]].to_numpy()
    assert ((full >= 0) & (full <= 1)).all()


def test_no_ids_are_features(small_demo):
    feats = annotation_features(small_demo.annotations, CLASSES, small_demo.items, FAST)
    assert not {"item_id", "annotator_id", "fold", "raw_batch"} & set(feats.columns)


def test_flipping_an_annotation_leaves_its_own_context_unchanged(small_demo):
    """Fails if an annotation's own label reached its features by any path (folds, aggregator, EM,
    quality model, item statistics)."""
    ann = small_demo.annotations.reset_index(drop=True)
    multi = ann.groupby("item_id")["item_id"].transform("size") >= 3
    before = annotation_context(ann, CLASSES, small_demo.items, FAST)
    for r in np.flatnonzero(multi.to_numpy())[[0, 7]]:  # one flip at a time (others legitimately see it)
        flipped = ann.copy()
        flipped.loc[r, "label"] = next(c for c in CLASSES if c != ann.loc[r, "label"])
        after = annotation_context(flipped, CLASSES, small_demo.items, FAST)
        pd.testing.assert_frame_equal(before.loc[[r]], after.loc[[r]], check_exact=True)
        # the features are the same context read at the new label
        new = features_from_context(after, flipped["label"], CLASSES)
        for name in PER_CLASS:
            col = f"{name}__{flipped.loc[r, 'label']}"
            assert new.loc[r, f"{name}_given"] == after.loc[r, col] or np.isnan(after.loc[r, col])
        # the other annotations on the same item do see the change (so the test can detect a leak)
        same_item = ann.index[(ann["item_id"] == ann.loc[r, "item_id"]) & (ann.index != r)]
        assert not before.loc[same_item].equals(after.loc[same_item])


def test_duplicates_and_unknown_labels_are_refused(tiny_annotations):
    with pytest.raises(SchemaError, match="duplicate"):
        annotation_context(pd.concat([tiny_annotations, tiny_annotations.head(1)]), CLASSES)
    with pytest.raises(SchemaError, match=r"labels \['spam'\] are not in the label set"):
        annotation_context(tiny_annotations.assign(label="spam"), CLASSES)


def test_gold_targets_drop_excluded_items():
    ann = pd.DataFrame({"item_id": ["a", "a", "b", "c"], "label": ["ok", "prohibited", "ok", "ok"]})
    gold = pd.DataFrame({"item_id": ["a", "b"], "label": ["ok", "misleading"]})
    t = gold_targets(ann, gold, exclude_items=pd.Series(["b"]))
    assert t.iloc[:2].tolist() == [0.0, 1.0] and t.iloc[2:].isna().all()


def test_eval_gold_never_changes_scores(small_demo):
    """Fails if the eval split reached a target or a feature: relabelling eval gold changes nothing."""
    from labelcycle.split import split_gold

    ann, items = small_demo.annotations, small_demo.items
    gold = small_demo.truth_items.rename(columns={"true_label": "label"})[["item_id", "label"]].iloc[::3]
    eval_gold, gold_train = split_gold(gold, 0.5, "s")
    params = ErrorModelParams(features=FAST, min_gold_targets=20)
    one = detect_label_errors(ann, CLASSES, items, gold, exclude_items=eval_gold["item_id"], params=params)
    mangled = gold.copy()
    in_eval = mangled["item_id"].isin(eval_gold["item_id"])
    mangled.loc[in_eval, "label"] = "prohibited"
    two = detect_label_errors(ann, CLASSES, items, mangled, exclude_items=eval_gold["item_id"], params=params)
    pd.testing.assert_frame_equal(one.scores, two.scores)
    assert one.supervised
    assert not set(ann.loc[one.targets.index, "item_id"]) & set(eval_gold["item_id"])


def test_without_gold_the_scores_are_unsupervised_and_say_so(tiny_annotations):
    res = detect_label_errors(tiny_annotations, CLASSES, params=ErrorModelParams(features=FAST))
    assert not res.supervised and "unsupervised" in res.message
    assert list(res.scores.columns) == [
        "item_id",
        "annotator_id",
        "label",
        "label_error_score",
        "is_label_error_issue",
    ]
    assert res.scores["label_error_score"].between(0, 1).all()
    assert (res.scores["is_label_error_issue"] == (res.scores["label_error_score"] >= 0.5)).all()


def test_the_cross_fitted_quality_probability_reads_the_item_text():
    """The error model's quality-model feature goes through the same feature pipeline: with the label
    carried by the words alone, the cross-fitted probability of the true class is high."""
    from labelcycle.params import FeaturesParams

    rng = np.random.default_rng(0)
    n = 300
    truth = rng.choice(np.asarray(CLASSES), size=n)
    cue = {
        "ok": "lovely helpful honest",
        "misleading": "miracle guaranteed secret",
        "prohibited": "weapons drugs fake",
    }
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "body": [f"buy this product today {rng.choice(cue[t].split())} now" for t in truth],
        }
    )
    rows = [
        (f"i{k}", f"a{j}", truth[k] if rng.random() < 0.8 else rng.choice(CLASSES))
        for k in range(n)
        for j in range(3)
    ]
    ann = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"])
    ctx = annotation_context(ann, CLASSES, items, FAST, FeaturesParams(text=["body"]))
    proba = ctx[[f"model_proba__{c}" for c in CLASSES]].to_numpy()
    item_truth = pd.Series(truth, index=items["item_id"]).loc[ann["item_id"]].to_numpy()
    p_true = proba[np.arange(len(ann)), pd.Categorical(item_truth, categories=CLASSES).codes]
    assert not np.isnan(proba).any()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.median(p_true) > 0.6  # the words alone give the class (chance: 1/3)
