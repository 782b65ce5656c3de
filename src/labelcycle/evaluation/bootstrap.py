"""Percentile bootstrap intervals for every metric of :mod:`labelcycle.evaluation.metrics`.

A resample draws ``n`` items with replacement; it is represented by its draw-count vector, so a
block of resamples is a ``(B, n)`` count matrix built from an index matrix in one ``bincount``, and
every metric of the block comes out of :func:`~labelcycle.evaluation.metrics.weighted_metrics`
without a Python loop over resamples. Blocks are sized to keep memory at a few tens of MB whatever
``n`` is. Randomness comes only from the ``random_state`` passed in.

Caveat: ``ece`` (a sum of absolute gaps) is biased upwards under resampling, so its percentile
interval can lie above the point value on well-calibrated models; read it as a range of plausible
miscalibration, not as a test of zero.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from labelcycle.errors import ValidationError
from labelcycle.evaluation.metrics import (
    DEFAULT_N_BINS,
    PreparedEval,
    metric_names,
    prepare_eval,
    report_from_prepared,
    weighted_metrics,
)

#: Upper bound on the number of cells of one ``(B, n)`` weight block.
BLOCK_CELLS = 3_200_000

RandomState = int | np.random.Generator | np.random.SeedSequence | None

#: one metric's point value and interval
INTERVAL_COLUMNS = ["metric", "value", "ci_low", "ci_high"]
BOOTSTRAP_COLUMNS = [*INTERVAL_COLUMNS, "n"]


def as_generator(random_state: RandomState) -> np.random.Generator:
    """A NumPy ``Generator`` from a seed, ``SeedSequence`` or generator (returned as is)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def check_n_boot(n_boot: int, confidence: float) -> None:
    """Validate the bootstrap size and confidence level.

    Raises:
        ValidationError: ``n_boot < 1`` or ``confidence`` outside ``(0, 1)``.
    """
    if int(n_boot) < 1:
        raise ValidationError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValidationError(f"confidence must be in (0, 1), got {confidence}")


def resample_weight_blocks(
    n: int, n_boot: int, rng: np.random.Generator, *, dtype: type = np.float32
) -> Iterator[np.ndarray]:
    """Yield ``(B, n)`` draw-count matrices whose rows are bootstrap resamples, ``n_boot`` rows in all.

    Counts are exact in float32 for ``n < 2**24``.
    """
    block = max(1, min(n_boot, BLOCK_CELLS // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(block, n_boot - done)
        counts = np.empty((b, n), dtype=dtype)
        for r in range(b):  # one resample at a time keeps bincount's output in cache
            counts[r] = np.bincount(rng.integers(0, n, size=n), minlength=n)
        yield counts
        done += b


def bootstrap_distribution(
    prep: PreparedEval, *, n_boot: int, random_state: RandomState
) -> dict[str, np.ndarray]:
    """Every metric on ``n_boot`` bootstrap resamples of a prepared eval set.

    Returns:
        metric name -> array of shape ``(n_boot,)`` (NaN where a resample leaves a metric undefined,
        e.g. a rare class not drawn).
    """
    rng = as_generator(random_state)
    parts: dict[str, list[np.ndarray]] = {}
    for w in resample_weight_blocks(prep.n, int(n_boot), rng):
        for name, v in weighted_metrics(prep, w).items():
            parts.setdefault(name, []).append(v)
    return {name: np.concatenate(v) for name, v in parts.items()}


def percentile_interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples, ignoring NaN (NaN, NaN when all are NaN)."""
    ok = samples[~np.isnan(samples)]
    if ok.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(ok, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_table(
    prep: PreparedEval, *, n_boot: int, random_state: RandomState, confidence: float = 0.95
) -> pd.DataFrame:
    """Tidy interval table of a prepared eval set; see :func:`bootstrap_metrics`."""
    check_n_boot(n_boot, confidence)
    point = report_from_prepared(prep).values
    dist = bootstrap_distribution(prep, n_boot=n_boot, random_state=random_state)
    rows = []
    for name in metric_names(prep.classes):
        lo, hi = percentile_interval(dist[name], confidence)
        if np.isnan(point[name]):
            lo = hi = float("nan")
        rows.append((name, point[name], lo, hi, prep.n))
    return pd.DataFrame(rows, columns=BOOTSTRAP_COLUMNS)


def bootstrap_metrics(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    *,
    n_boot: int = 1000,
    random_state: RandomState,
    confidence: float = 0.95,
    n_bins: int = DEFAULT_N_BINS,
) -> pd.DataFrame:
    """Point value and percentile bootstrap interval of every metric.

    Args:
        y_true: gold label per item.
        proba: ``n x k`` probabilities, columns in ``classes`` order.
        classes: the ordered label set.
        n_boot: number of resamples.
        random_state: seed or ``np.random.Generator``; the only source of randomness.
        confidence: interval coverage (0.95 gives the 2.5th and 97.5th percentiles).
        n_bins: calibration bins for ``ece``.

    Returns:
        One row per metric (order of :func:`~labelcycle.evaluation.metrics.metric_names`), columns
        ``metric, value, ci_low, ci_high, n``. ``value`` is the metric on all items; an undefined
        metric has NaN value and interval.
    """
    prep = prepare_eval(y_true, proba, classes, n_bins=n_bins)
    return bootstrap_table(prep, n_boot=n_boot, random_state=random_state, confidence=confidence)
