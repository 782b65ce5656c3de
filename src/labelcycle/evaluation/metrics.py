"""Classification metrics on a frozen gold eval split, vectorised over many weightings at once.

Inputs are per-item predictions: ``y_true`` (gold labels, strings), ``proba`` (``n x k``, columns in
the order of the label set ``classes``). The predicted label is the arg-max of ``proba`` (ties go to
the earlier class).

Every metric here is computed from item *weights*. The plain metric uses weight 1 per item; a
bootstrap resample uses the number of times each item was drawn. All weight-linear quantities
(correct counts, per-class counts, summed losses, calibration gaps per bin) come out of one matrix
product ``W @ F``, and the ranking metrics (ROC-AUC, PR-AUC) out of one cumulative sum per class over
items sorted once. A ``(B, n)`` weight matrix therefore yields ``B`` metric values per metric without a
Python loop over resamples; :mod:`labelcycle.evaluation.bootstrap` relies on this.

Metric names (stable; a class absent from the data never removes a key, its value is NaN):

* ``accuracy``, ``macro_f1``, ``roc_auc_ovr``, ``pr_auc_ovr``, ``log_loss``, ``ece``, ``brier``
* per class: ``precision__<cls>``, ``recall__<cls>``, ``f1__<cls>``, ``roc_auc__<cls>``, ``pr_auc__<cls>``

Undefined values are NaN, never a silent 0: precision of a class never predicted, recall of a class
absent from ``y_true``, F1 of a class neither present nor predicted, AUCs of a class without positives
or without negatives. ``macro_f1`` averages F1 over the classes where it is defined (present in
``y_true`` or predicted), ``roc_auc_ovr`` / ``pr_auc_ovr`` average over classes with both positives and
negatives; :class:`MetricReport` says which classes were skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from labelcycle.errors import ValidationError
from labelcycle.evaluation.ranking import RankPrep, rank_maps, ranking_metrics
from labelcycle.evaluation.ranking import safe_div as _safe_div

#: Probabilities are clipped to ``[LOG_LOSS_EPS, 1]`` before the log (machine epsilon, as scikit-learn).
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
#: Default number of equal-width confidence bins for the expected calibration error.
DEFAULT_N_BINS = 15
#: Tolerance on ``proba`` rows summing to 1.
ROW_SUM_TOL = 1e-4

SUMMARY_METRICS: tuple[str, ...] = (
    "accuracy",
    "macro_f1",
    "roc_auc_ovr",
    "pr_auc_ovr",
    "log_loss",
    "ece",
    "brier",
)
PER_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "roc_auc", "pr_auc")
#: Ranking metrics (the expensive ones under resampling), by name or per-class prefix.
RANK_METRICS: frozenset[str] = frozenset({"roc_auc_ovr", "pr_auc_ovr", "roc_auc", "pr_auc"})


def is_rank_metric(metric: str) -> bool:
    """Whether ``metric`` is a ROC-AUC / PR-AUC (summary or per class)."""
    return metric.split("__", 1)[0] in RANK_METRICS


#: Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "ece", "brier"})


def metric_names(classes: Sequence[str]) -> list[str]:
    """All metric names, in the order :func:`compute_metrics` returns them."""
    names = list(SUMMARY_METRICS)
    for base in PER_CLASS_METRICS:
        names.extend(f"{base}__{c}" for c in classes)
    return names


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is an improvement (False for losses and ECE)."""
    return metric.split("__", 1)[0] not in LOWER_IS_BETTER


