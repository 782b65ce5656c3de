"""Metrics with intervals per slice of the eval set (one slice per value of a categorical column).

Missing slice values form their own slice, labelled :data:`MISSING`. Each slice is bootstrapped on
its own items (so its interval reflects its own size); each slice gets its own child seed spawned,
in the fixed slice order (columns as given, values sorted), from the one ``random_state`` passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.errors import SchemaError, ValidationError
from labelcycle.evaluation.bootstrap import INTERVAL_COLUMNS, RandomState, bootstrap_table
from labelcycle.evaluation.metrics import (
    DEFAULT_N_BINS,
    check_classes,
    check_proba,
    encode_labels,
    is_rank_metric,
    prepare_eval,
    take_eval,
)
from labelcycle.evaluation.moderation import flagged_view
from labelcycle.evaluation.paired import (
    DELTA_COLUMNS,
    PredictionSet,
    align_pair,
    binary_paired_rows,
    paired_table,
)

#: Slice value given to items whose slice column is missing.
MISSING = "<missing>"

#: which slice a row describes and how many items it holds
SLICE_KEYS = ["slice_column", "slice_value", "n"]
SLICE_COLUMNS = [*SLICE_KEYS, *INTERVAL_COLUMNS]
SLICE_PAIRED_COLUMNS = [*SLICE_KEYS, *DELTA_COLUMNS]


def _seed_sequence(random_state: RandomState) -> np.random.SeedSequence:
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(0, 2**63 - 1)))
    return np.random.SeedSequence(random_state)


def _slices(frame: pd.DataFrame, columns: Sequence[str] | None) -> Iterator[tuple[str, str, np.ndarray]]:
    cols = list(frame.columns) if columns is None else list(columns)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"slice column(s) {missing} not in the slice table (columns: {list(frame.columns)})"
        )
    for col in cols:
        values = frame[col].astype(object).where(frame[col].notna(), MISSING).astype(str).to_numpy()
        for value in sorted(set(values)):
            yield col, value, np.flatnonzero(values == value)


def _per_slice(
    frame: pd.DataFrame,
    columns: Sequence[str] | None,
    *,
    table: Callable[[np.ndarray, np.random.SeedSequence], pd.DataFrame],
    out_columns: list[str],
    metrics: Sequence[str] | None,
    random_state: RandomState,
    min_n: int,
) -> pd.DataFrame:
    """``table(rows, seed)`` for every slice of ``frame`` with ``min_n`` items or more, stacked.

    Each slice gets its own child seed, spawned in slice order whether or not the slice is skipped,
    so one slice's numbers do not depend on which others are kept.
    """
    root = _seed_sequence(random_state)
    frames = []
    for col, value, rows in _slices(frame, columns):
        seed = root.spawn(1)[0]
        if rows.size < max(int(min_n), 1):
            continue
        part = table(rows, seed)
        if metrics is not None:
            part = part[part["metric"].isin(list(metrics))]
        frames.append(part.assign(slice_column=col, slice_value=value))
    if not frames:
        return pd.DataFrame(columns=out_columns)
    return pd.concat(frames, ignore_index=True)[out_columns]


def slice_metrics(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    slices: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    random_state: RandomState,
    confidence: float = 0.95,
    min_n: int = 1,
    n_bins: int = DEFAULT_N_BINS,
) -> pd.DataFrame:
    """Metrics with bootstrap intervals for every value of every slice column.

    Args:
        y_true: gold label per item.
        proba: ``n x k`` probabilities, columns in ``classes`` order.
        classes: the ordered label set.
        slices: categorical item features, one row per item in the same order as ``y_true``.
        columns: slice columns to use (default: every column of ``slices``).
        metrics: metric names to keep (default: all).
        n_boot: resamples per slice.
        random_state: seed, ``SeedSequence`` or generator.
        confidence: interval coverage.
        min_n: slices with fewer items are skipped.
        n_bins: calibration bins for ``ece``.

    Returns:
        Long table ``slice_column, slice_value, n, metric, value, ci_low, ci_high``.

    Raises:
        ValidationError: ``slices`` has a different number of rows than ``y_true``.
    """
    cls = check_classes(classes)
    y = np.asarray(y_true, dtype=object)
    encode_labels(y, cls)
    p = check_proba(proba, y.shape[0], len(cls))
    if len(slices) != y.shape[0]:
        raise ValidationError(
            f"the slice table has {len(slices)} rows but there are {y.shape[0]} eval items; "
            "pass one row per item, in the same order"
        )

    def table(rows: np.ndarray, seed: np.random.SeedSequence) -> pd.DataFrame:
        prep = prepare_eval(y[rows], p[rows], cls, n_bins=n_bins)
        return bootstrap_table(prep, n_boot=n_boot, random_state=seed, confidence=confidence)

    return _per_slice(
        slices.reset_index(drop=True),
        columns,
        table=table,
        out_columns=SLICE_COLUMNS,
        metrics=metrics,
        random_state=random_state,
        min_n=min_n,
    )


def slice_paired(
    base: PredictionSet,
    candidate: PredictionSet,
    slices: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 1000,
    random_state: RandomState,
    confidence: float = 0.95,
    min_n: int = 1,
    n_bins: int = DEFAULT_N_BINS,
    positive_labels: Sequence[str] = (),
    flag_threshold: float | None = None,
) -> pd.DataFrame:
    """Paired deltas (candidate - base) with intervals and p-values per slice.

    Args:
        base: reference predictions.
        candidate: predictions to judge (same items as ``base``).
        slices: categorical item features with an ``item_id`` column covering every eval item.
        columns: slice columns to use (default: every column but ``item_id``).
        metrics: metric names to keep (default: all).
        n_boot: paired resamples per slice.
        random_state: seed, ``SeedSequence`` or generator.
        confidence: interval coverage.
        min_n: slices with fewer items are skipped.
        n_bins: calibration bins for ``ece``.
        positive_labels: non-empty: the binary moderation metrics too, items flagged at the threshold
            each set has on all eval items (``flag_threshold``; None: its expected-F1 threshold).

    Returns:
        Long table ``slice_column, slice_value, n, metric, base, candidate, delta, ci_low, ci_high,
        p_value`` (p-values as in :mod:`labelcycle.evaluation.paired`).

    Raises:
        EvalSetMismatchError: base and candidate do not cover the same items.
        SchemaError: ``slices`` lacks ``item_id``.
        ValidationError: ``slices`` has duplicated ids or lacks some eval items.
    """
    b, c = align_pair(base, candidate)
    if schema.ITEM_ID not in slices.columns:
        raise SchemaError(f"the slice table needs an {schema.ITEM_ID!r} column to align with the predictions")
    sl = slices.assign(**{schema.ITEM_ID: slices[schema.ITEM_ID].astype(str)})
    if sl[schema.ITEM_ID].duplicated().any():
        raise ValidationError("the slice table has duplicated item ids; one row per item is required")
    sl = sl.set_index(schema.ITEM_ID)
    absent = pd.Index(b.item_ids).difference(sl.index)
    if absent.size:
        raise ValidationError(
            f"{absent.size} eval item(s) have no row in the slice table (e.g. {absent[:3].tolist()!r})"
        )
    sl = sl.loc[b.item_ids].reset_index(drop=True)
    need_rank = metrics is None or any(is_rank_metric(m) for m in metrics)  # skip costly AUCs when unused
    thresholds = tuple(
        flagged_view(s.y_true, s.proba, s.classes, positive_labels, flag_threshold)[2]
        if positive_labels
        else None
        for s in (b, c)
    )

    # the per-item terms once for all the items, each slice takes its rows of them (the same numbers as
    # preparing the slice alone); the ranking maps per slice, and only when a ranking metric is kept
    full_b, full_c = (prepare_eval(s.y_true, s.proba, s.classes, n_bins=n_bins, rank=False) for s in (b, c))

    def table(rows: np.ndarray, seed: np.random.SeedSequence) -> pd.DataFrame:
        prep_b = take_eval(full_b, rows, b.proba if need_rank else None)
        prep_c = take_eval(full_c, rows, c.proba if need_rank else None)
        out = paired_table(
            prep_b, prep_c, n_boot=n_boot, random_state=seed, confidence=confidence, rank=need_rank
        )[0]
        if not positive_labels:
            return out
        binary = binary_paired_rows(
            b.take(rows),
            c.take(rows),
            positive_labels,
            thresholds,
            n_boot=n_boot,
            random_state=seed,
            confidence=confidence,
        )
        return pd.concat([out, binary], ignore_index=True)

    return _per_slice(
        sl,
        columns,
        table=table,
        out_columns=SLICE_PAIRED_COLUMNS,
        metrics=metrics,
        random_state=random_state,
        min_n=min_n,
    )
