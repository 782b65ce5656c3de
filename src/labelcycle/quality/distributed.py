"""The quality classifier trained on a Dask cluster (``lightgbm.dask``), same result as :func:`train`.

Same features, targets, validation split and LightGBM parameters as the local trainer
(:func:`labelcycle.quality.model.prepare_training`); the result is a :class:`TrainResult` whose
:class:`QualityModel` saves and predicts exactly like a locally trained one. ``lightgbm.dask`` has no
early-stopping callback, so all ``n_estimators`` rounds are trained with the validation rows as an eval
set and the best iteration is chosen afterwards by the same rule as LightGBM's ``early_stopping``
(first round after which ``early_stopping_rounds`` rounds bring no improvement); the booster's
``best_iteration`` is set to it, so saving and predicting use that iteration, as locally.

Items with text or embedding columns: the feature pipeline is fitted on the client (on all training
items, as locally) and the resulting CSR matrix is sent to the workers as a Dask array of CSR row blocks,
with the categorical columns declared by index; the vocabulary never leaves the client's model folder.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from labelcycle.dask_cluster import dask_client as cluster_client
from labelcycle.features.pipeline import split_tuned
from labelcycle.quality.model import QualityModel, TrainResult, lightgbm_params, prepare_training, train


@contextmanager
def dask_client(address: str | None, n_workers: int = 1, threads_per_worker: int = 1) -> Iterator[Any]:
    """A client for ``train_quality.dask`` (:func:`labelcycle.dask_cluster.dask_client`)."""
    with cluster_client(address, "train_quality", n_workers, threads_per_worker) as client:
        yield client


def best_iteration(history: list[float], patience: int) -> int:
    """1-based best round under LightGBM's early-stopping rule for a metric to minimise."""
    best, best_at = float("inf"), 0
    for i, value in enumerate(history):
        if value < best:
            best, best_at = value, i
        elif i - best_at >= patience:
            break
    return best_at + 1


def train_on_dask(
    client: Any,
    items: pd.DataFrame,
    labels: pd.Series,
    classes: tuple[str, ...] | list[str],
    *,
    npartitions: int | None = None,
    **fit: Any,
) -> TrainResult:
    """Train the quality model with ``lightgbm.dask.DaskLGBMClassifier`` on ``client``'s cluster.

    Args: as :func:`labelcycle.quality.model.train` (``fit`` holds its keyword options, with its defaults),
    plus the Dask ``client`` and the number of partitions of the training data (default: one per worker).
    """
    bound = inspect.signature(train).bind(items, labels, classes, **fit)
    bound.apply_defaults()
    opts = bound.arguments
    params, features, weights = opts["params"], opts["features"], opts["weights"]
    valid_fraction, early_stopping_rounds, seed = (
        opts["valid_fraction"],
        opts["early_stopping_rounds"],
        opts["seed"],
    )
    import dask.array as da
    import dask.dataframe as dd
    from lightgbm.dask import DaskLGBMClassifier

    params, features = split_tuned(params, features)
    data = prepare_training(
        items, labels, classes, features=features, weights=weights, valid_fraction=valid_fraction, seed=seed
    )
    matrix = data.pipeline.is_matrix
    valid = data.valid
    n_rounds = int(params.get("n_estimators", 500))
    lgb_params = lightgbm_params(data.trained_classes, params, seed)
    lgb_params.pop("num_class", None)  # the sklearn wrapper derives it from the targets
    for threads in ("num_threads", "n_jobs"):  # each Dask worker trains with its own threads
        lgb_params.pop(threads, None)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = npartitions or n_workers

    def base(mask: np.ndarray, chunks: tuple) -> Any:
        """The rows' linear text base (LightGBM's init_score) blocked as the targets are (None: none)."""
        if data.init_score is None:
            return None
        init = data.init_score[mask]
        return da.from_array(init, chunks=chunks if init.ndim == 1 else (*chunks, init.shape[1]))

    def frame(mask: np.ndarray) -> tuple[Any, Any, Any, Any]:
        n_rows = int(mask.sum())
        n = max(1, min(parts, n_rows))
        if matrix:  # a Dask array of CSR row blocks, and the targets blocked alike
            X = data.X[mask]
            step = -(-n_rows // n)
            chunks = (tuple(min(step, n_rows - i) for i in range(0, n_rows, step)),)
            blocks = [
                da.from_array(X[i : i + step], chunks=X[i : i + step].shape, asarray=False)
                for i in range(0, n_rows, step)
            ]
            return (
                da.concatenate(blocks, axis=0),
                da.from_array(data.y[mask], chunks=chunks),
                None if data.weights is None else da.from_array(data.weights[mask], chunks=chunks),
                base(mask, chunks),
            )
        X = data.X[mask].reset_index(drop=True)
        y = pd.Series(data.y[mask], name="y")
        w = None if data.weights is None else pd.Series(data.weights[mask], name="w")
        return (
            dd.from_pandas(X, npartitions=n, sort=False),
            dd.from_pandas(y, npartitions=n, sort=False),
            None if w is None else dd.from_pandas(w, npartitions=n, sort=False),
            None,  # without text columns there is no linear base
        )

    X_train, y_train, w_train, init_train = frame(~valid)
    fit_kwargs: dict[str, Any] = {"sample_weight": w_train}
    if init_train is not None:
        fit_kwargs["init_score"] = init_train
    if matrix:
        fit_kwargs.update(
            feature_name=data.pipeline.lightgbm_feature_names,
            categorical_feature=data.pipeline.categorical_indices,
        )
    if valid.any():
        X_valid, y_valid, w_valid, init_valid = frame(valid)
        if "eval_X" in inspect.signature(DaskLGBMClassifier.fit).parameters:  # lightgbm >= 4.7
            fit_kwargs.update(eval_X=(X_valid,), eval_y=(y_valid,), eval_names=["valid"])
        else:
            fit_kwargs.update(eval_set=[(X_valid, y_valid)], eval_names=["valid"])
        if w_valid is not None:
            fit_kwargs["eval_sample_weight"] = [w_valid]
        if init_valid is not None:
            fit_kwargs["eval_init_score"] = [init_valid]
    model = DaskLGBMClassifier(client=client, n_estimators=n_rounds, **lgb_params)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")  # workers own threads
        model.fit(X_train, y_train, **fit_kwargs)
    booster = model.booster_
    best = n_rounds
    valid_metrics: dict[str, float] = {}
    evals = getattr(model, "evals_result_", None) or {}
    if valid.any() and evals:
        history = next(iter(evals.values()))
        metric, values = next(iter(history.items()))
        best = best_iteration(list(values), early_stopping_rounds)
        for name, series in history.items():
            valid_metrics[f"valid_{name}"] = float(series[best - 1])
    booster.best_iteration = best
    quality = QualityModel(
        booster, data.pipeline, data.classes, data.trained_classes, data.init_score is not None
    )
    return TrainResult(quality, int(best), valid_metrics, int((~valid).sum()), int(valid.sum()))
