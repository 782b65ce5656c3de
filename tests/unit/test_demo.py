from __future__ import annotations

import pytest

from labelcycle.demo import LABELS, generate
from labelcycle.errors import ConfigError


def test_demo_is_deterministic_per_seed():
    a, b = generate(200, 12, seed=5), generate(200, 12, seed=5)
    assert a.annotations.equals(b.annotations)
    assert not a.annotations.equals(generate(200, 12, seed=6).annotations)


def test_demo_has_the_promised_shape(small_demo):
    d = small_demo
    per_item = d.annotations.groupby("item_id").size()
    assert per_item.min() >= 1 and per_item.max() <= 5
    assert not d.annotations.duplicated(["item_id", "annotator_id"]).any()
    assert set(d.annotations["label"]) <= set(LABELS)
    assert set(d.truth_items["true_label"]) == set(LABELS)
    assert {"v1", "v2"} == set(d.annotations["guideline_version"])
    assert d.annotations["batch_id"].nunique() >= 6
    assert set(d.truth_annotators["kind"]) >= {
        "reliable",
        "mediocre",
        "spammer",
        "biased",
        "fatigued",
        "fast_clicker",
    }
    assert set(d.gold["item_id"]) <= set(d.items["item_id"])
    # gold is the truth on audited items; the public tables carry no truth columns
    truth = d.truth_items.set_index("item_id")["true_label"]
    assert (d.gold.set_index("item_id")["label"] == truth.reindex(d.gold["item_id"])).all()
    assert "true_label" not in d.annotations.columns and "true_label" not in d.items.columns


def test_spammers_err_more_than_reliable_annotators(small_demo):
    err = small_demo.truth_annotations.groupby("annotator_kind")["is_error"].mean()
    assert err["spammer"] > 0.4 > err["reliable"]


def test_demo_refuses_tiny_sizes():
    with pytest.raises(ConfigError, match="at least 10 items"):
        generate(5, 3)
