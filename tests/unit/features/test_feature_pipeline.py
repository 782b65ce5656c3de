"""The one feature pipeline: plain frame without text, CSR with it; out-of-fold text scores; persistence."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from labelcycle.errors import SchemaError
from labelcycle.features.pipeline import FeaturePipeline, split_tuned
from labelcycle.params import FeaturesParams

CUES = {0: "thanks nice friendly lovely", 1: "stupid ugly idiot hate"}
FILLER = ["you", "are", "the", "bot", "what", "is", "today", "tell", "me", "more", "about", "it", "please"]


def text_items(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    msgs = [" ".join([*rng.choice(FILLER, size=5), *rng.choice(CUES[k].split(), size=2)]) for k in y]
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "message": msgs,
            "channel": rng.choice(["web", "app"], size=n),
            "score": rng.normal(size=n),
        }
    )
    return items, y


def test_without_text_the_features_are_the_plain_frame_the_model_always_took():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "x": [1, None, 3], "cat": ["u", None, "v"]})
    pipe = FeaturePipeline().fit(items)
    X = pipe.transform(pd.DataFrame({"item_id": ["d", "e"], "x": [2.0, 5.0], "cat": ["v", "never-seen"]}))
    assert isinstance(X, pd.DataFrame) and list(X.columns) == ["x", "cat"]
    assert X["x"].tolist() == [2.0, 5.0]
    assert list(X["cat"].cat.categories) == ["u", "v"] and X["cat"].isna().tolist() == [False, True]


def test_with_text_the_features_are_a_csr_matrix_with_named_columns():
    items, y = text_items()
    pipe = FeaturePipeline().fit(items, y)
    X = pipe.transform(items)
    assert X.format == "csr" and X.shape == (len(items), len(pipe.feature_names))
    assert pipe.feature_names[:4] == ["score", "channel", "message:score:0", "message:score:1"]
    assert pipe.categorical_indices == [1]
    assert any(n.startswith("message:word:") for n in pipe.feature_names)
    assert any(n.startswith("message:char:") for n in pipe.feature_names)


def test_training_items_get_out_of_fold_text_scores_and_new_items_the_full_models():
    items, y = text_items()
    pipe = FeaturePipeline()
    fitted = pipe.fit_transform(items, y).toarray()
    again = pipe.transform(items).toarray()
    scores = [pipe.feature_names.index("message:score:0"), pipe.feature_names.index("message:score:1")]
    other = [j for j in range(fitted.shape[1]) if j not in scores]
    assert np.allclose(fitted[:, other], again[:, other])  # everything else is the same
    assert not np.allclose(fitted[:, scores], again[:, scores])  # the training rows' scores are out of fold
    assert np.allclose(again[:, scores], pipe.scores_[0].scores(items["message"].tolist()))
    # out-of-fold scores still tell the classes apart
    assert ((np.exp(fitted[:, scores[1]]) > 0.5) == y).mean() > 0.9


def test_a_fitted_pipeline_round_trips_through_plain_data():
    items, y = text_items()
    pipe = FeaturePipeline().fit(items, y)
    again = FeaturePipeline.from_dict(json.loads(json.dumps(pipe.to_dict())))
    assert np.allclose(again.transform(items).toarray(), pipe.transform(items).toarray())
    assert again.feature_names == pipe.feature_names


def test_a_numeric_column_holding_text_at_predict_time_is_refused():
    items, y = text_items()
    pipe = FeaturePipeline().fit(items, y)
    bad = items.head(3).assign(score=["1.5", "high", None])
    with pytest.raises(
        SchemaError,
        match=r"items column 'score' was numeric in the training items but holds text "
        r"here \(e.g. 'high', 1 value\(s\)\); fix these items, or declare",
    ):
        pipe.transform(bad)


def test_an_embedding_of_the_wrong_length_is_refused():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "vec": [[0.1, 0.2], [0.3, 0.4], None]})
    pipe = FeaturePipeline().fit(items)
    X = pipe.transform(items).toarray()
    assert X[:2].tolist() == [[0.1, 0.2], [0.3, 0.4]] and np.isnan(X[2]).all()
    with pytest.raises(SchemaError, match=r"embedding column 'vec', row 0: expected a list of 2 numbers"):
        pipe.transform(pd.DataFrame({"item_id": ["d"], "vec": [[0.1, 0.2, 0.3]]}))


def test_tuned_text_settings_override_the_params_and_the_rest_goes_to_lightgbm():
    lgb_params, features = split_tuned({"num_leaves": 7, "tfidf_max_features": 50, "tfidf_min_df": 3}, None)
    assert lgb_params == {"num_leaves": 7}
    assert (features.tfidf.max_features, features.tfidf.min_df) == (50, 3)
    assert features.tfidf.word_ngram_max == FeaturesParams().tfidf.word_ngram_max
