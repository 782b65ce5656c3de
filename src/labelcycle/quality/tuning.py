"""Optuna search for the quality classifier's LightGBM parameters.

The objective trains on the curated training items and scores multi-class log loss on a validation
split carved from those same items (never the gold eval split). Trials are pruned on the validation
curve. The search space comes from params (``tune.search_space``): ``name: [low, high, kind]`` with kind
``float``, ``log`` (float, log scale), ``int`` or ``log_int``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from labelcycle.errors import ConfigError
from labelcycle.params import TuneParams
from labelcycle.quality.data import TrainingRows
from labelcycle.quality.model import FeatureSpec, prepare_features

KINDS = ("float", "log", "int", "log_int")


@dataclass(frozen=True)
class Dim:
    name: str
    low: float
    high: float
    kind: str

    def suggest(self, trial: optuna.Trial) -> float | int:
        if self.kind in ("int", "log_int"):
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.kind == "log_int")
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.kind == "log")


def parse_space(space: Mapping[str, Any]) -> list[Dim]:
    """``{name: [low, high, kind]}`` -> dimensions, with clear errors for bad entries."""
    dims = []
    for name, spec in space.items():
        if not isinstance(spec, list | tuple) or len(spec) != 3 or spec[2] not in KINDS:
            raise ConfigError(
                f"params.yaml tune.search_space.{name}: expected [low, high, kind] with kind in {KINDS}, got {spec!r}"
            )
        low, high, kind = spec
        if not float(low) < float(high) or (kind in ("log", "log_int") and float(low) <= 0):
            raise ConfigError(
                f"params.yaml tune.search_space.{name}: need 0 < low < high for log scales, low < high"
            )
        dims.append(Dim(str(name), float(low), float(high), str(kind)))
    return dims


@dataclass(frozen=True)
class TuningData:
    """Encoded training and validation matrices, prepared once and shared by every trial."""

    train: lgb.Dataset
    valid: lgb.Dataset
    n_classes: int


def prepare_tuning_data(
    items: pd.DataFrame, labels: pd.Series, classes: list[str], valid_fraction: float, seed: int
) -> TuningData:
    spec = FeatureSpec.infer(items, classes)
    X = prepare_features(items, spec)
    trained = [c for c in classes if (labels.astype(str) == c).any()]
    y = labels.astype(str).map({c: i for i, c in enumerate(trained)}).to_numpy()
    rng = np.random.default_rng(seed)
    valid = np.zeros(len(X), dtype=bool)
    for k in range(len(trained)):
        idx = np.flatnonzero(y == k)
        n_val = max(1, int(round(valid_fraction * len(idx)))) if len(idx) > 2 else 0
        if n_val:
            valid[rng.choice(idx, size=n_val, replace=False)] = True
    # trials vary min_child_samples on one shared Dataset: pre-filtering features by the first trial's value
    # would make LightGBM refuse smaller values later
    train = lgb.Dataset(X[~valid], y[~valid], free_raw_data=False, params={"feature_pre_filter": False})
    return TuningData(
        train, lgb.Dataset(X[valid], y[valid], reference=train, free_raw_data=False), len(trained)
    )


def make_objective(
    data: TuningData,
    dims: list[Dim],
    *,
    n_estimators: int,
    early_stopping_rounds: int,
    n_jobs: int,
    seed: int,
    pruning: bool = True,
) -> Callable[[optuna.Trial], float]:
    """The objective: validation log loss (lower is better) at the best iteration."""
    multi = data.n_classes > 2
    metric = "multi_logloss" if multi else "binary_logloss"

    def objective(trial: optuna.Trial) -> float:
        params = {d.name: d.suggest(trial) for d in dims}
        lgb_params = {
            "objective": "multiclass" if multi else "binary",
            "metric": metric,
            "verbosity": -1,
            "seed": seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": n_jobs,
            **params,
        }
        if multi:
            lgb_params["num_class"] = data.n_classes
        evals: dict = {}

        def report(env: lgb.callback.CallbackEnv) -> None:
            if pruning and env.iteration % 10 == 9:
                value = env.evaluation_result_list[0][2]
                trial.report(value, env.iteration)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at iteration {env.iteration + 1}")

        booster = lgb.train(
            lgb_params,
            data.train,
            num_boost_round=n_estimators,
            valid_sets=[data.valid],
            callbacks=[
                lgb.early_stopping(early_stopping_rounds, verbose=False),
                lgb.record_evaluation(evals),
                report,
            ],
        )
        best = booster.best_iteration or n_estimators
        trial.set_user_attr("best_iteration", int(best))
        return float(evals["valid_0"][metric][best - 1])

    return objective


def study_name(base: str, data_digest: str, space: Mapping[str, Any], seed: int) -> str:
    """A study per (data version, search space, seed): new data never resumes an old study."""
    h = hashlib.sha1(
        json.dumps({"d": data_digest, "s": space, "seed": seed}, sort_keys=True).encode()
    ).hexdigest()
    return f"{base}-{h[:10]}"


def open_study(
    name: str, storage: str | optuna.storages.BaseStorage, *, seed: int | None, pruning: bool
) -> optuna.Study:
    """Create or load a study with the tune stage's sampler (TPE) and pruner (median) settings."""
    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20)
        if pruning
        else optuna.pruners.NopPruner(),
    )


def make_study(name: str, storage: str, seed: int, pruning: bool) -> optuna.Study:
    """Create or resume a study on an RDB URL, with a heartbeat so dead workers' trials are retried."""
    with warnings.catch_warnings():  # the heartbeat retry callback is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(
            storage,
            heartbeat_interval=30,
            grace_period=120,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
        )
    return open_study(name, rdb, seed=seed, pruning=pruning)


@dataclass(frozen=True)
class Search:
    """What every process of one tuning study shares: the study's name and its objective."""

    study: str
    objective: Callable[[optuna.Trial], float]


def search_for(train: TrainingRows, classes: list[str], p: TuneParams, n_jobs: int | None = None) -> Search:
    """The tune stage's search on these training rows (the tune stage and every tune worker call this).

    Args:
        train: :func:`labelcycle.quality.data.training_rows` of the curated training sample.
        classes: the label set.
        p: params ``tune``.
        n_jobs: LightGBM threads per trial (default ``tune.n_jobs``).
    """
    dims = parse_space(p.search_space)
    data = prepare_tuning_data(train.items, train.labels, classes, p.valid_fraction, p.seed)
    objective = make_objective(
        data,
        dims,
        n_estimators=p.n_estimators,
        early_stopping_rounds=p.early_stopping_rounds,
        n_jobs=p.n_jobs if n_jobs is None else n_jobs,
        seed=p.seed,
        pruning=p.pruning,
    )
    return Search(study_name(p.study, train.digest(), p.search_space, p.seed), objective)
