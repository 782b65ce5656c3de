"""Simulated review on data with known truth: what does a review budget buy, by how items are chosen?

A reviewed item gets its true label (a perfect expert). For each strategy (error-model priority,
uncertainty only, random) and budget we count the wrong consensus labels fixed and retrain the quality
model on the corrected labels, judged on the gold eval items. Eval items are never reviewed nor trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation import make_aggregator
from labelcycle.detection.model import detect_label_errors
from labelcycle.params import ErrorModelParams
from labelcycle.detection.review import PRIORITY, UNCERTAINTY, item_priorities

STRATEGY_COLUMN = {"error_model": PRIORITY, "uncertainty": UNCERTAINTY, "random": "random"}


@dataclass(frozen=True)
class SimulationParams:
    budgets: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
    quality_rounds: int = 150
    seed: int = 0
    detection: ErrorModelParams = field(default_factory=ErrorModelParams)


def _accuracy(
    items: pd.DataFrame,
    train_ids: pd.Series,
    train_labels: pd.Series,
    eval_gold: pd.DataFrame,
    classes: tuple[str, ...],
    params: SimulationParams,
) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    from labelcycle.quality.model import train

    feat = items.set_index(schema.ITEM_ID)
    tr = feat.loc[train_ids.to_numpy()].reset_index()
    model = train(
        tr,
        pd.Series(train_labels.to_numpy(), index=tr.index),
        classes,
        params={
            "n_estimators": params.quality_rounds,
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "num_threads": 1,
        },
        valid_fraction=0.0,
        seed=params.seed,
    ).model
    ev = feat.loc[eval_gold[schema.ITEM_ID].to_numpy()].reset_index()
    pred = model.predict(ev)[schema.LABEL].to_numpy()
    y = eval_gold[schema.LABEL].astype(str).to_numpy()
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_f1": float(f1_score(y, pred, labels=list(classes), average="macro", zero_division=0)),
    }


def simulate_review(
    annotations: pd.DataFrame,
    items: pd.DataFrame,
    gold_train: pd.DataFrame,
    eval_gold: pd.DataFrame,
    truth: pd.DataFrame,
    classes: tuple[str, ...] | list[str],
    params: SimulationParams | None = None,
) -> tuple[pd.DataFrame, str]:
    """Labels fixed and downstream metrics by budget and strategy.

    Args:
        annotations: the crowd annotations.
        items: item features.
        gold_train: gold labels the error model may train on.
        eval_gold: the frozen eval split (judges the quality model only).
        truth: ``item_id, true_label`` (what a perfect reviewer would say).
        classes: the label set.
        params: budgets (fractions of the reviewable items) and settings.

    Returns:
        ``(curve, message)``: the curve has ``strategy, budget_fraction, budget_items, labels_fixed,
        wrong_labels_left, accuracy, macro_f1``; the message says how the error scores were made.
    """
    params = params or SimulationParams()
    classes = tuple(str(c) for c in classes)
    eval_ids = set(eval_gold[schema.ITEM_ID].astype(str))
    det = detect_label_errors(
        annotations,
        classes,
        items,
        gold_train,
        exclude_items=eval_gold[schema.ITEM_ID],
        params=params.detection,
    )
    agg = make_aggregator(params.detection.features.aggregator, classes=classes).fit(
        annotations[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]]
    )
    labels = agg.result_frame()
    pri = item_priorities(det.scores, labels)
    feat_ids = set(items[schema.ITEM_ID].astype(str))
    pool = pri[~pri[schema.ITEM_ID].isin(eval_ids) & pri[schema.ITEM_ID].isin(feat_ids)].reset_index(
        drop=True
    )
    true = truth.set_index(truth[schema.ITEM_ID].astype(str))["true_label"].astype(str)
    pool["true_label"] = true.reindex(pool[schema.ITEM_ID]).to_numpy()
    wrong = (pool["current_label"] != pool["true_label"]).to_numpy()
    rng = np.random.default_rng(params.seed)
    pool["random"] = rng.random(len(pool))
    rows = []
    base_metrics = None
    for frac in params.budgets:
        n = int(round(frac * len(pool)))
        for strategy, col in STRATEGY_COLUMN.items():
            if n == 0 and base_metrics is not None:
                rows.append({**rows[-1], "strategy": strategy})
                continue
            order = np.lexsort((pool[schema.ITEM_ID].to_numpy(), -pool[col].to_numpy()))
            chosen = np.zeros(len(pool), dtype=bool)
            chosen[order[:n]] = True
            new_labels = pool["current_label"].where(~chosen, pool["true_label"])
            metrics = _accuracy(items, pool[schema.ITEM_ID], new_labels, eval_gold, classes, params)
            if n == 0:
                base_metrics = metrics
            rows.append(
                {
                    "strategy": strategy,
                    "budget_fraction": frac,
                    "budget_items": n,
                    "labels_fixed": int((chosen & wrong).sum()),
                    "wrong_labels_left": int((wrong & ~chosen).sum()),
                    **metrics,
                }
            )
    return pd.DataFrame(rows), det.message


def review_curve_figure(curve: pd.DataFrame):
    """Two panels: wrong labels fixed, and the downstream accuracy, against the review budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for strategy, g in curve.groupby("strategy", sort=False):
        x = 100 * g["budget_fraction"]
        axes[0].plot(x, g["labels_fixed"], marker="o", label=strategy)
        axes[1].plot(x, g["accuracy"], marker="o", label=strategy)
    axes[0].set(xlabel="review budget (% of items)", ylabel="wrong labels fixed", title="Labels fixed")
    axes[1].set(
        xlabel="review budget (% of items)", ylabel="accuracy on gold eval", title="Downstream quality model"
    )
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig
