"""Optuna search for the quality classifier's LightGBM parameters (and its text settings).

The objective trains on the curated training items and scores multi-class log loss on a validation
split carved from those same items (never the gold eval split). Trials are pruned on the validation
curve. The search space comes from params (``tune.search_space``): ``name: [low, high, kind]`` with kind
``float``, ``log`` (float, log scale), ``int`` or ``log_int``. When the items have text columns, the
TF-IDF settings of ``tune.text_search_space`` (keys of ``features.tfidf``) are searched too, as trial
params ``tfidf_<key>``; the feature pipeline is then fitted on the trial's training part only, once per
distinct text setting.
"""

from __future__ import annotations

import dataclasses
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
from scipy import sparse

from labelcycle.errors import ConfigError
from labelcycle.features.pipeline import TUNED_PREFIX, FeaturePipeline
from labelcycle.features.roles import infer_roles
from labelcycle.features.text import TextSearchCache, text_values, widest
from labelcycle.features.text_score import fit_text_score, fit_text_stack
from labelcycle.params import FeaturesParams, TfidfParams, TuneParams
from labelcycle.quality.data import TrainingRows

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


def parse_space(space: Mapping[str, Any], where: str = "tune.search_space") -> list[Dim]:
    """``{name: [low, high, kind]}`` -> dimensions, with clear errors for bad entries."""
    dims = []
    for name, spec in space.items():
        if not isinstance(spec, list | tuple) or len(spec) != 3 or spec[2] not in KINDS:
            raise ConfigError(
                f"params.yaml {where}.{name}: expected [low, high, kind] with kind in {KINDS}, got {spec!r}"
            )
        low, high, kind = spec
        if not float(low) < float(high) or (kind in ("log", "log_int") and float(low) <= 0):
            raise ConfigError(f"params.yaml {where}.{name}: need 0 < low < high for log scales, low < high")
        dims.append(Dim(str(name), float(low), float(high), str(kind)))
    return dims


def parse_text_space(space: Mapping[str, Any]) -> list[Dim]:
    """``tune.text_search_space`` -> dimensions named ``tfidf_<key>`` (keys must be features.tfidf fields)."""
    known = set(TfidfParams.__dataclass_fields__)
    unknown = sorted(set(space) - known)
    if unknown:
        raise ConfigError(
            f"params.yaml tune.text_search_space: unknown key(s) {unknown}; known: {sorted(known)}"
        )
    dims = parse_space(space, "tune.text_search_space")
    for d in dims:
        if d.kind not in ("int", "log_int"):
            raise ConfigError(
                f"params.yaml tune.text_search_space.{d.name}: text settings are whole numbers (int)"
            )
    return [Dim(f"{TUNED_PREFIX}{d.name}", d.low, d.high, d.kind) for d in dims]


def validation_mask(y: np.ndarray, n_classes: int, valid_fraction: float, seed: int) -> np.ndarray:
    """A stratified, seeded share of the rows held out to score trials."""
    rng = np.random.default_rng(seed)
    valid = np.zeros(len(y), dtype=bool)
    for k in range(n_classes):
        idx = np.flatnonzero(y == k)
        n_val = max(1, int(round(valid_fraction * len(idx)))) if len(idx) > 2 else 0
        if n_val:
            valid[rng.choice(idx, size=n_val, replace=False)] = True
    return valid


