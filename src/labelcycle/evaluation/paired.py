"""Paired comparison of two prediction sets on the same gold eval items.

Both sets must cover exactly the same item ids with the same gold labels and label set; anything else
raises :class:`~labelcycle.errors.EvalSetMismatchError`, because a difference in metrics would then
mix a model change with an eval-set change.

For every metric we report ``base``, ``candidate``, ``delta = candidate - base``, a paired percentile
bootstrap interval of the delta (each resample draws the same items for both sets) and a p-value:

* ``accuracy``: mid-p McNemar test on the discordant items (exact binomial, mid-p correction);
* every other metric: two-sided paired-bootstrap p-value
  ``min(1, 2 * min(P*(delta <= 0), P*(delta >= 0)))`` with ``P*`` the share of resamples (each count
  plus one over ``n_boot + 1``, so it is never exactly 0). It agrees with the interval: ``p < 0.05``
  exactly when 0 lies outside the 95% percentile interval, up to the +1 correction.

:func:`verdict` turns the primary metric's interval into ``better`` / ``worse`` / ``no significant
change``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special

from labelcycle import schema
from labelcycle.errors import EvalSetMismatchError, SchemaError, ValidationError
from labelcycle.evaluation import moderation as mod
from labelcycle.evaluation.bootstrap import (
    RandomState,
    as_generator,
    check_n_boot,
    percentile_interval,
    resample_weight_blocks,
)
from labelcycle.evaluation.metrics import (
    DEFAULT_N_BINS,
    PreparedEval,
    check_classes,
    check_proba,
    higher_is_better,
    is_rank_metric,
    metric_names,
    prepare_eval,
    report_from_prepared,
    weighted_metrics,
)

BETTER = "better"
WORSE = "worse"
NO_CHANGE = "no significant change"

#: a paired comparison of one metric: the values, the delta's interval and its p-value
DELTA_COLUMNS = ["metric", "base", "candidate", "delta", "ci_low", "ci_high", "p_value"]
PAIRED_COLUMNS = [*DELTA_COLUMNS, "p_method", "higher_is_better", "n"]


@dataclass(frozen=True)
class PredictionSet:
    """Predictions of one model on a gold eval split.

    Attributes:
        item_ids: item id per row (strings, unique).
        y_true: gold label per row.
        proba: ``n x k`` probabilities, columns in ``classes`` order.
        classes: the ordered label set.
        eval_digest: content digest of the gold eval split, when known.
    """

    item_ids: np.ndarray
    y_true: np.ndarray
    proba: np.ndarray
    classes: tuple[str, ...]
    eval_digest: str | None = None

    def __post_init__(self) -> None:
        classes = check_classes(self.classes)
        ids = np.asarray(self.item_ids).astype(str).astype(object)
        y = np.asarray(self.y_true, dtype=object)
        if ids.ndim != 1 or y.shape != ids.shape:
            raise ValidationError(
                f"item_ids and y_true must be 1-D of equal length, got {ids.shape} and {y.shape}"
            )
        proba = check_proba(self.proba, ids.shape[0], len(classes))
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "item_ids", ids)
        object.__setattr__(self, "y_true", y)
        object.__setattr__(self, "proba", proba)

    @property
    def n(self) -> int:
        return int(self.item_ids.shape[0])

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, classes: Sequence[str], *, eval_digest: str | None = None
    ) -> PredictionSet:
        """Build from a table with ``item_id``, ``label`` (gold) and ``proba_<class>`` columns.

        Raises:
            SchemaError: a required column is missing.
        """
        classes = check_classes(classes)
        needed = [schema.ITEM_ID, schema.LABEL, *schema.proba_columns(classes)]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise SchemaError(
                f"prediction table lacks column(s) {missing}; expected {schema.ITEM_ID}, {schema.LABEL} "
                f"and one {schema.PROBA_PREFIX}<class> column per class"
            )
        return cls(
            item_ids=frame[schema.ITEM_ID].to_numpy(),
            y_true=frame[schema.LABEL].to_numpy(),
            proba=frame[schema.proba_columns(classes)].to_numpy(dtype=np.float64),
            classes=classes,
            eval_digest=eval_digest,
        )

    def take(self, rows: np.ndarray) -> PredictionSet:
        """The rows at positions ``rows`` (same classes and digest)."""
        return PredictionSet(
            self.item_ids[rows], self.y_true[rows], self.proba[rows], self.classes, self.eval_digest
        )


def check_same_eval_digest(a: str | None, b: str | None) -> None:
    """Refuse to compare evaluations made on different gold eval splits.

    Raises:
        EvalSetMismatchError: either digest is missing or the two differ.
    """
    if not a or not b:
        raise EvalSetMismatchError(
            f"cannot confirm both evaluations used the same gold eval split: eval digest "
            f"base={a!r}, candidate={b!r}; record the eval split digest with every evaluation"
        )
    if a != b:
        raise EvalSetMismatchError(
            f"the two evaluations used different gold eval splits (eval digest base={a!r}, "
            f"candidate={b!r}); re-evaluate both models on the same frozen eval split"
        )


def _duplicates(ids: np.ndarray) -> list[str]:
    s = pd.Series(ids)
    return sorted(s[s.duplicated()].unique().tolist())


def align_pair(base: PredictionSet, candidate: PredictionSet) -> tuple[PredictionSet, PredictionSet]:
    """Both sets reordered by item id, after checking they cover exactly the same items.

    Raises:
        EvalSetMismatchError: different label sets or eval digests, duplicate ids, ids missing from or
            extra in the candidate, or different gold labels for the same item.
    """
    if base.classes != candidate.classes:
        raise EvalSetMismatchError(
            f"label sets differ: base {list(base.classes)!r}, candidate {list(candidate.classes)!r}"
        )
    if base.eval_digest is not None or candidate.eval_digest is not None:
        check_same_eval_digest(base.eval_digest, candidate.eval_digest)
    for name, ps in (("base", base), ("candidate", candidate)):
        dup = _duplicates(ps.item_ids)
        if dup:
            raise EvalSetMismatchError(
                f"{name} predictions have {len(dup)} duplicated item id(s), e.g. {dup[:5]!r}; "
                "one prediction per eval item is required"
            )
    ob = np.argsort(base.item_ids, kind="stable")
    oc = np.argsort(candidate.item_ids, kind="stable")
    ids_b, ids_c = base.item_ids[ob], candidate.item_ids[oc]
    if ids_b.shape != ids_c.shape or not np.array_equal(ids_b, ids_c):
        missing = np.setdiff1d(ids_b, ids_c)
        extra = np.setdiff1d(ids_c, ids_b)
        raise EvalSetMismatchError(
            f"base and candidate were evaluated on different items: {missing.size} base item id(s) "
            f"missing from the candidate (e.g. {missing[:3].tolist()!r}), {extra.size} extra in the "
            f"candidate (e.g. {extra[:3].tolist()!r}); base has {base.n} items, candidate {candidate.n}. "
            "Evaluate both on the same frozen eval split"
        )
    b, c = base.take(ob), candidate.take(oc)
    differ = b.y_true != c.y_true
    if differ.any():
        raise EvalSetMismatchError(
            f"{int(differ.sum())} item(s) have different gold labels in base and candidate "
            f"(e.g. item {b.item_ids[differ][0]!r}: {b.y_true[differ][0]!r} vs {c.y_true[differ][0]!r}); "
            "the gold split changed between evaluations"
        )
    return b, c


@dataclass(frozen=True)
class McNemarResult:
    """McNemar test on paired correctness.

    Attributes:
        base_only: items the base got right and the candidate wrong.
        candidate_only: items the candidate got right and the base wrong.
        p_exact: two-sided exact binomial p-value.
        p_mid: two-sided mid-p value (exact minus the point probability of the observed split).
    """

    base_only: int
    candidate_only: int
    p_exact: float
    p_mid: float


def mcnemar_test(base_correct: np.ndarray, candidate_correct: np.ndarray) -> McNemarResult:
    """Exact and mid-p McNemar test.

    With ``b`` = base-only and ``c`` = candidate-only correct items, ``m = b + c`` and ``x = min(b, c)``:
    ``p_exact = min(1, 2 * P(X <= x))`` and ``p_mid = p_exact - P(X = x)`` (capped at 1) for
    ``X ~ Binomial(m, 1/2)``; both are 1 when ``m = 0``.
    """
    bc = np.asarray(base_correct, dtype=bool)
    cc = np.asarray(candidate_correct, dtype=bool)
    if bc.shape != cc.shape:
        raise ValidationError(f"correctness vectors differ in shape: {bc.shape} vs {cc.shape}")
    b = int((bc & ~cc).sum())
    c = int((~bc & cc).sum())
    m, x = b + c, min(b, c)
    if m == 0:
        return McNemarResult(b, c, 1.0, 1.0)
    # scipy.special's binomial cdf (bdtr) instead of scipy.stats: the same numbers, a 2 s lighter import
    cdf = float(special.bdtr(x, m, 0.5))
    pmf = cdf - (float(special.bdtr(x - 1, m, 0.5)) if x > 0 else 0.0)
    p_exact = min(1.0, 2.0 * cdf)
    p_mid = min(1.0, 2.0 * cdf - pmf)
    return McNemarResult(b, c, p_exact, p_mid)


@dataclass(frozen=True)
class PairedComparison:
    """Result of :func:`compare_paired`.

    Attributes:
        table: one row per metric (order of :func:`~labelcycle.evaluation.metrics.metric_names`),
            columns ``metric, base, candidate, delta, ci_low, ci_high, p_value, p_method,
            higher_is_better, n``; ``delta = candidate - base``.
        n: number of paired items.
        n_boot: bootstrap resamples.
        confidence: interval coverage.
        mcnemar: the accuracy test.
        eval_digest: digest both sets share (None when neither had one).
        notes: anything skipped (e.g. AUC classes absent from the gold labels).
    """

    table: pd.DataFrame
    n: int
    n_boot: int
    confidence: float
    mcnemar: McNemarResult
    eval_digest: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def row(self, metric: str) -> pd.Series:
        """The table row of one metric.

        Raises:
            ValidationError: unknown metric name.
        """
        hit = self.table[self.table["metric"] == metric]
        if hit.empty:
            raise ValidationError(f"unknown metric {metric!r}; known: {self.table['metric'].tolist()}")
        return hit.iloc[0]


def bootstrap_p_value(deltas: np.ndarray) -> float:
    """Two-sided paired-bootstrap p-value of ``delta == 0`` (see the module docstring)."""
    d = deltas[~np.isnan(deltas)]
    if d.size == 0:
        return float("nan")
    le = (np.count_nonzero(d <= 0) + 1) / (d.size + 1)
    ge = (np.count_nonzero(d >= 0) + 1) / (d.size + 1)
    return float(min(1.0, 2.0 * min(le, ge)))


def paired_table(
    prep_b: PreparedEval,
    prep_c: PreparedEval,
    *,
    n_boot: int,
    random_state: RandomState,
    confidence: float = 0.95,
    n_boot_rank: int | None = None,
    rank: bool = True,
) -> tuple[pd.DataFrame, McNemarResult]:
    """Paired table of two prepared eval sets over the same items in the same order.

    ``n_boot_rank`` (default ``n_boot``) caps the resamples the ranking metrics (ROC-AUC, PR-AUC) are
    bootstrapped on: the first ``n_boot_rank`` resamples of the same stream, since they cost most.
    ``rank=False`` skips them (their interval and p-value are then NaN).
    """
    check_n_boot(n_boot, confidence)
    rng = as_generator(random_state)
    point_b = report_from_prepared(prep_b).values
    point_c = report_from_prepared(prep_c).values
    n_rank = (int(n_boot) if n_boot_rank is None else min(int(n_boot_rank), int(n_boot))) if rank else 0
    parts: dict[str, list[np.ndarray]] = {}
    done = 0
    for wt in resample_weight_blocks(prep_b.n, int(n_boot), rng):
        k = min(max(n_rank - done, 0), wt.shape[0])  # rows of this block that also feed the rank metrics
        if k == wt.shape[0]:
            mb, mc = weighted_metrics(prep_b, wt), weighted_metrics(prep_c, wt)
            for name in mb:
                parts.setdefault(name, []).append(mc[name] - mb[name])
        else:
            mb, mc = weighted_metrics(prep_b, wt, rank=False), weighted_metrics(prep_c, wt, rank=False)
            for name in mb:
                if not is_rank_metric(name):
                    parts.setdefault(name, []).append(mc[name] - mb[name])
            if k:
                rb, rc = weighted_metrics(prep_b, wt[:k]), weighted_metrics(prep_c, wt[:k])
                for name in rb:
                    if is_rank_metric(name):
                        parts.setdefault(name, []).append(rc[name] - rb[name])
        done += wt.shape[0]
    mcn = mcnemar_test(prep_b.pred == prep_b.y, prep_c.pred == prep_c.y)
    rows = []
    for name in metric_names(prep_b.classes):
        d = np.concatenate(parts[name]) if name in parts else np.array([np.nan])
        delta = point_c[name] - point_b[name]
        if np.isnan(delta):
            lo = hi = p = float("nan")
        else:
            lo, hi = percentile_interval(d, confidence)
            p = mcn.p_mid if name == "accuracy" else bootstrap_p_value(d)
        method = "mcnemar_midp" if name == "accuracy" else "paired_bootstrap"
        rows.append(
            (name, point_b[name], point_c[name], delta, lo, hi, p, method, higher_is_better(name), prep_b.n)
        )
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS), mcn


def compare_paired(
    base: PredictionSet,
    candidate: PredictionSet,
    *,
    n_boot: int = 1000,
    random_state: RandomState,
    confidence: float = 0.95,
    n_bins: int = DEFAULT_N_BINS,
    n_boot_rank: int | None = None,
    positive_labels: Sequence[str] = (),
    flag_threshold: float | None = None,
) -> PairedComparison:
    """Compare two prediction sets on the same eval items.

    Args:
        base: the reference predictions (e.g. the model trained on the current dataset version).
        candidate: the predictions to judge.
        n_boot: paired bootstrap resamples.
        random_state: seed or ``np.random.Generator``; the only source of randomness.
        confidence: interval coverage.
        n_bins: calibration bins for ``ece``.
        n_boot_rank: resamples for the ranking metrics (ROC-AUC, PR-AUC), at most ``n_boot``; they
            dominate the cost on large eval sets (default: ``n_boot``).
        positive_labels: ``evaluate.positive_labels``; non-empty: the binary moderation metrics
            (``binary_*`` of :mod:`labelcycle.evaluation.moderation`) are compared too, each set flagged
            as the evaluate stage flags it (``flag_threshold``; None: its own expected-F1 threshold).

    Raises:
        EvalSetMismatchError: the two sets do not cover the same items, gold labels, label set or
            eval digest (see :func:`align_pair`).
    """
    b, c = align_pair(base, candidate)
    prep_b = prepare_eval(b.y_true, b.proba, b.classes, n_bins=n_bins)
    prep_c = prepare_eval(c.y_true, c.proba, c.classes, n_bins=n_bins)
    table, mcn = paired_table(
        prep_b,
        prep_c,
        n_boot=n_boot,
        random_state=random_state,
        confidence=confidence,
        n_boot_rank=n_boot_rank,
    )
    if positive_labels:
        binary = binary_paired_rows(
            b,
            c,
            positive_labels,
            (flag_threshold, flag_threshold),
            n_boot=n_boot,
            random_state=random_state,
            confidence=confidence,
            n_boot_rank=n_boot_rank,
        )
        table = pd.concat([table, binary], ignore_index=True)
    notes = report_from_prepared(prep_b).notes
    return PairedComparison(
        table=table,
        n=b.n,
        n_boot=int(n_boot),
        confidence=float(confidence),
        mcnemar=mcn,
        eval_digest=b.eval_digest or c.eval_digest,
        notes=notes,
    )


def binary_paired_rows(
    b: PredictionSet,
    c: PredictionSet,
    positive_labels: Sequence[str],
    thresholds: tuple[float | None, float | None] = (None, None),
    *,
    n_boot: int,
    random_state: RandomState,
    confidence: float = 0.95,
    n_boot_rank: int | None = None,
) -> pd.DataFrame:
    """Paired rows of the binary moderation metrics (named as in metrics.json) of two aligned sets: the
    flag metrics on each set's flags (flagged at P(positive) >= its threshold in ``thresholds``; None: its
    own expected-F1 threshold), PR-AUC on its P(positive)."""
    rng = as_generator(random_state)
    views = [
        mod.flagged_view(s.y_true, s.proba, s.classes, positive_labels, t)
        for s, t in zip((b, c), thresholds, strict=True)
    ]
    (gold, soft_b, _, flags_b), (_, soft_c, _, flags_c) = views
    hard, _ = paired_table(
        prepare_eval(gold, flags_b, mod.BINARY_CLASSES),
        prepare_eval(gold, flags_c, mod.BINARY_CLASSES),
        n_boot=n_boot,
        random_state=rng,
        confidence=confidence,
        rank=False,
    )
    ranked, _ = paired_table(
        prepare_eval(gold, soft_b, mod.BINARY_CLASSES),
        prepare_eval(gold, soft_c, mod.BINARY_CLASSES),
        n_boot=n_boot,
        random_state=rng,
        confidence=confidence,
        n_boot_rank=n_boot_rank,
    )
    pr_auc = mod.BINARY_METRICS["binary_pr_auc"]
    rows = pd.concat(
        [
            hard[hard["metric"].isin(set(mod.BINARY_METRICS.values()) - {pr_auc})],
            ranked[ranked["metric"] == pr_auc],
        ],
        ignore_index=True,
    )
    name_of = {v: k for k, v in mod.BINARY_METRICS.items()}
    rows["metric"] = rows["metric"].map(name_of)
    return rows


def verdict(
    comparison: PairedComparison, primary_metric: str = "macro_f1", *, min_effect: float = 0.0
) -> str:
    """Judge the candidate by the paired interval of the primary metric's delta.

    Rule: with ``[lo, hi]`` the bootstrap interval of ``delta = candidate - base``, for a metric where
    larger is better the candidate is ``"better"`` when ``lo > min_effect`` and ``"worse"`` when
    ``hi < -min_effect``; for a loss (``log_loss``, ``ece``, ``brier``) the signs flip (``hi <
    -min_effect`` is better). Otherwise, including an undefined interval, the answer is ``"no
    significant change"``. ``min_effect = 0`` means "the interval excludes zero".

    Raises:
        ValidationError: unknown metric or negative ``min_effect``.
    """
    if min_effect < 0:
        raise ValidationError(f"min_effect must be >= 0, got {min_effect}")
    row = comparison.row(primary_metric)
    lo, hi = float(row["ci_low"]), float(row["ci_high"])
    if np.isnan(lo) or np.isnan(hi):
        return NO_CHANGE
    up = lo > min_effect
    down = hi < -min_effect
    if higher_is_better(primary_metric):
        return BETTER if up else WORSE if down else NO_CHANGE
    return BETTER if down else WORSE if up else NO_CHANGE
