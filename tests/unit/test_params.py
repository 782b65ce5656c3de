from __future__ import annotations

import dataclasses

import pytest
import yaml
from tests.conftest import REPO_ROOT

from labelcycle import params as P
from labelcycle.errors import ConfigError


def test_params_yaml_ships_exactly_the_dataclass_defaults():
    shipped = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert shipped == P.to_dict(P.Params())


def test_every_params_section_is_a_frozen_dataclass_with_a_default_for_every_field():
    for f in dataclasses.fields(P.Params):
        section = f.default_factory()  # type: ignore[misc]
        assert dataclasses.is_dataclass(section) and section.__dataclass_params__.frozen, f.name


def test_nested_sections_are_built_from_nested_mappings():
    p = P.from_mapping(
        {
            "train_error_model": {"features": {"quality_rounds": 7}},
            "train_quality": {"dask": {"enabled": True}},
        }
    )
    assert p.train_error_model.features.quality_rounds == 7
    assert p.train_error_model.features.em_iterations == P.FeatureParams().em_iterations
    assert p.train_quality.dask == P.DaskParams(enabled=True)


def test_unknown_keys_are_refused_with_the_section_named():
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) \['quality_roundz'\] in 'train_error_model.features'"
    ):
        P.from_mapping({"train_error_model": {"features": {"quality_roundz": 7}}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['nope'\] in 'params'"):
        P.from_mapping({"nope": {}})


def test_bad_values_are_refused_with_the_key_named():
    with pytest.raises(ConfigError, match="curate.action must be one of"):
        P.from_mapping({"curate": {"action": "burn"}})
    with pytest.raises(ConfigError, match="evaluate.primary_metric must be one of"):
        P.from_mapping({"evaluate": {"primary_metric": "vibes"}})


def test_error_model_takes_the_aggregate_method_unless_params_name_one():
    p = P.from_mapping({"aggregate": {"method": "majority_vote"}})
    assert p.error_model.features.aggregator == "majority_vote"
    own = P.from_mapping(
        {
            "aggregate": {"method": "majority_vote"},
            "train_error_model": {"features": {"aggregator": "dawid_skene"}},
        }
    )
    assert own.error_model.features.aggregator == "dawid_skene"


def test_project_params_are_the_defaults_outside_a_project_and_the_file_inside_one(tmp_path):
    assert P.project_params(None) == P.Params()
    assert P.project_params(tmp_path) == P.Params()
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"train_error_model": {"n_estimators": 9}}))
    assert P.project_params(tmp_path).train_error_model.n_estimators == 9
