"""Statistics and wording of the root-cause search (:mod:`labelcycle.annotators.rootcause`).

Pure functions on counts and row positions: the Benjamini-Hochberg threshold, Wilson-based rate statistics,
the Newcombe lower bound of a rate difference, the dominant wrong label of a group, and the sentence a
finding is reported as.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from labelcycle import schema
from labelcycle.annotators._common import wilson

if TYPE_CHECKING:
    from labelcycle.params import RootCauseParams


def bh_threshold(z_scores: np.ndarray, fdr: float) -> float:
    """The one-sided z threshold of the Benjamini-Hochberg procedure at ``fdr`` over these test statistics.

    The Wilson lower bound at ``z`` exceeds the baseline exactly when the score statistic exceeds ``z``,
    so the threshold plugs into the Wilson gate. With no rejection it is the Bonferroni threshold.
    """
    m = max(len(z_scores), 1)
    p_sorted = np.sort(stats.norm.sf(z_scores))
    passed = np.flatnonzero(p_sorted <= fdr * np.arange(1, len(p_sorted) + 1) / m)
    p_star = fdr * (passed[-1] + 1) / m if len(passed) else fdr / m
    return float(stats.norm.isf(p_star))


def rate_stats(k: np.ndarray, n: np.ndarray, p0: float, z: float) -> dict[str, np.ndarray]:
    lo, hi = wilson(k, n, z)
    rate = k / n
    logit = np.log((k + 0.5) / (n - k + 0.5)) - np.log(p0 / (1 - p0))
    return {
        "rate": rate,
        "rate_lo": lo,
        "rate_hi": hi,
        "rate_diff": rate - p0,
        "rate_diff_lo": lo - p0,
        "rate_diff_hi": hi - p0,
        "lift": rate / p0,
        "log_odds_ratio": logit,
        "excess": n * (rate - p0),
        "score": n * (lo - p0),
    }


def dominant_share(rows: np.ndarray, conf_code: np.ndarray, n_conf: int) -> tuple[int, int, int]:
    """(dominant confusion code, its count, number of disagreements) among ``rows``."""
    codes = conf_code[rows]
    codes = codes[codes >= 0]
    if len(codes) == 0:
        return -1, 0, 0
    counts = np.bincount(codes, minlength=n_conf)
    best = int(np.argmax(counts))
    return best, int(counts[best]), int(len(codes))


def given_pattern(rows: np.ndarray, given_code: np.ndarray, n_given: int) -> tuple[int, int, int]:
    """(most frequent given label code among the disagreements of ``rows``, its count, disagreements)."""
    codes = given_code[rows]
    codes = codes[codes >= 0]
    if len(codes) == 0:
        return -1, 0, 0
    counts = np.bincount(codes, minlength=n_given)
    best = int(np.argmax(counts))
    return best, int(counts[best]), int(len(codes))


def newcombe_lower(k1: float, n1: float, k2: float, n2: float, z1: float, z2: float) -> float:
    """Lower bound of Newcombe's hybrid score interval for ``k1/n1 - k2/n2`` (method 10), with the Wilson
    quantile ``z1`` for the first rate and ``z2`` for the second."""
    l1, _ = wilson(k1, n1, z1)
    _, u2 = wilson(k2, n2, z2)
    p1, p2 = k1 / n1, k2 / n2
    return float(p1 - p2 - np.sqrt((p1 - float(l1)) ** 2 + (float(u2) - p2) ** 2))


def describe_conditions(conditions: dict[str, tuple[str, ...]]) -> str:
    parts = []
    for f, vals in conditions.items():
        parts.append(f"{f}={vals[0]}" if len(vals) == 1 else f"{f} in {{{', '.join(vals)}}}")
    return " & ".join(parts)


def finding_text(row: dict[str, object], per_name: str | None, ref_word: str) -> str:
    conds = dict(row["_conditions"])  # type: ignore[call-overload]
    ann = conds.pop(schema.ANNOTATOR_ID, None)
    single = ann is not None and len(ann) == 1
    label_verb, disagree_verb = ("labels", "disagrees") if single else ("label", "disagree")
    if ann is None:
        who = "annotators"
    elif single:
        who = f"annotator {ann[0]}"
    else:
        who = f"annotators {', '.join(ann)}"
    period_txt = ""
    if per_name is not None and per_name in conds:
        vals = conds.pop(per_name)
        period_txt = f" in {'batch' if per_name == schema.BATCH_ID else 'week'} {', '.join(vals)}"
    if row["since_period"]:
        period_txt = f" since {'batch' if per_name == schema.BATCH_ID else 'week'} {row['since_period']}"
    guide = conds.pop(schema.GUIDELINE_VERSION, None)
    if guide is not None:
        period_txt += f" (guideline {', '.join(guide)})"
    elif row["guideline_version"]:
        period_txt += f" (guideline {row['guideline_version']})"
    where = describe_conditions(conds)
    subject = f"{where} items" if where else "items"
    dom = str(row["dominant_confusion"])
    share = float(row["dominant_share"])  # type: ignore[arg-type]
    n_dis = int(row["n_disagree"])  # type: ignore[call-overload]
    if dom and share >= 0.5:
        true, given = dom.split(" -> ")
        what = (
            f"{who} {label_verb} {subject} as '{given}' where {ref_word} says '{true}' "
            f"({share:.0%} of {n_dis} disagreements)"
        )
    elif row["_given"] and float(row["_given_share"]) >= 0.5:  # type: ignore[arg-type]
        what = (
            f"{who} {label_verb} {subject} as '{row['_given']}' where {ref_word} says '{row['_given_from']}' "
            f"({float(row['_given_share']):.0%} of {n_dis} disagreements)"  # type: ignore[arg-type]
        )
    else:
        what = f"{who} {disagree_verb} with {ref_word} on {subject} (mixed; most often {dom}, {share:.0%})"
    return (
        f"{what}{period_txt}: {float(row['rate']):.0%} disagree vs {float(row['baseline']):.0%} baseline "  # type: ignore[arg-type]
        f"(n={int(row['n'])}, {100 * float(row['rate_diff']):+.0f} pp, 95% CI "  # type: ignore[call-overload,arg-type]
        f"[{100 * float(row['rate_diff_lo']):+.0f}, {100 * float(row['rate_diff_hi']):+.0f}], "  # type: ignore[arg-type]
        f"lift {float(row['lift']):.1f})"  # type: ignore[arg-type]
    )


@dataclass
class Group:
    conditions: dict[str, tuple[str, ...]]  # factor -> allowed values
    rows: np.ndarray  # sorted row positions of the group
    since: str | None = None
    context_guideline: str | None = None
    n: int = 0
    k: int = 0
    explained: bool = False  # a parent group (one condition fewer) is as bad or worse
    annotator_explained: bool = False  # the annotator is as bad or worse on their other labels

    @property
    def order(self) -> int:
        return len(self.conditions) + (self.since is not None)


def guideline_onset(
    group: Group, gv_idx: np.ndarray | None, gv_names: np.ndarray, period_idx: np.ndarray, order: list[str]
) -> Group:
    """Name the onset of a group conditioned on a guideline version that is the same as "since <period>".

    When, across all labels, the group's guideline version(s) are used exactly from one period on (every
    label of that period and later, none before), the condition reads "since <period> (guideline v2)".
    """
    vals = group.conditions.get(schema.GUIDELINE_VERSION)
    if gv_idx is None or vals is None or group.since is not None or not order:
        return group
    allowed = np.isin(gv_names[gv_idx], list(vals))
    known = period_idx >= 0
    if not allowed[known].any():
        return group
    start = int(period_idx[known & allowed].min())
    if start == 0 or not np.array_equal(allowed[known], period_idx[known] >= start):
        return group
    return replace(group, since=order[start])


def interaction_lower(
    group: Group,
    cond_mask: Callable[[str, tuple[str, ...]], np.ndarray],
    since_mask: Callable[[str], np.ndarray],
    dis: np.ndarray,
    z: float,
    z_ref: float,
) -> float:
    """How much more often the group disagrees than its simpler explanations, at 95% (lower bound).

    Each simpler explanation drops one condition (the annotators, a slice, the onset): "the same
    annotators on other items", "other annotators on the same items", "the same group before the onset".
    The group is compared with the rest of each such parent (Newcombe interval of the difference of two
    rates; the group's rate at ``z`` as it was selected among many, the parent's rest at ``z_ref``) and the
    smallest lower bound is returned; a parent with no other rows is skipped. A single-condition group is
    compared with all other labels. ``inf`` when no comparison exists.
    """
    parts: list[tuple[str, np.ndarray]] = [(f, cond_mask(f, v)) for f, v in group.conditions.items()]
    if group.since is not None:
        parts.append(("since", since_mask(group.since)))
    k1, n1 = float(group.k), float(group.n)
    best = np.inf
    for j in range(len(parts)):
        others = [m for i, (_, m) in enumerate(parts) if i != j]
        parent = np.logical_and.reduce(others) if others else np.ones(len(dis), dtype=bool)
        n_p = float(np.count_nonzero(parent))
        k_p = float(np.count_nonzero(parent & dis))
        n2, k2 = n_p - n1, k_p - k1
        if n2 < 1:
            continue
        best = min(best, newcombe_lower(k1, n1, k2, n2, z, z_ref))
    return best


def onset_split(
    group: Group,
    period_idx: np.ndarray,
    order: list[str],
    disagree: np.ndarray,
    p0: float,
    params: RootCauseParams,
) -> Group:
    """Restrict ``group`` to the periods from its onset when the excess starts at one period."""
    idx = period_idx[group.rows]
    ok = idx >= 0
    idx = idx[ok]
    d = disagree[group.rows][ok]
    n_per = np.bincount(idx, minlength=len(order)).astype(np.float64)
    k_per = np.bincount(idx, weights=d, minlength=len(order))
    present = np.flatnonzero(n_per > 0)
    if len(present) < 2:
        return group

    def ll(k: np.ndarray, n: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            p = k / n
            return np.nan_to_num(k * np.log(p)) + np.nan_to_num((n - k) * np.log1p(-p))

    cn, ck = np.cumsum(n_per), np.cumsum(k_per)
    splits = present[1:]  # the post segment starts at this period index
    pre_n, pre_k = cn[splits - 1], ck[splits - 1]
    post_n, post_k = cn[-1] - pre_n, ck[-1] - pre_k
    lr = 2 * (ll(pre_k, pre_n) + ll(post_k, post_n) - ll(ck[-1:], cn[-1:]))
    up = post_k / post_n > pre_k / pre_n
    lr = np.where(up, lr, -np.inf)
    best = int(np.argmax(lr))
    if lr[best] < stats.chi2.ppf(1 - params.onset_alpha, 1):
        return group
    pre_lo, _ = wilson(pre_k[best], pre_n[best], params.z)
    if float(pre_lo) > p0:
        return group
    start = int(splits[best])
    return replace(group, rows=group.rows[period_idx[group.rows] >= start], since=order[start])
