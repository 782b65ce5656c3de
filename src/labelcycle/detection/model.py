"""The annotation-error model: LightGBM on leakage-free features, P(annotation is wrong).

Targets:

* **gold**: on audited items, an annotation is wrong when it differs from the gold label. Only the gold
  passed in is used; the caller passes the gold *training* split and the eval items to exclude, and
  :func:`gold_targets` drops excluded items again so that the frozen eval split can never become a target.
* **confident consensus** (optional, weighted lower): on items without gold, an annotation is wrong when
  it differs from a very confident leave-one-out consensus of the *other* annotations.

Scores of the annotations that were training targets are out-of-fold (the error model is cross-fitted
over gold items), so they are honest and give the held-out metrics.

Without gold, :func:`detect_label_errors` falls back to an unsupervised score, one minus the cross-fitted
posterior that the given label is right, and says so in :attr:`DetectionResult.message`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.detection.features import (
    CATEGORICAL_FEATURES,
    annotation_context,
    feature_names,
    features_from_context,
    item_folds,
)
from labelcycle.errors import NotFittedError, SchemaError
from labelcycle.params import ErrorModelParams, FeaturesParams

SCORE = "label_error_score"
ISSUE = "is_label_error_issue"
OUTPUT_COLUMNS = [schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL, SCORE, ISSUE]
MODEL_FILE = "model.txt"
META_FILE = "meta.json"
GOLD_FOLD_SALT = "labelcycle-error-model-folds"


def gold_targets(
    annotations: pd.DataFrame, gold: pd.DataFrame, exclude_items: pd.Series | None = None
) -> pd.Series:
    """Per annotation: 1.0 when it differs from gold, 0.0 when it agrees, NaN off gold or on excluded items.

    Args:
        annotations: ``item_id, label``.
        gold: ``item_id, label`` (the gold *training* split).
        exclude_items: item ids that must never be targets (the frozen eval split).
    """
    g = gold.drop_duplicates(schema.ITEM_ID).set_index(schema.ITEM_ID)[schema.LABEL].astype(str)
    if exclude_items is not None:
        g = g[~g.index.isin(set(pd.Series(exclude_items).astype(str)))]
    ref = annotations[schema.ITEM_ID].astype(str).map(g)
    target = (annotations[schema.LABEL].astype(str) != ref).astype(np.float64)
    return target.where(ref.notna())


def consensus_targets(
    context: pd.DataFrame, given: pd.Series, classes: tuple[str, ...], threshold: float
) -> pd.Series:
    """1.0/0.0 where the other annotations' posterior is at least ``threshold`` (and >= 2 others), else NaN."""
    post = context[[f"others_post__{c}" for c in classes]].to_numpy()
    top = np.asarray(classes, dtype=object)[post.argmax(axis=1)]
    sure = (post.max(axis=1) >= threshold) & (context["n_others"].to_numpy() >= 2)
    target = (np.asarray(given, dtype=object) != top).astype(np.float64)
    return pd.Series(np.where(sure, target, np.nan), index=context.index)


def _prepare(features: pd.DataFrame, categories: dict[str, list[str]]) -> pd.DataFrame:
    X = features.copy()
    for col in CATEGORICAL_FEATURES:
        values = X[col].astype(object)
        X[col] = pd.Categorical(values.where(values.notna(), None), categories=categories[col])
    return X


def _margin(features: pd.DataFrame) -> np.ndarray:
    """Boosting starts from the unsupervised score (log-odds of 1 - full_post_given) and learns corrections."""
    p = np.clip(1.0 - features["full_post_given"].to_numpy(dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1.0 - p))


@dataclass
class ErrorModel:
    """A trained booster plus the feature list and categorical levels it needs."""

    booster: lgb.Booster | None = None
    columns: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(
        cls, features: pd.DataFrame, target: np.ndarray, weight: np.ndarray, params: ErrorModelParams
    ) -> ErrorModel:
        columns = list(features.columns)
        categories = {
            c: sorted({str(v) for v in features[c].dropna().unique()}) for c in CATEGORICAL_FEATURES
        }
        X = _prepare(features, categories)
        data = lgb.Dataset(
            X,
            target,
            weight=weight,
            init_score=_margin(features),
            categorical_feature=list(CATEGORICAL_FEATURES),
            free_raw_data=False,
        )
        booster = lgb.train(params.lgb_params(), data, num_boost_round=params.n_estimators)
        return cls(booster, columns, categories)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        if self.booster is None:
            raise NotFittedError("the error model is not trained; run `dvc repro train_error_model`")
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise SchemaError(f"features lack the column(s) {missing} the error model was trained with")
        raw = self.booster.predict(_prepare(features[self.columns], self.categories), raw_score=True)
        return 1.0 / (1.0 + np.exp(-(np.asarray(raw, dtype=np.float64) + _margin(features))))

    def importance(self) -> pd.Series:
        if self.booster is None:
            return pd.Series(dtype=float)
        gain = self.booster.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.booster.feature_name(), name="gain").sort_values(ascending=False)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.booster is not None:
            self.booster.save_model(str(folder / MODEL_FILE))
        (folder / META_FILE).write_text(
            json.dumps({"columns": self.columns, "categories": self.categories}, indent=2) + "\n"
        )

    @classmethod
    def load(cls, folder: Path) -> ErrorModel:
        folder = Path(folder)
        if not (folder / META_FILE).exists():
            raise NotFittedError(f"{folder}: no error model here; run `dvc repro train_error_model`")
        meta = json.loads((folder / META_FILE).read_text())
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE)) if (folder / MODEL_FILE).exists() else None
        return cls(booster, meta["columns"], meta["categories"])


@dataclass
class DetectionResult:
    """Scores (the output contract) and what produced them.

    Attributes:
        scores: ``item_id, annotator_id, label, label_error_score, is_label_error_issue``, one row per
            annotation, in the input order.
        features: the model features (no ids), same index as ``scores``.
        context: the leakage-free context the features were read from.
        supervised: whether a gold-trained error model made the scores.
        message: one sentence on how the scores were made (says so when it fell back to unsupervised).
        metrics: held-out (out-of-fold) metrics on gold targets; empty when unsupervised.
        model: the error model trained on every target (None when unsupervised).
        targets: per annotation ``target``, ``weight``, ``source`` (gold/consensus) for the training rows.
    """

    scores: pd.DataFrame
    features: pd.DataFrame
    context: pd.DataFrame
    supervised: bool
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    model: ErrorModel | None = None
    targets: pd.DataFrame | None = None


def unsupervised_score(context: pd.DataFrame, given: pd.Series, classes: tuple[str, ...]) -> np.ndarray:
    """1 - the cross-fitted posterior that the given label is the true class."""
    feats = features_from_context(context, given, classes)
    return 1.0 - feats["full_post_given"].to_numpy(dtype=np.float64)


