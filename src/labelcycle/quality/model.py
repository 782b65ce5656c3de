"""The quality classifier: LightGBM on item features, trained on curated labels.

Pure logic plus its own persistence (a LightGBM text model and a JSON feature spec in one folder), so
a trained model can be loaded without MLflow; :mod:`labelcycle.tracking.models` wraps the same folder as
an MLflow pyfunc model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.errors import NotFittedError, SchemaError

MODEL_FILE = "model.txt"
SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class FeatureSpec:
    """Which item columns are features and how: numeric, or categorical with a fixed category list."""

    numeric: tuple[str, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]
    classes: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *(c for c, _ in self.categorical)]

    @classmethod
    def infer(cls, items: pd.DataFrame, classes: tuple[str, ...] | list[str]) -> FeatureSpec:
        numeric, categorical = [], []
        for col in schema.feature_columns(list(items.columns)):
            values = items[col]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                numeric.append(col)
            else:
                cats = sorted({str(v) for v in values.dropna().unique()})
                categorical.append((col, tuple(cats)))
        return cls(tuple(numeric), tuple(categorical), tuple(str(c) for c in classes))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        d = json.loads(text)
        return cls(
            tuple(d["numeric"]), tuple((c, tuple(v)) for c, v in d["categorical"]), tuple(d["classes"])
        )


def prepare_features(items: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The model's feature frame: numeric columns as float, categoricals with the training categories.

    Raises:
        SchemaError: a feature column the model was trained with is missing.
    """
    missing = [c for c in spec.columns if c not in items.columns]
    if missing:
        raise SchemaError(f"items lack the feature column(s) {missing} the model was trained with")
    out = {}
    for col in spec.numeric:
        out[col] = pd.to_numeric(items[col], errors="coerce").astype("float64")
    for col, cats in spec.categorical:
        values = items[col].astype(object).where(items[col].notna(), None)
        out[col] = pd.Categorical(values.map(lambda v: None if v is None else str(v)), categories=list(cats))
    return pd.DataFrame(out, index=items.index)


@dataclass
class QualityModel:
    """A trained booster with the feature spec it needs."""

    booster: lgb.Booster
    spec: FeatureSpec
    trained_classes: tuple[str, ...]

    def predict_proba(self, items: pd.DataFrame) -> pd.DataFrame:
        """Items x classes probabilities over the full label set (classes unseen in training get 0)."""
        if self.booster is None:
            raise NotFittedError("the quality model is not trained")
        X = prepare_features(items, self.spec)
        raw = self.booster.predict(X)
        raw = raw.reshape(len(X), -1) if raw.ndim == 2 else np.column_stack([1 - raw, raw])
        out = pd.DataFrame(0.0, index=items.index, columns=list(self.spec.classes))
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
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(folder / MODEL_FILE))
        meta = json.loads(self.spec.to_json())
        meta["trained_classes"] = list(self.trained_classes)
        (folder / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> QualityModel:
        folder = Path(folder)
        if not (folder / MODEL_FILE).exists():
            raise NotFittedError(
                f"{folder}: no trained quality model here ({MODEL_FILE} missing); run `dvc repro train_quality`"
            )
        meta = json.loads((folder / SPEC_FILE).read_text())
        spec = FeatureSpec.from_json(json.dumps({k: meta[k] for k in ("numeric", "categorical", "classes")}))
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return cls(booster=booster, spec=spec, trained_classes=tuple(meta["trained_classes"]))


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

    spec: FeatureSpec
    trained_classes: tuple[str, ...]
    X: pd.DataFrame
    y: np.ndarray
    weights: np.ndarray | None
    valid: np.ndarray  # bool mask of the rows held out for early stopping


def prepare_training(
    items: pd.DataFrame,
    labels: pd.Series,
    classes: tuple[str, ...] | list[str],
    *,
    weights: pd.Series | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
) -> TrainingData:
    """Feature frame, label codes and a stratified, seeded validation mask (see :func:`train`).

    Raises:
        SchemaError: the labels hold fewer than two classes.
    """
    classes = tuple(str(c) for c in classes)
    spec = FeatureSpec.infer(items, classes)
    y_text = labels.astype(str)
    trained = tuple(c for c in classes if (y_text == c).any())
    if len(trained) < 2:
        raise SchemaError(
            f"the curated labels hold a single class {trained}; the quality model needs two or more"
        )
    code = {c: i for i, c in enumerate(trained)}
    y = y_text.map(code).to_numpy()
    X = prepare_features(items, spec)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    rng = np.random.default_rng(seed)
    valid = np.zeros(len(X), dtype=bool)
    if valid_fraction > 0 and len(X) >= 20:
        for k in range(len(trained)):
            idx = np.flatnonzero(y == k)
            n_val = int(round(valid_fraction * len(idx)))
            if len(idx) > 2 and n_val:
                valid[rng.choice(idx, size=n_val, replace=False)] = True
    return TrainingData(spec, trained, X, y, w, valid)


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
        params: LightGBM parameters (num_leaves, learning_rate, n_estimators, n_jobs, ...).
        weights: optional sample weights (e.g. label confidence).
        valid_fraction: share of rows held out for early stopping (0 disables early stopping).
        early_stopping_rounds: patience.
        seed: seed for the split and LightGBM.
    """
    data = prepare_training(items, labels, classes, weights=weights, valid_fraction=valid_fraction, seed=seed)
    spec, trained, X, y, w, valid = data.spec, data.trained_classes, data.X, data.y, data.weights, data.valid
    lgb_params = lightgbm_params(trained, params, seed)
    n_rounds = int(params.get("n_estimators", 500))
    train_set = lgb.Dataset(
        X[~valid], y[~valid], weight=None if w is None else w[~valid], free_raw_data=False
    )
    callbacks = []
    valid_sets = []
    if valid.any():
        valid_set = lgb.Dataset(
            X[valid], y[valid], weight=None if w is None else w[valid], reference=train_set
        )
        valid_sets = [valid_set]
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
    model = QualityModel(booster=booster, spec=spec, trained_classes=trained)
    return TrainResult(model, int(best), valid_metrics, int((~valid).sum()), int(valid.sum()))
