"""Parallel Optuna tuning of the quality model: worker processes sharing the ``tune`` stage's study.

The search space, data preparation and objective (with pruning) are :mod:`labelcycle.quality.tuning`'s;
this module adds what several processes need to share one study in an RDB (PostgreSQL for a team,
SQLite on one machine): storage with a configurable heartbeat, race-safe creation, and a trial budget
over all workers. A worker that is killed leaves its trial RUNNING only until its heartbeat goes stale:
the next trial any other worker starts marks it FAIL, and Optuna's retry callback
(``RetryHeartbeatStaleTrialCallback``; ``RetryFailedTrialCallback`` before Optuna 5) enqueues it again,
so the study goes on.

By default workers join the very study the ``tune`` stage would open for the current data
(:func:`labelcycle.quality.tuning.study_name`), so a later ``dvc repro`` finds the trials done, writes
the best params to ``reports/best_params.json`` and ``train_quality`` trains with them.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

#: default heartbeat: a killed worker's trial is retried after about heartbeat + grace seconds
HEARTBEAT_S = 30
GRACE_S = 120


def make_storage(
    url: str, heartbeat_interval: int = HEARTBEAT_S, grace_period: int = GRACE_S, max_retry: int = 2
) -> Any:
    """Optuna RDB storage with heartbeats and automatic retry of trials whose worker died."""
    import optuna
    from optuna import storages

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine_kwargs = (
        {"pool_pre_ping": True} if not url.startswith("sqlite") else {"connect_args": {"timeout": 60}}
    )
    with warnings.catch_warnings():  # the retry callbacks are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 5 renamed the callback
            retry = {
                "heartbeat_stale_trial_callback": storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=max_retry
                )
            }
        else:
            retry = {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=max_retry)}
        for attempt in range(5):
            try:
                return storages.RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    engine_kwargs=engine_kwargs,
                    **retry,
                )
            except Exception as exc:
                # workers starting together race to create Optuna's tables; the loser finds them next time
                if attempt == 4 or ("already exists" not in str(exc) and "duplicate key" not in str(exc)):
                    raise
                time.sleep(1 + attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def run_worker(
    study: Any, objective: Callable[[Any], float], *, n_trials: int | None, total_trials: int | None = None
) -> Any:
    """Run trials until ``n_trials`` here or ``total_trials`` finished in the study (all workers)."""
    import optuna
    from optuna.trial import TrialState

    callbacks = []
    if total_trials is not None:
        done = (TrialState.COMPLETE, TrialState.PRUNED)
        if len(study.get_trials(deepcopy=False, states=done)) >= total_trials:
            return study
        callbacks.append(optuna.study.MaxTrialsCallback(total_trials, states=done))
    study.optimize(objective, n_trials=n_trials, callbacks=callbacks, gc_after_trial=True)
    return study


def dvc_set_args(best_params: dict[str, Any], section: str = "train_quality") -> str:
    """``-S section.key=value ...`` to run the pipeline with given params."""
    return " ".join(f"-S {section}.{k}={v}" for k, v in sorted(best_params.items()))
