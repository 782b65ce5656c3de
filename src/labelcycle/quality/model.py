"""The quality classifier: LightGBM on item features, trained on curated labels.

Pure logic plus its own persistence (a LightGBM text model and the fitted feature pipeline as JSON in one
folder), so a trained model can be loaded without MLflow and scores raw items (text included);
:mod:`labelcycle.tracking.models` wraps the same folder as an MLflow pyfunc model. The item features are
:class:`labelcycle.features.FeaturePipeline`'s, fitted on the training items only. With text columns the
booster boosts from the pipeline's linear text base (:meth:`FeaturePipeline.init_score`): its raw score
is added to the base's log-probabilities, in training (``init_score``) and in prediction alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import sparse

from labelcycle import schema
from labelcycle.errors import NotFittedError, SchemaError
from labelcycle.features.pipeline import FeaturePipeline, split_tuned
from labelcycle.features.roles import infer_roles
from labelcycle.params import FeaturesParams

MODEL_FILE = "model.txt"
SPEC_FILE = "spec.json"
TEXT_FILE = "text_features.json"
FORMAT = 2


@dataclass
class QualityModel:
    """A trained booster with the fitted feature pipeline it needs."""

    booster: lgb.Booster
    pipeline: FeaturePipeline
    classes: tuple[str, ...]
    trained_classes: tuple[str, ...]
    boosted: bool = False  # the booster was trained from the pipeline's init_score (added back here)

    def predict_proba(self, items: pd.DataFrame) -> pd.DataFrame:
        """Items x classes probabilities over the full label set (classes unseen in training get 0)."""
        if self.booster is None:
            raise NotFittedError("the quality model is not trained")
        X = self.pipeline.transform(items)
        base = self.pipeline.init_score(X) if self.boosted else None
        if base is None:
            raw = self.booster.predict(X)
        else:
            raw = self.booster.predict(X, raw_score=True) + base
            raw = _softmax(raw) if raw.ndim == 2 else 1.0 / (1.0 + np.exp(-raw))
        raw = raw.reshape(X.shape[0], -1) if raw.ndim == 2 else np.column_stack([1 - raw, raw])
        out = pd.DataFrame(0.0, index=items.index, columns=list(self.classes))
        if len(self.trained_classes) == 1:
            out[self.trained_classes[0]] = 1.0
        else:
            out[list(self.trained_classes)] = raw
        return out

    def predict(self, items: pd.DataFrame) -> pd.DataFrame:
        """``item_id, label, proba_<class>...`` for each item."""
        proba = self.predict_proba(items)
        frame = pd.DataFrame({schema.ITEM_ID: items[schema.ITEM_ID].astype(str).to_numpy()})
        frame[schema.LABEL] = np.asarray(proba.columns, dtype=object)[proba.to_numpy().argmax(axis=1)]
        for cls in proba.columns:
            frame[schema.proba_column(cls)] = proba[cls].to_numpy()
        return frame

    def save(self, folder: Path) -> None:
        """The booster, the pipeline's spec (roles, categories) and, with text columns, its n-grams."""
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / MODEL_FILE))
        pipe = self.pipeline.to_dict()
        text = pipe.pop("text")
        roles = self.pipeline.roles_
        meta = {
            "format": FORMAT,
            "classes": list(self.classes),
            "trained_classes": list(self.trained_classes),
            "boosted_from_text_base": self.boosted,
            # the columns as models saved before text features name them
            "numeric": list(roles.numeric),
            "categorical": [[c, list(self.pipeline.categories_[c])] for c in roles.categorical],
            "pipeline": pipe,
        }
        (folder / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if text:
            (folder / TEXT_FILE).write_text(json.dumps(text))

    @classmethod
    def load(cls, folder: Path) -> QualityModel:
        folder = Path(folder)
        if not (folder / MODEL_FILE).exists():
            raise NotFittedError(
                f"{folder}: no trained quality model here ({MODEL_FILE} missing); run `dvc repro train_quality`"
            )
        meta = json.loads((folder / SPEC_FILE).read_text())
        if "pipeline" in meta:
            pipe = dict(meta["pipeline"])
            pipe["text"] = (
                json.loads((folder / TEXT_FILE).read_text()) if (folder / TEXT_FILE).exists() else []
            )
            pipeline = FeaturePipeline.from_dict(pipe)
        else:  # saved before text features: numeric and categorical columns only
            pipeline = FeaturePipeline.from_columns(
                meta["numeric"], {c: tuple(v) for c, v in meta["categorical"]}
            )
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return cls(
            booster,
            pipeline,
            tuple(meta["classes"]),
            tuple(meta["trained_classes"]),
            bool(meta.get("boosted_from_text_base", False)),
        )


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TrainResult:
    model: QualityModel
    best_iteration: int
    valid_metrics: dict[str, float]
    n_train: int
    n_valid: int


@dataclass(frozen=True)
class TrainingData:
    """Features, integer targets and the early-stopping split, shared by the local and Dask trainers."""

    pipeline: FeaturePipeline
    classes: tuple[str, ...]
    trained_classes: tuple[str, ...]
    X: pd.DataFrame | sparse.csr_matrix
    y: np.ndarray
    weights: np.ndarray | None
    valid: np.ndarray  # bool mask of the rows held out for early stopping
    init_score: np.ndarray | None = None  # the linear text base per row (None: boost from scratch)


def prepare_training(
    items: pd.DataFrame,
    labels: pd.Series,
    classes: tuple[str, ...] | list[str],
    *,
    features: FeaturesParams | None = None,
    weights: pd.Series | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
) -> TrainingData:
    """Features, label codes and a stratified, seeded validation mask (see :func:`train`).

    The feature pipeline is fitted on the training items (the caller has removed the eval split): with text
    columns on the rows outside the early-stopping mask only (n-grams selected by their labels, text scores
    out of fold), without them on all rows, as always.

    Raises:
        SchemaError: the labels hold fewer than two classes.
    """
    classes = tuple(str(c) for c in classes)
    y_text = labels.astype(str)
    trained = tuple(c for c in classes if (y_text == c).any())
    if len(trained) < 2:
        raise SchemaError(
            f"the curated labels hold a single class {trained}; the quality model needs two or more"
        )
    code = {c: i for i, c in enumerate(trained)}
    y = y_text.map(code).to_numpy()
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    valid = np.zeros(len(items), dtype=bool)
    if valid_fraction > 0 and len(items) >= 20:
        for k in range(len(trained)):
            idx = np.flatnonzero(y == k)
            n_val = int(round(valid_fraction * len(idx)))
            if len(idx) > 2 and n_val:
                valid[rng.choice(idx, size=n_val, replace=False)] = True
    pipeline = FeaturePipeline(features)
    if infer_roles(items, features).text:
        # text features are learnt from the rows outside the early-stopping mask (their text scores out of
        # fold); the held-out rows are featurised as new items are
        fit_part = pipeline.fit_transform(items[~valid].reset_index(drop=True), y[~valid])
        held_out = pipeline.transform(items[valid].reset_index(drop=True))
        order = np.argsort(np.r_[np.flatnonzero(~valid), np.flatnonzero(valid)], kind="stable")
        X = sparse.vstack([fit_part, held_out], format="csr")[order]
    else:
        X = pipeline.fit(items, y).transform(items)
    return TrainingData(pipeline, classes, trained, X, y, w, valid, pipeline.init_score(X))


def dataset(
    data: TrainingData, rows: np.ndarray, reference: lgb.Dataset | None = None, params: dict | None = None
) -> lgb.Dataset:
    """The LightGBM Dataset of some rows of ``data`` (categorical columns declared as the pipeline says)."""
    return lgb.Dataset(
        data.X[rows],
        data.y[rows],
        weight=None if data.weights is None else data.weights[rows],
        init_score=None if data.init_score is None else data.init_score[rows],
        reference=reference,
        free_raw_data=False,
        feature_name=data.pipeline.lightgbm_feature_names,
        categorical_feature=data.pipeline.categorical_indices,
        params=params,
    )


def lightgbm_params(trained: tuple[str, ...], params: dict, seed: int) -> dict:
    """LightGBM parameters for ``trained`` classes: objective, determinism, then the caller's params."""
    out = {
        "objective": "multiclass" if len(trained) > 2 else "binary",
        "verbosity": -1,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        **{k: v for k, v in params.items() if k != "n_estimators"},
    }
    if len(trained) > 2:
        out["num_class"] = len(trained)
    return out


def train(
    items: pd.DataFrame,
    labels: pd.Series,
    classes: tuple[str, ...] | list[str],
    *,
    params: dict,
    features: FeaturesParams | None = None,
    weights: pd.Series | None = None,
    valid_fraction: float = 0.1,
    early_stopping_rounds: int = 30,
    seed: int = 0,
) -> TrainResult:
    """Train LightGBM on items (features) and their curated labels.

    The validation split for early stopping is carved from these training rows (stratified by label,
    seeded), never from the gold eval split, which the caller must have removed already.

    Args:
        items: items table (``item_id`` + features), one row per training item.
        labels: curated label per row of ``items`` (same index).
        classes: the full label set.
        params: LightGBM parameters (num_leaves, learning_rate, n_estimators, n_jobs, ...); tuned
            ``tfidf_<field>`` keys override ``features.tfidf``.
        features: params ``features`` (column roles, TF-IDF settings); None: roles inferred.
        weights: optional sample weights (e.g. label confidence).
        valid_fraction: share of rows held out for early stopping (0 disables early stopping).
        early_stopping_rounds: patience.
        seed: seed for the split and LightGBM.

    With text columns, once early stopping has settled the number of rounds, the model is refitted on
    every row (text features, linear base and trees; ``n_train`` then counts them all).
    """
    params, features = split_tuned(params, features)
    data = prepare_training(
        items, labels, classes, features=features, weights=weights, valid_fraction=valid_fraction, seed=seed
    )
    trained, valid = data.trained_classes, data.valid
    lgb_params = lightgbm_params(trained, params, seed)
    n_rounds = int(params.get("n_estimators", 500))
    train_set = dataset(data, ~valid)
    callbacks = []
    valid_sets = []
    if valid.any():
        valid_sets = [dataset(data, valid, reference=train_set)]
        callbacks.append(lgb.early_stopping(early_stopping_rounds, verbose=False))
    evals: dict = {}
    callbacks.append(lgb.record_evaluation(evals))
    booster = lgb.train(
        lgb_params, train_set, num_boost_round=n_rounds, valid_sets=valid_sets, callbacks=callbacks
    )
    best = booster.best_iteration or n_rounds
    valid_metrics = {}
    if evals:
        for metric, values in next(iter(evals.values())).items():
            valid_metrics[f"valid_{metric}"] = float(values[best - 1])
    model = QualityModel(booster, data.pipeline, data.classes, trained, data.init_score is not None)
    n_train = int((~valid).sum())
    if data.init_score is not None and valid.any():
        # a text model, its rounds settled on the held-out rows: the text features, the linear base and
        # the trees are refitted on every training row (the base learns from 10% more items)
        full = prepare_training(
            items, labels, classes, features=features, weights=weights, valid_fraction=0.0, seed=seed
        )
        booster = lgb.train(lgb_params, dataset(full, np.ones(len(full.y), dtype=bool)), num_boost_round=best)
        model = QualityModel(booster, full.pipeline, full.classes, full.trained_classes, True)
        n_train = len(full.y)
    return TrainResult(model, int(best), valid_metrics, n_train, int(valid.sum()))
