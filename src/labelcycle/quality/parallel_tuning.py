"""Parallel Optuna tuning of the quality model: worker processes sharing one study in an RDB.

Each worker runs :func:`run_worker` against the same ``storage`` URL (PostgreSQL for a team, SQLite for
one machine) and study name; Optuna hands out trials, TPE learns from every worker's results. A worker
that is killed leaves its trial RUNNING only until its heartbeat goes stale: the next trial any other
worker starts marks it FAIL, and Optuna's retry callback (``RetryHeartbeatStaleTrialCallback``, called
``RetryFailedTrialCallback`` before Optuna 5) enqueues it again, so the study goes on.

The search space and objective here are the parallel layer's own until
``labelcycle.quality.tuning`` (the ``tune`` stage) provides them; then :func:`objective_factory` should
delegate to it.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from labelcycle.quality.model import train

#: default heartbeat: a killed worker's trial is retried after about heartbeat + grace seconds
HEARTBEAT_S = 10
GRACE_S = 30


def suggest_params(trial: Any) -> dict[str, Any]:
    """The LightGBM search space (TPE-friendly: log scales where the effect is multiplicative)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
    }


def objective_factory(
    items: pd.DataFrame,
    labels: pd.Series,
    classes: list[str] | tuple[str, ...],
    *,
    n_estimators: int,
    early_stopping_rounds: int,
    valid_fraction: float,
    seed: int,
    num_threads: int = 1,
) -> Callable[[Any], float]:
    """An objective: train with the trial's params, return the validation log loss (to minimise).

    ``items`` must already exclude the gold eval items; the validation rows are carved from them.
    """

    def objective(trial: Any) -> float:
        params = {**suggest_params(trial), "n_estimators": n_estimators, "num_threads": num_threads}
        result = train(items, labels, classes, params=params, valid_fraction=valid_fraction,
                       early_stopping_rounds=early_stopping_rounds, seed=seed)
        trial.set_user_attr("best_iteration", result.best_iteration)
        loss = next((v for k, v in result.valid_metrics.items() if k.endswith("logloss")), None)
        if loss is None:
            raise ValueError("no validation log loss; set train_quality.valid_fraction > 0 to tune")
        return float(loss)

    return objective


def make_storage(url: str, heartbeat_interval: int = HEARTBEAT_S, grace_period: int = GRACE_S,
                 max_retry: int = 3) -> Any:
    """Optuna RDB storage with heartbeats and automatic retry of trials whose worker died."""
    import optuna
    from optuna import storages

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine_kwargs = {"pool_pre_ping": True} if not url.startswith("sqlite") else {"connect_args": {"timeout": 60}}
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 5 renamed the callback
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        retry = {"heartbeat_stale_trial_callback": callback}
    else:
        retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=max_retry)}
    for attempt in range(5):
        try:
            return storages.RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                       engine_kwargs=engine_kwargs, **retry)
        except Exception as exc:
            # workers starting together race to create Optuna's tables; the loser finds them next time
            if attempt == 4 or "already exists" not in str(exc) and "duplicate key" not in str(exc):
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def run_worker(
    study_name: str,
    storage: Any,
    objective: Callable[[Any], float],
    *,
    n_trials: int | None,
    total_trials: int | None = None,
    seed: int | None = None,
) -> Any:
    """Load (or create) the study and run trials until ``n_trials`` here or ``total_trials`` in all.

    Returns the study.
    """
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize",
                                sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)
    callbacks = []
    if total_trials is not None:
        done = (TrialState.COMPLETE, TrialState.PRUNED)
        if len(study.get_trials(deepcopy=False, states=done)) >= total_trials:
            return study
        callbacks.append(optuna.study.MaxTrialsCallback(total_trials, states=done))
    study.optimize(objective, n_trials=n_trials, callbacks=callbacks, gc_after_trial=True)
    return study


def dvc_set_args(best_params: dict[str, Any], section: str = "train_quality") -> str:
    """``-S section.key=value ...`` to run the pipeline with the study's best params."""
    return " ".join(f"-S {section}.{k}={v}" for k, v in sorted(best_params.items()))
