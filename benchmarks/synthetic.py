"""Synthetic crowd data: many sparse annotators, a long tail of activity, spammers, imbalanced classes.

Stands in for the demo data until ``labelcycle.demo`` lands. Fully vectorised so that it can make
10 million annotations in seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def generate(
    n_items: int = 20_000,
    labels_per_item: int = 5,
    n_annotators: int = 2_000,
    n_classes: int = 4,
    spammer_share: float = 0.2,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Annotations (``item_id, annotator_id, label``) and the true labels (``item_id, label``).

    Annotator activity follows a Zipf-like law, so most annotators give a handful of labels and a few
    give thousands. Good annotators have class-specific confusions (neighbouring classes are mixed
    up); spammers answer at random or always the same class. An annotator may label an item twice
    (duplicates happen in real exports).
    """
    rng = np.random.default_rng(seed)
    k = n_classes
    priors = rng.dirichlet(np.full(k, 2.0))
    truth = rng.choice(k, size=n_items, p=priors)

    # confusion matrices: good annotators mix up neighbouring classes
    accuracy = rng.beta(6, 2, size=n_annotators) * 0.45 + 0.5  # 0.5 .. 0.95
    confusions = np.empty((n_annotators, k, k))
    idx = np.arange(k)
    neighbour = np.exp(-np.abs(idx[:, None] - idx[None, :]).astype(float))
    neighbour[idx, idx] = 0
    neighbour /= np.maximum(neighbour.sum(axis=1, keepdims=True), 1e-12)
    confusions[:] = (1 - accuracy)[:, None, None] * neighbour[None]
    confusions[:, idx, idx] = accuracy[:, None]
    spam = rng.random(n_annotators) < spammer_share
    uniform_spam = spam & (rng.random(n_annotators) < 0.5)
    constant_spam = spam & ~uniform_spam
    confusions[uniform_spam] = 1.0 / k
    favourite = rng.integers(0, k, size=n_annotators)
    confusions[constant_spam] = 0.0
    rows = np.flatnonzero(constant_spam)
    confusions[rows[:, None], idx[None, :], favourite[rows][:, None]] = 1.0

    activity = 1.0 / np.arange(1, n_annotators + 1) ** 1.1
    activity = rng.permutation(activity / activity.sum())
    n = n_items * labels_per_item
    item = np.repeat(np.arange(n_items, dtype=np.int64), labels_per_item)
    annotator = rng.choice(n_annotators, size=n, p=activity)
    cumulative = np.cumsum(confusions, axis=2)
    label = np.empty(n, dtype=np.int64)
    step = 1_000_000
    for start in range(0, n, step):  # chunks bound the memory of the (rows x K) gather
        sl = slice(start, start + step)
        cdf = cumulative[annotator[sl], truth[item[sl]]]
        label[sl] = np.minimum((rng.random(cdf.shape[0])[:, None] > cdf).sum(axis=1), k - 1)

    item_ids = np.char.add("i", np.arange(n_items).astype(str))
    ann_ids = np.char.add("a", np.arange(n_annotators).astype(str))
    class_ids = np.array([f"c{c}" for c in range(k)])
    annotations = pd.DataFrame(
        {"item_id": item_ids[item], "annotator_id": ann_ids[annotator], "label": class_ids[label]}
    )
    gold = pd.DataFrame({"item_id": item_ids, "label": class_ids[truth]})
    return annotations, gold