class TuningData:
    """Training and validation Datasets shared by every trial, built once per distinct text setting.

    Without text columns there is one pair, built up front (categories from all rows, as always). With
    text columns the feature pipeline is fitted on the training part only (never on the validation rows
    that score the trial): the other columns and the linear text scores once (at the configured
    ``features.tfidf``), the n-grams through a :class:`~labelcycle.features.text.TextSearchCache` (one
    pass over the texts for the whole search); the last few Dataset pairs are kept.
    """

    CACHE = 4

    def __init__(
        self,
        items: pd.DataFrame,
        y: np.ndarray,
        valid: np.ndarray,
        n_classes: int,
        features: FeaturesParams,
        text_space: Mapping[str, Any] | None = None,
    ) -> None:
        self.y, self.valid_rows, self.n_classes, self.features = y, valid, n_classes, features
        self.has_text = bool(infer_roles(items, features).text)
        self._cache: dict[tuple, tuple[lgb.Dataset, lgb.Dataset]] = {}
        if not self.has_text:
            pipe = FeaturePipeline(features).fit(items)
            self.train, self.valid = self._pair(
                pipe.transform(items[~valid]), pipe.transform(items[valid]), pipe
            )
            return
        train_items, valid_items = items[~valid].reset_index(drop=True), items[valid].reset_index(drop=True)
        self._pipe = FeaturePipeline(features).fit_columns(train_items)
        cap = features.tfidf.max_chars
        train_texts = {c: text_values(train_items, c, cap) for c in self._pipe.roles_.text}
        valid_texts = {c: text_values(valid_items, c, cap) for c in self._pipe.roles_.text}
        train_blocks, valid_blocks = [self._pipe.dense(train_items)], [self._pipe.dense(valid_items)]
        # the linear text scores and their stack (the base trials boost from, as train_quality's model
        # does) stay at the configured settings during the search (fitted once)
        oofs, valid_scores = [], []
        for col, texts in train_texts.items():
            score, oof = fit_text_score(col, texts, y[~valid], n_classes, features.tfidf)
            oofs.append(oof)
            valid_scores.append(score.scores(valid_texts[col]))
            train_blocks.append(sparse.csr_matrix(oof))
            valid_blocks.append(sparse.csr_matrix(valid_scores[-1]))
        stack = fit_text_stack(np.hstack(oofs), y[~valid], n_classes)
        self._init = (stack.init_score(np.hstack(oofs)), stack.init_score(np.hstack(valid_scores)))
        self._dense = (sparse.hstack(train_blocks, format="csr"), sparse.hstack(valid_blocks, format="csr"))
        self._text = TextSearchCache(
            train_texts, valid_texts, y[~valid], widest(features.tfidf, dict(text_space or {}))
        )

    def _pair(
        self, X_train: Any, X_valid: Any, pipe: FeaturePipeline, init: tuple | None = None
    ) -> tuple[lgb.Dataset, lgb.Dataset]:
        cats = pipe.categorical_indices
        init = init or (None, None)
        # trials vary min_child_samples on one shared Dataset: pre-filtering features by the first trial's
        # value would make LightGBM refuse smaller values later
        train = lgb.Dataset(
            X_train,
            self.y[~self.valid_rows],
            free_raw_data=False,
            categorical_feature=cats,
            init_score=init[0],
            params={"feature_pre_filter": False},
        )
        valid = lgb.Dataset(
            X_valid,
            self.y[self.valid_rows],
            reference=train,
            free_raw_data=False,
            categorical_feature=cats,
            init_score=init[1],
        )
        return train, valid

    def datasets(self, tfidf: Mapping[str, int]) -> tuple[lgb.Dataset, lgb.Dataset]:
        """Training and validation Datasets for these ``features.tfidf`` overrides (text columns only)."""
        key = tuple(sorted(tfidf.items()))
        if key not in self._cache:
            p = dataclasses.replace(self.features.tfidf, **tfidf)
            text_train, text_valid = self._text.blocks(p)
            pair = self._pair(
                sparse.hstack([self._dense[0], text_train], format="csr"),
                sparse.hstack([self._dense[1], text_valid], format="csr"),
                self._pipe,
                self._init,
            )
            while len(self._cache) >= self.CACHE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = pair
        return self._cache[key]


def prepare_tuning_data(
    items: pd.DataFrame,
    labels: pd.Series,
    classes: list[str],
    valid_fraction: float,
    seed: int,
    features: FeaturesParams | None = None,
    text_space: Mapping[str, Any] | None = None,
) -> TuningData:
    """The trials' shared data: features of ``items`` (roles from ``features``), codes, validation rows.

    ``text_space`` (``tune.text_search_space``) bounds the text settings trials may ask for.
    """
    trained = [c for c in classes if (labels.astype(str) == c).any()]
    y = labels.astype(str).map({c: i for i, c in enumerate(trained)}).to_numpy()
    valid = validation_mask(y, len(trained), valid_fraction, seed)
    return TuningData(
        items.reset_index(drop=True), y, valid, len(trained), features or FeaturesParams(), text_space
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
    text_dims: list[Dim] | None = None,
) -> Callable[[optuna.Trial], float]:
    """The objective: validation log loss (lower is better) at the best iteration.

    ``text_dims`` (``tfidf_<key>``) are searched only when the items have text columns.
    """
    multi = data.n_classes > 2
    metric = "multi_logloss" if multi else "binary_logloss"
    text_dims = text_dims if data.has_text else []

    def objective(trial: optuna.Trial) -> float:
        tfidf = {d.name[len(TUNED_PREFIX) :]: d.suggest(trial) for d in text_dims or []}
        params = {d.name: d.suggest(trial) for d in dims}
        train_set, valid_set = data.datasets(tfidf) if data.has_text else (data.train, data.valid)
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
            train_set,
            num_boost_round=n_estimators,
            valid_sets=[valid_set],
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


def search_for(
    train: TrainingRows,
    classes: list[str],
    p: TuneParams,
    n_jobs: int | None = None,
    features: FeaturesParams | None = None,
) -> Search:
    """The tune stage's search on these training rows (the tune stage and every tune worker call this).

    Args:
        train: :func:`labelcycle.quality.data.training_rows` of the curated training sample.
        classes: the label set.
        p: params ``tune``.
        n_jobs: LightGBM threads per trial (default ``tune.n_jobs``).
        features: params ``features`` (column roles, TF-IDF settings); None: roles inferred.
    """
    features = features or FeaturesParams()
    dims = parse_space(p.search_space)
    text_dims = parse_text_space(p.text_search_space)
    data = prepare_tuning_data(
        train.items, train.labels, classes, p.valid_fraction, p.seed, features, p.text_search_space
    )
    objective = make_objective(
        data,
        dims,
        n_estimators=p.n_estimators,
        early_stopping_rounds=p.early_stopping_rounds,
        n_jobs=p.n_jobs if n_jobs is None else n_jobs,
        seed=p.seed,
        pruning=p.pruning,
        text_dims=text_dims,
    )
    # without text columns the study is named as it always was; with them, the text space and the
    # feature settings are part of what the study searches
    space = (
        {**p.search_space, "text": p.text_search_space, "features": dataclasses.asdict(features)}
        if data.has_text
        else p.search_space
    )
    return Search(study_name(p.study, train.digest(), space, p.seed), objective)