@dataclass(frozen=True)
class MetricReport:
    """Point metrics of one prediction set.

    Attributes:
        values: metric name -> value (NaN where undefined), keys as in :func:`metric_names`.
        n: number of items.
        classes: the label set.
        skipped_auc_classes: classes left out of ``roc_auc_ovr`` / ``pr_auc_ovr`` (no positives or
            no negatives in ``y_true``).
        notes: human-readable sentences about anything skipped.
    """

    values: dict[str, float]
    n: int
    classes: tuple[str, ...]
    skipped_auc_classes: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PreparedEval:
    """Per-item quantities every metric is computed from; build with :func:`prepare_eval`.

    Attributes:
        classes: the label set.
        y: gold class code per item.
        pred: predicted class code per item (arg-max of ``proba``).
        features: ``n x m`` float matrix of weight-linear per-item terms (see :func:`weighted_metrics`);
            ``features32`` is the float32 copy used with float32 weights.
        rank: per-class bincount maps for ROC-AUC / PR-AUC; None when not prepared (the ranking
            metrics are then NaN, see :func:`prepare_eval`'s ``rank``).
        n_bins: number of calibration bins.
    """

    classes: tuple[str, ...]
    y: np.ndarray
    pred: np.ndarray
    features: np.ndarray
    features32: np.ndarray
    rank: tuple[RankPrep, ...] | None
    n_bins: int

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def k(self) -> int:
        return len(self.classes)

    # column layout of ``features``
    @property
    def _cols(self) -> dict[str, slice]:
        k, b = self.k, self.n_bins
        return {
            "ones": slice(3 + 3 * k + b, 4 + 3 * k + b),
            "correct": slice(0, 1),
            "log_loss": slice(1, 2),
            "brier": slice(2, 3),
            "true": slice(3, 3 + k),
            "pred": slice(3 + k, 3 + 2 * k),
            "tp": slice(3 + 2 * k, 3 + 3 * k),
            "gap": slice(3 + 3 * k, 3 + 3 * k + b),
        }


def check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    """Validate the label set: at least two distinct strings.

    Raises:
        ValidationError: fewer than two classes, duplicates or non-string labels.
    """
    cls = tuple(classes)
    if len(cls) < 2:
        raise ValidationError(f"the label set needs at least 2 classes, got {list(cls)!r}")
    if not all(isinstance(c, str) for c in cls):
        raise ValidationError(f"class labels must be strings, got {list(cls)!r}; convert them with str()")
    if len(set(cls)) != len(cls):
        dup = sorted({c for c in cls if cls.count(c) > 1})
        raise ValidationError(f"the label set has duplicate classes {dup!r}")
    return cls


def encode_labels(y_true: Sequence[str] | np.ndarray | pd.Series, classes: Sequence[str]) -> np.ndarray:
    """Gold labels as integer codes into ``classes``.

    Raises:
        ValidationError: a label is missing or outside the label set.
    """
    cls = check_classes(classes)
    values = pd.Series(np.asarray(y_true, dtype=object))
    codes = pd.Index(list(cls), dtype=object).get_indexer(values).astype(np.int64)
    bad = codes < 0
    if bad.any():
        unknown = sorted({str(v) for v in values[bad]})
        shown = ", ".join(repr(u) for u in unknown[:10])
        raise ValidationError(
            f"{int(bad.sum())} gold label(s) are missing or outside the label set {list(cls)!r}: {shown}"
            + (" ..." if len(unknown) > 10 else "")
            + "; fix the gold split or pass the full label set as classes"
        )
    return codes


