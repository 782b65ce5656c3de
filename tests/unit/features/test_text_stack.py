"""The linear text base: the stack of the text columns' out-of-fold scores, which the quality model boosts
from; an uninformative context column gets a small weight in it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from labelcycle.features.pipeline import FeaturePipeline
from labelcycle.features.text_score import fit_text_stack
from labelcycle.quality.model import QualityModel, train

CUES = {0: "thanks nice friendly lovely", 1: "stupid ugly idiot hate"}
FILLER = ["you", "are", "the", "bot", "what", "is", "today", "tell", "me", "more", "about", "it", "please"]
CLASSES = ["ok", "abusive"]


def two_columns(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``message`` carries the label's cue words; ``context`` is filler chosen independently of it."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    msgs = [" ".join([*rng.choice(FILLER, size=5), *rng.choice(CUES[k].split(), size=2)]) for k in y]
    context = [" ".join(rng.choice(FILLER, size=8)) for _ in y]
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(n)], "message": msgs, "context": context})
    return items, y


def test_the_stack_weighs_an_uninformative_context_column_far_below_the_informative_one():
    items, y = two_columns()
    pipe = FeaturePipeline().fit(items, y)
    assert [s.column for s in pipe.scores_] == ["message", "context"]
    weight = np.abs(pipe.stack_.coef).sum(axis=0)  # per score column: message's 2 classes, context's 2
    assert weight[:2].sum() > 5 * weight[2:].sum()


def test_the_init_score_of_a_binary_task_is_the_stacks_log_odds_of_class_one():
    items, y = two_columns()
    pipe = FeaturePipeline().fit(items, y)
    X = pipe.transform(items)
    margin = pipe.stack_.margin(X[:, pipe.score_columns].toarray())
    assert np.allclose(pipe.init_score(X), margin[:, 1] - margin[:, 0])
    # the base alone already separates the classes on these items
    assert np.mean((pipe.init_score(X) > 0) == (y == 1)) > 0.95


def test_a_stack_with_a_class_absent_from_the_labels_gives_it_the_floor_probability():
    scores = np.random.default_rng(0).normal(size=(40, 6))
    stack = fit_text_stack(scores, np.array([0, 2] * 20), n_classes=3)
    assert np.all(np.exp(stack.margin(scores))[:, 1] < 1e-5)


def test_the_quality_model_boosts_from_the_text_base_and_predicts_the_same_after_loading(tmp_path):
    items, y = two_columns()
    labels = pd.Series(np.asarray(CLASSES)[y])
    params = {"n_estimators": 1, "learning_rate": 1e-6, "num_threads": 1, "min_child_samples": 5}
    res = train(items, labels, CLASSES, params=params, seed=0)
    model = res.model
    assert model.boosted
    # one near-zero tree: the probabilities are the stacked linear text base's
    X = model.pipeline.transform(items)
    base = 1 / (1 + np.exp(-model.pipeline.init_score(X)))
    assert np.allclose(model.predict_proba(items)["abusive"].to_numpy(), base, atol=1e-4)
    model.save(tmp_path / "m")
    again = QualityModel.load(tmp_path / "m")
    assert again.boosted
    assert np.allclose(again.predict_proba(items).to_numpy(), model.predict_proba(items).to_numpy())
    spec = json.loads((tmp_path / "m" / "spec.json").read_text())
    assert spec["boosted_from_text_base"] is True and spec["pipeline"]["stack"]["coef"]
