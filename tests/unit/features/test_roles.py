"""Item column roles: declared in params or inferred, never free text as a category silently."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.errors import ConfigError, SchemaError
from labelcycle.features.roles import Embedding, check_batch_kinds, infer_roles
from labelcycle.params import FeaturesParams

WORDS = [
    "you",
    "are",
    "a",
    "stupid",
    "ugly",
    "bot",
    "what",
    "is",
    "the",
    "weather",
    "today",
    "hello",
    "nice",
    "friend",
    "please",
    "tell",
    "me",
    "more",
]


def _items(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "message": [" ".join(rng.choice(WORDS, size=rng.integers(4, 12))) for _ in range(n)],
            "channel": rng.choice(["web", "app", "sms"], size=n),
            "score": rng.normal(size=n),
            "session": [f"s{k:08x}" for k in rng.permutation(10 * n)[:n]],
        }
    )


def test_free_text_is_inferred_as_text_and_never_as_a_category():
    roles = infer_roles(_items())
    assert roles.text == ("message",)
    assert roles.categorical == ("channel",)
    assert roles.numeric == ("score",)
    assert "message" in roles.inferred and "message" not in roles.categorical


def test_an_id_like_column_is_ignored_with_a_note_saying_how_to_use_it():
    roles = infer_roles(_items())
    assert roles.ignore == ("session",)
    assert len(roles.notes) == 1
    assert "column 'session' ignored: id-like" in roles.notes[0]
    assert "features.categorical" in roles.notes[0]
    assert "session" in roles.describe() and "ignore" in roles.describe()


def test_declared_roles_override_inference_and_the_rest_is_inferred():
    roles = infer_roles(_items(), FeaturesParams(categorical=["message", "score"], text=["session"]))
    assert roles.categorical == ("message", "channel", "score")
    assert roles.text == ("session",)
    assert roles.inferred == ("channel",)


def test_a_list_column_is_an_embedding_and_a_declared_glob_groups_numeric_columns():
    items = _items(50)
    items["vec"] = [list(np.arange(4.0) + k) for k in range(50)]
    for j in range(3):
        items[f"emb_{j}"] = np.arange(50.0) * j
    roles = infer_roles(items, FeaturesParams(embedding=["emb_*"]))
    assert Embedding("emb_*", ("emb_0", "emb_1", "emb_2"), is_list=False) in roles.embedding
    assert Embedding("vec", ("vec",), is_list=True) in roles.embedding
    assert "emb_0" not in roles.numeric


def test_params_naming_a_column_the_items_lack_is_a_config_error():
    with pytest.raises(ConfigError, match=r"features.text names 'body', which is not a column of the items"):
        infer_roles(_items(), FeaturesParams(text=["body"]))
    with pytest.raises(ConfigError, match=r"features.embedding names 'vec_\*', which matches no column"):
        infer_roles(_items(), FeaturesParams(embedding=["vec_*"]))


def test_a_column_given_two_roles_is_refused():
    with pytest.raises(ConfigError, match="column 'message' is listed under both text and categorical"):
        FeaturesParams(text=["message"], categorical=["message"])


def test_a_column_numeric_in_one_batch_and_text_in_the_next_is_refused_unless_declared():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "size": ["1", "2.5", "large", "small"],
            "raw_batch": ["b1", "b1", "b2", "b2"],
        }
    )
    with pytest.raises(
        SchemaError,
        match=r"items column 'size' holds numbers in raw batch b1 but text in raw batch "
        r"b2 \(e.g. 'large'\); fix the batch, or declare the column's role",
    ):
        check_batch_kinds(items, "raw_batch")
    check_batch_kinds(items, "raw_batch", FeaturesParams(categorical=["size"]))  # declared: both accepted


def test_demo_items_keep_their_numeric_and_categorical_roles(small_demo):
    roles = infer_roles(small_demo.items)
    assert roles.text == () and roles.ignore == () and roles.embedding == ()
    assert set(roles.categorical) == {"category", "region", "has_discount_claim"}
    assert len(roles.numeric) == small_demo.items.shape[1] - 4
