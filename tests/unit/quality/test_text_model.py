"""The quality model on text items: it reads the words, saves its vectorisers, tunes text settings, and
leaves items without text exactly as before."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from labelcycle.params import TuneParams
from labelcycle.quality.data import TrainingRows
from labelcycle.quality.model import QualityModel, train
from labelcycle.quality.tuning import search_for, study_name

CLASSES = ["not_abusive", "abusive"]
ABUSE = (
    "you are a stupid ugly bitch|shut up idiot|i hate you stupid bot|you are useless trash|go away you moron"
)
SMALL_TALK = "what is the weather today|tell me a joke|how old are you|where do you live|what time is it"
FAST = {"n_estimators": 60, "num_threads": 1, "min_child_samples": 5, "learning_rate": 0.1}


FILLER = [
    "hey",
    "so",
    "well",
    "ok",
    "um",
    "listen",
    "right",
    "look",
    "yes",
    "no",
    "maybe",
    "hmm",
    "alright",
    "really",
    "honestly",
]


def chat_items(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Chat turns: an abusive or a small-talk phrase between filler words (many distinct messages)."""
    rng = np.random.default_rng(seed)
    abusive = rng.random(n) < 0.3
    pools = {True: ABUSE.split("|"), False: SMALL_TALK.split("|")}
    msgs = [" ".join([rng.choice(FILLER), rng.choice(pools[bool(a)]), rng.choice(FILLER)]) for a in abusive]
    items = pd.DataFrame(
        {"item_id": [f"m{k}" for k in range(n)], "user": msgs, "bot": rng.choice(["eliza", "carbon"], size=n)}
    )
    return items, pd.Series(np.where(abusive, "abusive", "not_abusive"))


def test_the_quality_model_reads_the_text_and_tells_abuse_from_small_talk():
    items, y = chat_items()
    res = train(items, y, CLASSES, params=FAST, seed=0)
    new = pd.DataFrame(
        {
            "item_id": ["x", "y"],
            "user": ["you are a stupid ugly bitch", "what is the weather today"],
            "bot": ["eliza", "eliza"],
        }
    )
    proba = res.model.predict_proba(new)["abusive"].to_numpy()
    assert proba[0] > 0.9 and proba[1] < 0.1
    assert res.model.pipeline.roles_.text == ("user",) and res.model.pipeline.roles_.categorical == ("bot",)


def test_the_model_folder_holds_the_text_features_and_scores_raw_text_after_loading(tmp_path):
    items, y = chat_items()
    res = train(items, y, CLASSES, params=FAST, seed=0)
    res.model.save(tmp_path / "m")
    assert (tmp_path / "m" / "text_features.json").exists()
    again = QualityModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.predict(items), res.model.predict(items))


def test_without_text_columns_the_model_is_the_plain_lightgbm_model_it_always_was(small_demo):
    items = small_demo.items.head(400).reset_index(drop=True)
    y = pd.Series(np.where(items["claims_score"] > 0.3, "misleading", "ok"))
    params = {"n_estimators": 30, "num_threads": 1}
    res = train(items, y, ["ok", "misleading", "prohibited"], params=params, valid_fraction=0.0, seed=5)
    # the frame the model took before text features: numeric as float, the rest as categoricals
    frame = pd.DataFrame(index=items.index)
    for col in items.columns[1:]:
        if pd.api.types.is_numeric_dtype(items[col]):
            frame[col] = items[col].astype("float64")
    for col in items.columns[1:]:
        if not pd.api.types.is_numeric_dtype(items[col]):
            frame[col] = pd.Categorical(
                items[col].astype(str), categories=sorted(items[col].astype(str).unique())
            )
    booster = lgb.train(
        {
            "objective": "binary",
            "verbosity": -1,
            "seed": 5,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
        },
        lgb.Dataset(frame, (y == "misleading").astype(int)),
        num_boost_round=30,
    )
    assert np.allclose(res.model.predict_proba(items)["misleading"].to_numpy(), booster.predict(frame))


def test_tuned_text_settings_reach_the_trained_model():
    items, y = chat_items()
    res = train(
        items, y, CLASSES, params={**FAST, "tfidf_max_features": 12, "tfidf_word_ngram_max": 1}, seed=0
    )
    tfidf = res.model.pipeline.features.tfidf
    assert (tfidf.max_features, tfidf.word_ngram_max) == (12, 1)
    assert sum(len(v.vocabulary) for v in res.model.pipeline.text_) == 12


def test_tuning_searches_the_text_settings_only_when_text_columns_exist(small_demo):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    p = TuneParams(n_trials=2, n_estimators=20, early_stopping_rounds=5, n_jobs=1)
    items, y = chat_items()
    text_rows = TrainingRows(items.assign(label=y, confidence=1.0, n_annotations=1), 0)
    search = search_for(text_rows, CLASSES, p)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(search.objective, n_trials=2)
    assert {f"tfidf_{k}" for k in p.text_search_space} <= set(study.trials[0].params)
    demo = small_demo.items.head(300)
    demo_rows = TrainingRows(
        demo.assign(
            label=np.where(demo["claims_score"] > 0.3, "misleading", "ok"), confidence=1.0, n_annotations=1
        ),
        0,
    )
    demo_search = search_for(demo_rows, ["ok", "misleading", "prohibited"], p)
    demo_study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    demo_study.optimize(demo_search.objective, n_trials=1)
    assert not any(k.startswith("tfidf_") for k in demo_study.trials[0].params)
    # items without text keep the study name they always had
    assert demo_search.study == study_name(p.study, demo_rows.digest(), p.search_space, p.seed)


def test_the_mlflow_model_signature_takes_the_raw_text_columns_as_strings(tmp_path):
    import mlflow

    from labelcycle.tracking.models import log_quality_model, predict_with

    items, y = chat_items()
    res = train(items, y, CLASSES, params=FAST, seed=0)
    res.model.save(tmp_path / "m")
    with mlflow.start_run():
        info = log_quality_model(tmp_path / "m", items, None)
    inputs = {c.name: str(c.type) for c in info.signature.inputs.inputs}
    assert "user" in inputs and "string" in inputs["user"].lower()
    raw = pd.DataFrame({"item_id": ["x"], "user": ["shut up idiot"], "bot": ["carbon"]})
    served = predict_with(info.model_uri, raw)
    assert served["label"].tolist() == ["abusive"]
    assert served["proba_abusive"].iloc[0] == pytest.approx(res.model.predict_proba(raw)["abusive"].iloc[0])
