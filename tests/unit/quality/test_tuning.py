from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest

from labelcycle.errors import ConfigError
from labelcycle.params import DEFAULT_SEARCH_SPACE
from labelcycle.quality.tuning import make_objective, make_study, parse_space, prepare_tuning_data, study_name


def test_parse_space_rejects_bad_entries():
    assert len(parse_space(DEFAULT_SEARCH_SPACE)) == len(DEFAULT_SEARCH_SPACE)
    with pytest.raises(ConfigError, match=r"tune.search_space.lr: expected \[low, high, kind\]"):
        parse_space({"lr": [0.1, 0.2]})
    with pytest.raises(ConfigError, match="low < high"):
        parse_space({"lr": [0.0, 0.2, "log"]})


def test_study_name_changes_with_data_and_space_only():
    a = study_name("q", "digest1", DEFAULT_SEARCH_SPACE, 0)
    assert a == study_name("q", "digest1", dict(DEFAULT_SEARCH_SPACE), 0)
    assert a != study_name("q", "digest2", DEFAULT_SEARCH_SPACE, 0)
    assert a != study_name("q", "digest1", {"learning_rate": [0.01, 0.2, "log"]}, 0)


def test_study_resumes_from_storage_and_objective_is_validation_loss(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    items = pd.DataFrame({"item_id": [str(i) for i in range(300)], "x": x})
    labels = pd.Series(np.where(x > 0, "b", "a"))
    data = prepare_tuning_data(items, labels, ["a", "b"], 0.2, 0)
    space = {"num_leaves": [4, 16, "int"], "min_child_samples": [2, 60, "int"]}
    objective = make_objective(
        data, parse_space(space), n_estimators=30, early_stopping_rounds=5, n_jobs=1, seed=0
    )
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = make_study("s", storage, seed=0, pruning=True)
    study.optimize(objective, n_trials=6)
    again = make_study("s", storage, seed=0, pruning=True)
    assert len(again.trials) == 6
    # trials that vary min_child_samples on one shared Dataset all run (no LightGBM pre-filter refusal)
    assert {t.state.name for t in again.trials} <= {"COMPLETE", "PRUNED"}
    assert 0 < again.best_value < 0.7  # log loss of a learnable binary problem