def held_out_metrics(target: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """Average precision, ROC-AUC, precision/recall at the threshold, base rate."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    out = {"n": float(len(target)), "base_rate": float(np.mean(target)) if len(target) else float("nan")}
    if len(set(target.tolist())) == 2:
        out["average_precision"] = float(average_precision_score(target, score))
        out["roc_auc"] = float(roc_auc_score(target, score))
    flag = score >= threshold
    out["precision_at_threshold"] = float(target[flag].mean()) if flag.any() else float("nan")
    out["recall_at_threshold"] = float(flag[target == 1].mean()) if (target == 1).any() else float("nan")
    return out


def detect_label_errors(
    annotations: pd.DataFrame,
    classes: tuple[str, ...] | list[str],
    items: pd.DataFrame | None = None,
    gold: pd.DataFrame | None = None,
    *,
    exclude_items: pd.Series | None = None,
    params: ErrorModelParams | None = None,
    item_features: FeaturesParams | None = None,
) -> DetectionResult:
    """Score every annotation with the probability that it is wrong.

    Args:
        annotations: ``item_id, annotator_id, label`` (+ optional behaviour columns).
        classes: the label set.
        items: item features for the cross-fitted quality-model features, or None.
        gold: gold *training* labels (``item_id, label``) for the targets, or None (unsupervised).
        exclude_items: item ids never to use as targets (the frozen eval split).
        params: model settings.
        item_features: params ``features``: how the cross-fitted quality model reads the items (column
            roles, TF-IDF settings); None: roles inferred.
    """
    params = params or ErrorModelParams()
    classes = tuple(str(c) for c in classes)
    given = annotations[schema.LABEL].astype(str)
    context = annotation_context(annotations, classes, items, params.features, item_features)
    feats = features_from_context(context, given, classes)[feature_names(classes)]
    base = pd.DataFrame(
        {
            schema.ITEM_ID: annotations[schema.ITEM_ID].astype(str).to_numpy(),
            schema.ANNOTATOR_ID: annotations[schema.ANNOTATOR_ID].astype(str).to_numpy(),
            schema.LABEL: given.to_numpy(),
        },
        index=annotations.index,
    )
    fallback = unsupervised_score(context, given, classes)

    tg = gold_targets(annotations, gold, exclude_items) if gold is not None and len(gold) else None
    n_gold = int(tg.notna().sum()) if tg is not None else 0
    if tg is None or n_gold < params.min_gold_targets or tg.dropna().nunique() < 2:
        why = (
            "no gold labels were given"
            if tg is None
            else f"only {n_gold} annotations on gold items"
            if n_gold < params.min_gold_targets
            else "the gold annotations are all right (or all wrong)"
        )
        base[SCORE] = fallback
        base[ISSUE] = base[SCORE] >= params.threshold
        msg = (
            f"unsupervised scores ({why}): label_error_score = 1 - the cross-fitted posterior of the given "
            "label; give gold labels (--gold) for the supervised error model"
        )
        return DetectionResult(base[OUTPUT_COLUMNS], feats, context, False, msg)

    target = tg.copy()
    weight = pd.Series(np.where(tg.notna(), 1.0, 0.0), index=tg.index)
    source = pd.Series(np.where(tg.notna(), "gold", ""), index=tg.index, dtype=object)
    if params.consensus_weight > 0:
        gold_items = set(gold[schema.ITEM_ID].astype(str))
        ct = consensus_targets(context, given, classes, params.consensus_threshold)
        ct[annotations[schema.ITEM_ID].astype(str).isin(gold_items).to_numpy()] = np.nan
        if exclude_items is not None:
            ct[
                annotations[schema.ITEM_ID]
                .astype(str)
                .isin(set(pd.Series(exclude_items).astype(str)))
                .to_numpy()
            ] = np.nan
        use = ct.notna() & target.isna()
        target[use] = ct[use]
        weight[use] = params.consensus_weight
        source[use] = "consensus"
    rows = target.notna().to_numpy()
    is_gold = (source == "gold").to_numpy()

    # out-of-fold scores for the gold rows: folds over gold items
    gfold = item_folds(base[schema.ITEM_ID].to_numpy(), params.n_folds, GOLD_FOLD_SALT)
    score = np.full(len(base), np.nan)
    y = target.to_numpy()
    w = weight.to_numpy()
    for f in range(params.n_folds):
        test = is_gold & (gfold == f)
        if not test.any():
            continue
        train = rows & ~((gfold == f) & is_gold)
        if len(set(y[train & is_gold].tolist())) < 2:
            continue
        m = ErrorModel.fit(feats[train], y[train], w[train], params)
        score[test] = m.predict(feats[test])
    model = ErrorModel.fit(feats[rows], y[rows], w[rows], params)
    rest = np.isnan(score)
    if rest.any():
        score[rest] = model.predict(feats[rest])
    base[SCORE] = score
    base[ISSUE] = base[SCORE] >= params.threshold

    yt = y[is_gold]
    metrics = {
        f"error_model.{k}": v for k, v in held_out_metrics(yt, score[is_gold], params.threshold).items()
    }
    metrics.update(
        {
            f"unsupervised.{k}": v
            for k, v in held_out_metrics(yt, fallback[is_gold], params.threshold).items()
            if k in ("average_precision", "roc_auc")
        }
    )
    targets = pd.DataFrame({"target": target, "weight": weight, "source": source}, index=annotations.index)[
        rows
    ]
    msg = (
        f"supervised error model: trained on {int(is_gold.sum())} annotations on gold items"
        + (
            f" and {int((source == 'consensus').sum())} confident-consensus targets"
            if params.consensus_weight > 0
            else ""
        )
        + "; gold annotations scored out-of-fold"
    )
    return DetectionResult(base[OUTPUT_COLUMNS], feats, context, True, msg, metrics, model, targets)
