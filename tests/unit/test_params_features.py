"""The features section and the text search space (params.yaml = defaults: tests/unit/test_params.py)."""

from __future__ import annotations

import pytest

from labelcycle import params as P
from labelcycle.errors import ConfigError
from labelcycle.quality.tuning import parse_text_space


def test_the_features_section_is_built_from_params_yaml_with_its_nested_tfidf_settings():
    p = P.from_mapping(
        {"features": {"text": ["user"], "ignore": ["conv_id"], "tfidf": {"max_features": 500}}}
    )
    assert p.features.text == ["user"] and p.features.ignore == ["conv_id"]
    assert p.features.tfidf.max_features == 500
    assert p.features.tfidf.min_df == P.TfidfParams().min_df


def test_bad_feature_settings_are_refused_with_the_key_named():
    with pytest.raises(ConfigError, match="features.tfidf.min_df must be a whole number >= 1"):
        P.from_mapping({"features": {"tfidf": {"min_df": 0}}})
    with pytest.raises(ConfigError, match="need char_ngram_min <= char_ngram_max"):
        P.from_mapping({"features": {"tfidf": {"char_ngram_min": 5, "char_ngram_max": 3}}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['txt'\] in 'features'"):
        P.from_mapping({"features": {"txt": ["user"]}})
    with pytest.raises(ConfigError, match="evaluate.flag_threshold must be in"):
        P.from_mapping({"evaluate": {"flag_threshold": 2}})


def test_the_text_search_space_names_tfidf_settings_only():
    dims = parse_text_space(P.DEFAULT_TEXT_SEARCH_SPACE)
    assert {d.name for d in dims} == {f"tfidf_{k}" for k in P.DEFAULT_TEXT_SEARCH_SPACE}
    with pytest.raises(ConfigError, match=r"tune.text_search_space: unknown key\(s\) \['ngrams'\]"):
        parse_text_space({"ngrams": [1, 3, "int"]})
    with pytest.raises(ConfigError, match="text settings are whole numbers"):
        parse_text_space({"min_df": [1.0, 3.0, "float"]})
