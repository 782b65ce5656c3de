"""Parallel tuning helpers that need no database (workers sharing a study are in tests/team)."""

from __future__ import annotations

from labelcycle.quality.parallel_tuning import dvc_set_args


def test_dvc_set_args_turns_best_params_into_an_experiment_command():
    assert dvc_set_args({"num_leaves": 15, "learning_rate": 0.1}) == (
        "-S train_quality.learning_rate=0.1 -S train_quality.num_leaves=15"
    )
