"""Dask training without a cluster: the early-stopping rule and where the scheduler address comes from."""

from __future__ import annotations

import pytest

from labelcycle.dask_cluster import SCHEDULER_ENV, scheduler_address
from labelcycle.errors import ConfigError
from labelcycle.params import DaskParams, TrainQualityParams, from_mapping
from labelcycle.quality.distributed import best_iteration


def test_best_iteration_follows_lightgbm_early_stopping():
    assert best_iteration([5, 4, 3, 3.5, 3.2, 3.1, 2.0], patience=3) == 3  # stops before the late 2.0
    assert best_iteration([5, 4, 3, 3.5, 3.2, 2.0], patience=3) == 6
    assert best_iteration([1.0], patience=5) == 1


def test_dask_params_are_validated_and_the_scheduler_comes_from_params_then_env(monkeypatch):
    assert TrainQualityParams().dask == DaskParams(enabled=False, scheduler=None)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['workers'\] in 'train_quality.dask'"):
        from_mapping({"train_quality": {"dask": {"enabled": True, "workers": 3}}})
    with pytest.raises(ConfigError, match="dask.enabled must be true or false"):
        from_mapping({"train_quality": {"dask": {"enabled": "yes"}}})
    monkeypatch.setenv(SCHEDULER_ENV, "tcp://10.0.0.1:8786")
    assert scheduler_address("tcp://h:1") == "tcp://h:1"
    assert scheduler_address(None) == "tcp://10.0.0.1:8786"
    monkeypatch.delenv(SCHEDULER_ENV)
    assert scheduler_address(None) is None
