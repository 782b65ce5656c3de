"""Text n-grams: exact weights, label-driven selection, one pass per search, and bad text refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelcycle.errors import ValidationError
from labelcycle.features.pipeline import FeaturePipeline
from labelcycle.features.text import TextSearchCache, TextVectorizer, fit_text, text_values
from labelcycle.params import FeaturesParams, TfidfParams

DOCS = ["you stupid bot", "stupid stupid bot", "what is the weather", "hello bot", "what a nice day"]


def test_tfidf_weight_is_sublinear_tf_times_smoothed_idf():
    p = TfidfParams(word_ngram_max=1, char_ngram_min=3, char_ngram_max=3, min_df=1, max_features=1000)
    word = next(v for v in fit_text({"m": DOCS}, None, p) if v.analyzer == "word")
    X = word.transform(["stupid stupid bot"]).toarray()[0]
    n, df_stupid, df_bot = 5, 2, 3
    idf = {t: np.log((1 + n) / (1 + df)) + 1 for t, df in (("stupid", df_stupid), ("bot", df_bot))}
    col = {t: i for i, t in enumerate(word.vocabulary)}
    assert X[col["stupid"]] == pytest.approx((1 + np.log(2)) * idf["stupid"])
    assert X[col["bot"]] == pytest.approx(idf["bot"])
    assert X.sum() == pytest.approx(X[col["stupid"]] + X[col["bot"]])  # no length normalisation


def test_a_saved_vectoriser_gives_the_weights_of_the_fitted_one():
    vec = fit_text({"m": DOCS}, None, TfidfParams(min_df=1))[1]
    again = TextVectorizer.from_dict(vec.to_dict())
    assert (again.transform(DOCS) != vec.transform(DOCS)).nnz == 0


def test_ngrams_are_kept_by_their_association_with_the_labels():
    rng = np.random.default_rng(0)
    filler = [
        "the",
        "a",
        "of",
        "and",
        "to",
        "in",
        "is",
        "it",
        "that",
        "was",
        "he",
        "for",
        "on",
        "are",
        "with",
        "as",
        "his",
        "they",
        "be",
        "at",
        "one",
        "have",
        "this",
    ]
    texts, y = [], []
    for k in range(300):
        words = list(rng.choice(filler, size=8))
        if k % 3 == 0:
            words.insert(4, "scamoffer")
        texts.append(" ".join(words))
        y.append(int(k % 3 == 0))
    vecs = fit_text({"m": texts}, np.array(y), TfidfParams(max_features=5, min_df=2))
    kept = [t for v in vecs for t in v.vocabulary]
    assert len(kept) == 5
    assert "scamoffer" in kept  # the frequent filler words are not


def test_the_search_cache_gives_the_features_a_fit_with_the_setting_gives():
    rng = np.random.default_rng(1)
    words = [
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
    ]
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(120)]
    y = rng.integers(0, 2, size=120)
    train, valid = texts[:100], texts[100:]
    wide = TfidfParams(word_ngram_max=3, char_ngram_max=6, min_df=1, max_features=300)
    cache = TextSearchCache({"m": train}, {"m": valid}, y[:100], wide)
    setting = TfidfParams(word_ngram_max=2, char_ngram_min=2, char_ngram_max=4, min_df=2, max_features=40)
    got_train, got_valid = cache.blocks(setting)
    vecs = fit_text({"m": train}, y[:100], setting)
    from scipy import sparse

    want_train = sparse.hstack([v.transform(train) for v in vecs], format="csr")
    want_valid = sparse.hstack([v.transform(valid) for v in vecs], format="csr")
    assert got_train.shape == want_train.shape == (100, 40)
    assert np.allclose(got_train.toarray(), want_train.toarray())
    assert np.allclose(got_valid.toarray(), want_valid.toarray())


def test_a_text_column_empty_for_every_training_item_is_refused():
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "body": ["", None, "  "]})
    with pytest.raises(
        ValidationError,
        match=r"text column 'body' is empty for every training item; fill it, or "
        r"give it another role in params.yaml \(features.ignore\)",
    ):
        FeaturePipeline(FeaturesParams(text=["body"])).fit(items, np.array([0, 1, 0]))


def test_non_utf8_bytes_in_a_text_column_are_refused_with_the_item_named():
    items = pd.DataFrame({"item_id": ["a", "b"], "body": ["fine", b"caf\xe9 latin-1"]})
    with pytest.raises(
        ValidationError,
        match=r"text column 'body', item 'b': not valid UTF-8 .*re-encode the file "
        r"as UTF-8",
    ):
        text_values(items, "body", 1000)
    surrogate = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    with pytest.raises(ValidationError, match="text column 'body', item 'b': not valid UTF-8"):
        text_values(
            pd.DataFrame({"item_id": ["a", "b"], "body": pd.Series(["ok", surrogate], dtype=object)}),
            "body",
            1000,
        )


def test_a_one_megabyte_message_is_refused_with_the_item_named():
    items = pd.DataFrame({"item_id": ["a", "big"], "body": ["short", "x" * 1_048_576]})
    with pytest.raises(
        ValidationError,
        match=r"text column 'body', item 'big': 1,048,576 characters, more than "
        r"features.tfidf.max_chars \(100,000\); truncate such values",
    ):
        FeaturePipeline(FeaturesParams(text=["body"])).fit(items, np.array([0, 1]))
