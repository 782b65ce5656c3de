from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.errors import NotFittedError, SchemaError
from labelcycle.quality.model import QualityModel, prepare_training, train

CLASSES = ["ok", "misleading", "prohibited"]


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    cat = rng.choice(["a", "b", "c"], size=n)
    y = np.where(x > 0.5, "misleading", "ok")
    y = np.where(cat == "c", "prohibited", y)
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n)], "x": x, "cat": cat})
    return items, pd.Series(y)


def test_model_learns_numeric_and_categorical_features_and_roundtrips(tmp_path):
    items, y = _data()
    res = train(
        items, y, CLASSES, params={"n_estimators": 50, "num_threads": 1, "min_child_samples": 5}, seed=1
    )
    pred = res.model.predict(items)
    assert (pred["label"] == y).mean() > 0.9
    assert np.allclose(pred[["proba_ok", "proba_misleading", "proba_prohibited"]].sum(axis=1), 1)
    res.model.save(tmp_path / "m")
    again = QualityModel.load(tmp_path / "m").predict(items)
    pd.testing.assert_frame_equal(pred, again)


def test_unseen_category_and_missing_class_are_handled():
    items, y = _data()
    y = y.replace("prohibited", "ok")  # a class nobody used
    res = train(items, y, CLASSES, params={"n_estimators": 20, "num_threads": 1}, seed=1)
    new = pd.DataFrame({"item_id": ["n1"], "x": [0.0], "cat": ["never-seen"]})
    pred = res.model.predict(new)
    assert pred["proba_prohibited"].iloc[0] == 0.0
    assert pred[["proba_ok", "proba_misleading"]].sum(axis=1).iloc[0] == pytest.approx(1.0)


def test_early_stopping_split_never_uses_rows_outside_the_given_training_items():
    items, y = _data()
    res = train(items, y, CLASSES, params={"n_estimators": 30, "num_threads": 1}, valid_fraction=0.2, seed=0)
    # a real split (not an empty one that passes trivially) that partitions exactly the given rows
    assert res.n_valid == prepare_training(items, y, CLASSES, valid_fraction=0.2, seed=0).valid.sum() > 0
    assert res.n_train + res.n_valid == len(items)


def test_errors_are_clear(tmp_path):
    items, y = _data()
    with pytest.raises(SchemaError, match="single class"):
        train(items, pd.Series(["ok"] * len(items)), CLASSES, params={"n_estimators": 5})
    res = train(items, y, CLASSES, params={"n_estimators": 5, "num_threads": 1})
    with pytest.raises(SchemaError, match=r"lack the feature column\(s\) \['cat'\]"):
        res.model.predict(items.drop(columns=["cat"]))
    with pytest.raises(NotFittedError, match="run `dvc repro train_quality`"):
        QualityModel.load(tmp_path / "nothing")
