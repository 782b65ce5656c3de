from __future__ import annotations

import numpy as np
import pytest

CLASSES = ["neg", "neu", "pos"]


def make_predictions(n: int, seed: int, *, signal: float = 1.0, k: int = 3):
    rng = np.random.default_rng(seed)
    classes = CLASSES if k == 3 else [f"c{i}" for i in range(k)]
    y = rng.integers(0, k, n)
    logit = rng.normal(size=(n, k))
    logit[np.arange(n), y] += signal
    p = np.exp(logit)
    p /= p.sum(axis=1, keepdims=True)
    return np.array(classes, dtype=object)[y], p, classes


@pytest.fixture
def make_preds():
    """Factory of synthetic predictions: ``make_preds(n, seed, signal=..., k=...) -> (y, proba, classes)``."""
    return make_predictions