def check_proba(proba: np.ndarray | pd.DataFrame, n: int, k: int) -> np.ndarray:
    """Validate a probability matrix: shape ``n x k``, finite, in ``[0, 1]``, rows summing to 1.

    Raises:
        ValidationError: any of the above fails.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape != (n, k):
        raise ValidationError(
            f"proba must have shape (n_items, n_classes) = ({n}, {k}), got {p.shape}; "
            "columns must follow the label set order"
        )
    if not np.isfinite(p).all():
        raise ValidationError(f"proba has {int((~np.isfinite(p)).any(axis=1).sum())} row(s) with NaN or inf")
    if (p < 0).any() or (p > 1 + ROW_SUM_TOL).any():
        raise ValidationError("proba has values outside [0, 1]")
    dev = np.abs(p.sum(axis=1) - 1.0)
    if (dev > ROW_SUM_TOL).any():
        rows = np.flatnonzero(dev > ROW_SUM_TOL)
        raise ValidationError(
            f"{rows.size} proba row(s) do not sum to 1 (first: row {int(rows[0])}, sum "
            f"{p[rows[0]].sum():.6f}); pass normalised class probabilities"
        )
    return p


def prepare_eval(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    *,
    n_bins: int = DEFAULT_N_BINS,
    rank: bool = True,
) -> PreparedEval:
    """Validate inputs and precompute the per-item terms of every metric.

    Args:
        y_true: gold label per item (strings from ``classes``).
        proba: ``n x k`` predicted probabilities, columns in ``classes`` order.
        classes: the ordered label set.
        n_bins: equal-width bins on ``[0, 1]`` for the expected calibration error.
        rank: prepare the ranking metrics (ROC-AUC, PR-AUC); False: they are NaN wherever this
            prepared set is used (for callers that drop them, as slices without them do).

    Raises:
        ValidationError: empty input, unknown labels, malformed ``proba`` or ``n_bins < 1``.
    """
    cls = check_classes(classes)
    y = encode_labels(y_true, cls)
    n, k = y.shape[0], len(cls)
    if n == 0:
        raise ValidationError("cannot evaluate on an empty eval set (0 items)")
    if int(n_bins) < 1:
        raise ValidationError(f"n_bins must be >= 1, got {n_bins}")
    n_bins = int(n_bins)
    p = check_proba(proba, n, k)

    rows = np.arange(n)
    pred = np.argmax(p, axis=1)
    correct = (pred == y).astype(np.float64)
    onehot_true = np.zeros((n, k))
    onehot_true[rows, y] = 1.0
    onehot_pred = np.zeros((n, k))
    onehot_pred[rows, pred] = 1.0
    ll = -np.log(np.clip(p[rows, y], LOG_LOSS_EPS, 1.0))
    brier = ((p - onehot_true) ** 2).sum(axis=1)
    conf = p[rows, pred]
    # bins (lo, hi]; confidence 0 goes to the first bin
    bin_idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    gap = np.zeros((n, n_bins))
    gap[rows, bin_idx] = correct - conf

    features = np.concatenate(
        [
            correct[:, None],
            ll[:, None],
            brier[:, None],
            onehot_true,
            onehot_pred,
            onehot_true * onehot_pred,
            gap,
            np.ones((n, 1)),
        ],
        axis=1,
    )
    return PreparedEval(
        classes=cls,
        y=y,
        pred=pred,
        features=features,
        features32=features.astype(np.float32),
        rank=rank_maps(p, y, k) if rank else None,
        n_bins=n_bins,
    )


def take_eval(prep: PreparedEval, rows: np.ndarray, proba: np.ndarray | None = None) -> PreparedEval:
    """The prepared eval set of the items at positions ``rows`` of ``prep``, without validating and
    computing the per-item terms again: each term depends on its own item only, so they equal, bit for
    bit, what :func:`prepare_eval` gives on those items. The ranking maps depend on all the items kept:
    they are built from ``proba`` (``prep``'s ``n x k`` probabilities) when it is given, else left out
    (the ranking metrics are then NaN).
    """
    y = prep.y[rows]
    return PreparedEval(
        classes=prep.classes,
        y=y,
        pred=prep.pred[rows],
        features=prep.features[rows],
        features32=prep.features32[rows],
        rank=rank_maps(np.asarray(proba, dtype=np.float64)[rows], y, prep.k) if proba is not None else None,
        n_bins=prep.n_bins,
    )


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(x)
    cnt = ok.sum(axis=1)
    tot = np.where(ok, x, 0.0).sum(axis=1)
    return _safe_div(tot, cnt.astype(np.float64))


def weighted_metrics(prep: PreparedEval, weights: np.ndarray, *, rank: bool = True) -> dict[str, np.ndarray]:
    """Every metric under each row of item weights.

    Args:
        prep: output of :func:`prepare_eval`.
        weights: ``(B, n)`` non-negative item weights (ones for the plain metric, draw counts for a
            bootstrap resample). float64 or float32 (float32 is exact for counts and halves memory
            traffic for large ``B``).
        rank: compute the ranking metrics (ROC-AUC, PR-AUC); when False (or ``prep`` has no ranking
            maps) they are NaN. They cost most
            (cumulative sums over the distinct scores per class), so callers that need them on fewer
            resamples than the rest skip them on the other blocks.

    Returns:
        metric name -> array of shape ``(B,)``, keys as in :func:`metric_names`.
    """
    w = np.atleast_2d(np.asarray(weights))
    if w.ndim != 2 or w.shape[1] != prep.n:
        raise ValidationError(f"weights must have shape (B, {prep.n}), got {w.shape}")
    if w.dtype != np.float32:
        w = w.astype(np.float64)
    feats = prep.features32 if w.dtype == np.float32 else prep.features
    s = (w @ feats).astype(np.float64)  # (B, m)
    c = prep._cols
    tot = s[:, c["ones"]][:, 0]
    true_c, pred_c, tp = s[:, c["true"]], s[:, c["pred"]], s[:, c["tp"]]
    precision = _safe_div(tp, pred_c)
    recall = _safe_div(tp, true_c)
    f1 = _safe_div(2.0 * tp, true_c + pred_c)

    auc = np.full((w.shape[0], prep.k), np.nan)
    ap = np.full((w.shape[0], prep.k), np.nan)
    if rank and prep.rank is not None:
        auc, ap = ranking_metrics(prep.rank, w, tot)

    out: dict[str, np.ndarray] = {
        "accuracy": _safe_div(s[:, c["correct"]][:, 0], tot),
        "macro_f1": _nanmean_rows(f1),
        "roc_auc_ovr": _nanmean_rows(auc),
        "pr_auc_ovr": _nanmean_rows(ap),
        "log_loss": _safe_div(s[:, c["log_loss"]][:, 0], tot),
        "ece": _safe_div(np.abs(s[:, c["gap"]]).sum(axis=1), tot),
        "brier": _safe_div(s[:, c["brier"]][:, 0], tot),
    }
    for base, arr in (
        ("precision", precision),
        ("recall", recall),
        ("f1", f1),
        ("roc_auc", auc),
        ("pr_auc", ap),
    ):
        for j, cls in enumerate(prep.classes):
            out[f"{base}__{cls}"] = arr[:, j]
    return out


def report_from_prepared(prep: PreparedEval) -> MetricReport:
    """:class:`MetricReport` of a prepared eval set (weight 1 per item)."""
    vals = weighted_metrics(prep, np.ones((1, prep.n)))
    values = {name: float(v[0]) for name, v in vals.items()}
    counts = np.bincount(prep.y, minlength=prep.k)
    absent = tuple(c for c, m in zip(prep.classes, counts, strict=True) if m == 0)
    only = tuple(c for c, m in zip(prep.classes, counts, strict=True) if m == prep.n)
    notes: list[str] = []
    if absent:
        notes.append(
            f"class(es) {list(absent)!r} absent from y_true: skipped in roc_auc_ovr/pr_auc_ovr, "
            "their recall and AUCs are NaN"
        )
    if only:
        notes.append(f"class {list(only)!r} is the only gold class: no negatives, AUCs undefined")
    never_pred = [c for j, c in enumerate(prep.classes) if not (prep.pred == j).any()]
    if never_pred:
        notes.append(f"class(es) {never_pred!r} never predicted: their precision is NaN")
    return MetricReport(
        values=values, n=prep.n, classes=prep.classes, skipped_auc_classes=absent + only, notes=tuple(notes)
    )


def evaluate(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    *,
    n_bins: int = DEFAULT_N_BINS,
) -> MetricReport:
    """All metrics of one prediction set, with notes on classes that had to be skipped.

    Args:
        y_true: gold label per item.
        proba: ``n x k`` probabilities, columns in ``classes`` order.
        classes: the ordered label set.
        n_bins: calibration bins for ``ece``.
    """
    return report_from_prepared(prepare_eval(y_true, proba, classes, n_bins=n_bins))


def compute_metrics(
    y_true: Sequence[str] | np.ndarray | pd.Series,
    proba: np.ndarray | pd.DataFrame,
    classes: Sequence[str],
    *,
    n_bins: int = DEFAULT_N_BINS,
) -> dict[str, float]:
    """All metrics as a flat ``name -> value`` dict (NaN where undefined); see the module docstring."""
    return evaluate(y_true, proba, classes, n_bins=n_bins).values
