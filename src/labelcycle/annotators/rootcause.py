"""Root-cause analysis: which groups of labels concentrate disagreement with the reference label.

Every annotation with a reference label (gold where available, the consensus elsewhere) is a Bernoulli
trial "disagrees with the reference". A *group* is a conjunction of conditions on the factors
``annotator_id``, the period (``batch_id``, or the ISO week of ``created_at``), ``guideline_version`` and
the item features (categorical columns with at most ``max_levels`` values; numeric columns cut into
``numeric_bins`` quantile bins). The algorithm:

1. **Enumerate** every group of 1 to ``max_order`` factors (single factors, pairs, triples) with at least
   ``min_support`` labels and keep the *candidates* whose 95% Wilson lower bound on the disagreement rate
   exceeds the baseline (the overall rate). A candidate whose lower bound does not exceed the rate of one
   of its parents (the group without one of its conditions) is *explained* by that parent, so the many
   sub-slices of one bad annotator do not crowd out other groups (the rule of step 4, applied early).
2. **Cohorts**: candidates that differ only in the annotator and share the same pattern (the same wrong
   label given, at least ``pattern_share`` of their disagreements) are merged into one group "annotators A,
   B, C x rest". A member must be worse on the slice than on their other labels (an annotator who is bad
   everywhere joins no cohort); then explained candidates are dropped. A cohort of more than
   ``max_annotator_share`` of all annotators (and more than three) is dropped: it describes the item
   slice, which stands as a slice finding (no annotator condition).
3. **Onset**: for a group that does not fix the period, the best single split of its period sequence is
   found (binomial likelihood ratio, ``chi2(1)`` at ``onset_alpha``); when the rate after the split is
   higher and the part before is not above baseline (Wilson lower bound <= baseline), the group is
   restricted to "since <period>". A guideline version shared by all its rows is reported alongside.
4. **De-duplication** on the row sets (``C`` below a parent ``P`` when ``C``'s rows are a subset of
   ``P``'s): a child is dropped when its lower bound does not exceed its parent's rate (the parent explains
   it); then a parent is dropped when, without a surviving child's rows, what remains is no longer
   significantly above baseline (the child explains it). Groups with identical rows keep the simplest
   description.
5. **Greedy selection, ranked by effect size**: ``score`` is the smallest of three lower bounds, all
   simultaneous over the groups that compete for a rank (Bonferroni; ``z_rank``): the rate difference over
   the baseline on the rows no better finding covers; the rate difference over each *simpler explanation*
   (the group without one of its conditions: the same annotators on other items, other annotators on the
   same items, the same group before its onset; Newcombe interval against the rest of that parent); and
   the excess rate of the group's most frequent wrong label over its baseline share. So a group ranks high
   when it is confidently and specifically worse than the annotators, the slice and the period that make it
   up, whatever its size; mediocre annotators and hard slices on their own rank by their own effect; a
   group whose score is not positive is not reported. A group is only reported while its uncovered rows
   stay significantly above baseline at the false discovery rate ``fdr`` (Benjamini-Hochberg over the
   score tests of all groups tested: the threshold adapts to how many groups really stand out, and on
   data with no signal it is as strict as Bonferroni), so overlapping restatements of a finding and the
   chance hits of testing thousands of groups drop out. A guideline-version condition that equals
   "from period P on" is reported as "since P (guideline v2)".

Effect sizes: ``rate_diff`` with the interval ``[rate_lo, rate_hi] - baseline`` (the baseline rests on all
labels and is treated as known), ``lift = rate / baseline`` and ``log_odds_ratio`` (with a 0.5
continuity correction).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import sparse, stats

from labelcycle import schema
from labelcycle.annotators._common import (
    check_annotations,
    check_gold,
    check_items,
    consensus_of,
    periods,
    reference_labels,
    wilson,
)
from labelcycle.annotators.groupstats import (
    Group,
    bh_threshold,
    describe_conditions,
    dominant_share,
    finding_text,
    given_pattern,
    guideline_onset,
    interaction_lower,
    onset_split,
    rate_stats,
)
from labelcycle.params import RootCauseParams

ROOT_CAUSE_COLUMNS = [
    "rank",
    "finding",
    "annotators",
    "conditions",
    "factors",
    "n",
    "n_disagree",
    "rate",
    "rate_lo",
    "rate_hi",
    "baseline",
    "rate_diff",
    "rate_diff_lo",
    "rate_diff_hi",
    "lift",
    "log_odds_ratio",
    "excess",
    "score",
    "dominant_confusion",
    "dominant_share",
    "since_period",
    "guideline_version",
    "reference",
]

MISSING = "(missing)"


def _factor_frame(
    ann: pd.DataFrame, items: pd.DataFrame | None, params: RootCauseParams
) -> tuple[pd.DataFrame, str | None, list[str]]:
    """String factor columns per annotation row; returns (frame, period factor name, period order)."""
    out = pd.DataFrame(index=ann.index)
    out[schema.ANNOTATOR_ID] = ann[schema.ANNOTATOR_ID]
    per_name, per, order = periods(ann)
    if per_name is not None and per is not None:
        out[per_name] = per.fillna(MISSING).astype(str)
    if schema.GUIDELINE_VERSION in ann.columns:
        out[schema.GUIDELINE_VERSION] = ann[schema.GUIDELINE_VERSION].fillna(MISSING).astype(str)
    if items is not None:
        feats = items.reindex(ann[schema.ITEM_ID].to_numpy())
        for col in feats.columns:
            if col in out.columns:
                continue
            values = feats[col]
            if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
                s = values.astype(object).where(values.notna(), MISSING).astype(str)
                if 2 <= s.nunique() <= params.max_levels:
                    out[col] = s.to_numpy()
            elif params.numeric_bins > 0 and values.nunique() > params.numeric_bins:
                bins = pd.qcut(values, params.numeric_bins, duplicates="drop")
                s = bins.astype(str).where(bins.notna(), MISSING)
                if s.nunique() >= 2:
                    out[col] = s.to_numpy()
            elif values.nunique() >= 2:
                out[col] = values.astype(str).to_numpy()
    return out.reset_index(drop=True), per_name, order


def _group_key(
    combo: tuple[str, ...], codes: dict[str, tuple[np.ndarray, pd.Index]], rows: np.ndarray | None = None
) -> np.ndarray:
    """One integer per row (or per row in ``rows``) identifying its values of the factors in ``combo``."""
    key = np.zeros(len(codes[combo[0]][0]) if rows is None else len(rows), dtype=np.int64)
    for c in combo:
        values = codes[c][0] if rows is None else codes[c][0][rows]
        key = key * len(codes[c][1]) + values
    return key


def _parent_counts(
    parent: tuple[str, ...],
    group_counts: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]],
    codes: dict[str, tuple[np.ndarray, pd.Index]],
    rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(disagreements, labels) of the ``parent`` group that contains each of ``rows``."""
    keys, k, n = group_counts[parent]
    at = np.searchsorted(keys, _group_key(parent, codes, rows))
    return k[at], n[at]


def root_causes(
    annotations: pd.DataFrame,
    consensus: pd.Series | object,
    items: pd.DataFrame | None = None,
    gold: pd.DataFrame | None = None,
    params: RootCauseParams | None = None,
) -> pd.DataFrame:
    """Groups of labels that concentrate disagreement with the reference, ranked (see module docstring).

    Args:
        annotations: long table ``item_id, annotator_id, label`` (+ optional ``batch_id``/``created_at``,
            ``guideline_version``).
        consensus: consensus label per ``item_id`` or a fitted aggregator.
        items: optional items table; its feature columns become factors.
        gold: optional gold table; gold replaces the consensus as reference on its items.
        params: settings.

    Returns:
        One row per finding, best first, with the columns of :data:`ROOT_CAUSE_COLUMNS`; ``finding`` is a
        one-line human-readable summary. Empty (same columns) when nothing stands out.
    """
    params = params or RootCauseParams()
    ann = check_annotations(annotations)
    cons = consensus if isinstance(consensus, pd.Series) else consensus_of(consensus)
    cons = pd.Series(cons.astype(str).to_numpy(), index=pd.Index(cons.index.astype(str), name=schema.ITEM_ID))
    g = check_gold(gold)
    it = check_items(items)
    ref, src = reference_labels(cons, g, params.use_gold)

    if params.exclude_annotators:
        ann = ann[~ann[schema.ANNOTATOR_ID].isin([str(a) for a in params.exclude_annotators])]
    truth = ann[schema.ITEM_ID].map(ref)
    ann = ann[truth.notna().to_numpy()].reset_index(drop=True)
    truth = truth[truth.notna()].astype(str).to_numpy()
    source = ann[schema.ITEM_ID].map(src).to_numpy()
    empty = pd.DataFrame({c: [] for c in ROOT_CAUSE_COLUMNS})
    if len(ann) == 0:
        return empty
    given = ann[schema.LABEL].to_numpy()
    disagree = (given != truth).astype(np.float64)
    p0 = float(disagree.mean())
    if p0 <= 0.0 or p0 >= 1.0:
        return empty
    conf_str = np.where(disagree > 0, pd.Series(truth).str.cat(pd.Series(given), sep=" -> ").to_numpy(), None)
    conf_code, conf_names = pd.factorize(pd.Series(conf_str), use_na_sentinel=True)
    n_conf = len(conf_names)
    given_code, given_names = pd.factorize(
        pd.Series(np.where(disagree > 0, given, None)), use_na_sentinel=True
    )
    n_given = len(given_names)

    factors, per_name, order = _factor_frame(ann, it, params)
    period_idx = (
        pd.Series(factors[per_name])
        .map({p: i for i, p in enumerate(order)})
        .fillna(-1)
        .astype(np.int64)
        .to_numpy()
        if per_name is not None
        else np.full(len(ann), -1)
    )
    codes = {c: pd.factorize(factors[c], sort=True) for c in factors.columns}

    # 1. enumerate candidates; a group of several factors whose lower bound does not exceed the rate of
    # one of its parents (the group without one condition) is explained by that parent (step 4's rule,
    # applied early so that the sub-slices of a bad annotator do not crowd out other groups)
    cands: list[Group] = []
    tested_z: list[np.ndarray] = []  # score-test statistics of every group tested (rate > baseline)
    group_counts: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # combo -> keys, k, n
    for r in range(1, params.max_order + 1):
        for combo in itertools.combinations(factors.columns, r):
            key = _group_key(combo, codes)
            uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
            n = np.bincount(inv).astype(np.float64)
            k = np.bincount(inv, weights=disagree)
            if r < params.max_order:
                group_counts[combo] = (uniq, k, n)
            lo, _ = wilson(k, n, params.z)
            big = n >= params.min_support
            tested_z.append((k[big] / n[big] - p0) / np.sqrt(p0 * (1.0 - p0) / n[big]))
            keep = np.flatnonzero(big & (lo > p0))
            explained = np.zeros(len(keep), dtype=bool)
            for parent in itertools.combinations(combo, r - 1) if r > 1 else ():
                pk, pn = _parent_counts(parent, group_counts, codes, first[keep])
                explained |= lo[keep] <= pk / pn
            # an annotator no worse on this slice than on their other labels: "bad everywhere", their own
            # finding, not the slice's
            overall = np.zeros(len(keep), dtype=bool)
            if r > 1 and schema.ANNOTATOR_ID in combo:
                pk, pn = _parent_counts((schema.ANNOTATOR_ID,), group_counts, codes, first[keep])
                rest_n = pn - n[keep]
                rest_rate = np.divide(pk - k[keep], rest_n, out=np.ones(len(keep)), where=rest_n > 0)
                overall = lo[keep] <= rest_rate
            for j, gi in enumerate(keep):
                rows = np.flatnonzero(inv == gi)
                conds = {c: (str(factors[c].iat[int(rows[0])]),) for c in combo}
                cands.append(
                    Group(conds, rows, explained=bool(explained[j]), annotator_explained=bool(overall[j]))
                )

    # 2. cohorts of annotators sharing a pattern (the same wrong label on the same slice); a "cohort" of
    # most annotators describes the slice, not a group of annotators, and is left out
    n_annotators = int(pd.Series(ann[schema.ANNOTATOR_ID]).nunique())
    max_cohort = max(3, int(params.max_annotator_share * n_annotators))
    by_key: dict[tuple, list[Group]] = {}
    for gr in cands:
        if gr.annotator_explained or schema.ANNOTATOR_ID not in gr.conditions or len(gr.conditions) < 2:
            continue
        dom, dom_n, n_dis = given_pattern(gr.rows, given_code, n_given)
        if dom < 0 or dom_n < params.pattern_share * n_dis:
            continue
        rest = tuple(sorted((f, v) for f, v in gr.conditions.items() if f != schema.ANNOTATOR_ID))
        by_key.setdefault((rest, dom), []).append(gr)
    for (rest, _dom), members in by_key.items():
        if not 2 <= len(members) <= max_cohort:
            continue
        names = tuple(sorted(m.conditions[schema.ANNOTATOR_ID][0] for m in members))
        rows = np.unique(np.concatenate([m.rows for m in members]))
        cands.append(Group({schema.ANNOTATOR_ID: names, **dict(rest)}, rows))
    # a cohort member must be worse on the slice than on their other labels (the bad-everywhere annotator
    # joins none) but may be explained by a parent (a cohort inflates its slice); as findings of their own,
    # explained groups are dropped
    cands = [gr for gr in cands if not gr.explained]

    # 3. onset within the period sequence
    if per_name is not None and len(order) >= 2:
        cands = [
            onset_split(gr, period_idx, order, disagree, p0, params) if per_name not in gr.conditions else gr
            for gr in cands
        ]
    gv_idx, gv_names = (
        pd.factorize(factors[schema.GUIDELINE_VERSION])
        if schema.GUIDELINE_VERSION in factors.columns
        else (None, None)
    )
    cands = [guideline_onset(gr, gv_idx, np.asarray(gv_names), period_idx, order) for gr in cands]
    for gr in cands:
        gr.n = len(gr.rows)
        gr.k = int(disagree[gr.rows].sum())
    lo_all = wilson(np.array([gr.k for gr in cands]), np.array([gr.n for gr in cands]), params.z)[0]
    keep = [i for i, gr in enumerate(cands) if gr.n >= params.min_support and lo_all[i] > p0]
    # the cap keeps the strongest half by excess (the broad groups that explain their children) and fills
    # up with the strongest by effect size (the ranking key)
    by_excess = sorted(keep, key=lambda i: -cands[i].n * (lo_all[i] - p0))[: params.max_candidates // 2]
    chosen = set(by_excess)
    by_effect = [i for i in sorted(keep, key=lambda i: -(lo_all[i] - p0)) if i not in chosen]
    keep = sorted(by_excess + by_effect[: params.max_candidates - len(by_excess)])
    cands = [cands[i] for i in keep]
    if not cands:
        return empty

    # identical row sets: keep the simplest description (then one with an onset)
    cands.sort(key=lambda gr: (len(gr.conditions), gr.since is None, describe_conditions(gr.conditions)))
    seen: set[bytes] = set()
    unique: list[Group] = []
    for gr in cands:
        sig = gr.rows.tobytes()
        if sig not in seen:
            seen.add(sig)
            unique.append(gr)
    cands = unique

    # 4. de-duplicate along the subset order of row sets
    indptr = np.cumsum([0] + [len(gr.rows) for gr in cands])
    masks = sparse.csr_matrix(
        (np.ones(indptr[-1], dtype=np.float64), np.concatenate([gr.rows for gr in cands]), indptr),
        shape=(len(cands), len(ann)),
    )
    inter = (masks @ masks.T).toarray()
    n_arr = np.array([gr.n for gr in cands], dtype=np.float64)
    k_arr = np.array([gr.k for gr in cands], dtype=np.float64)
    rate = k_arr / n_arr
    lo_arr, _ = wilson(k_arr, n_arr, params.z)
    subset = (inter >= n_arr[:, None] - 0.5) & ~np.eye(len(cands), dtype=bool)  # [c, p]: c within p
    child_explained = (subset & (lo_arr[:, None] <= rate[None, :])).any(axis=1)
    alive = ~child_explained
    rest_lo, _ = wilson(k_arr[None, :] - k_arr[:, None], n_arr[None, :] - n_arr[:, None], params.z)  # [c, p]
    rest_lo = np.where(n_arr[None, :] - n_arr[:, None] > 0, rest_lo, -np.inf)
    parent_explained = (subset & alive[:, None] & (rest_lo <= p0)).any(axis=0)
    alive &= ~parent_explained

    # 5. greedy selection on the rows not yet explained by a better finding, ranked by effect size
    z_sel = max(params.z, bh_threshold(np.concatenate(tested_z), params.fdr))
    alive_idx = np.flatnonzero(alive)
    dis_bool = disagree > 0
    # the ranked effects are simultaneous 95% bounds over the groups that compete for a rank (Bonferroni),
    # so that a small group picked among thousands does not win by its luck alone
    z_rank = max(params.z, float(stats.norm.isf((1 - stats.norm.cdf(params.z)) / max(len(alive_idx), 1))))
    mask_cache: dict[tuple, np.ndarray] = {}

    def cond_mask(f: str, vals: tuple[str, ...]) -> np.ndarray:
        key = (f, vals)
        if key not in mask_cache:
            codes_f, uniq = codes[f]
            wanted = np.flatnonzero(np.isin(np.asarray(uniq, dtype=object), list(vals)))
            mask_cache[key] = np.isin(codes_f, wanted)
        return mask_cache[key]

    def since_mask(start: str) -> np.ndarray:
        key = ("__since__", (start,))
        if key not in mask_cache:
            mask_cache[key] = period_idx >= order.index(start)
        return mask_cache[key]

    # the pattern: how much more often than the baseline the group gives its most frequent wrong label
    p0_given = np.bincount(given_code[given_code >= 0], minlength=n_given) / len(ann)
    pattern_lo = np.empty(len(alive_idx))
    for j, i in enumerate(alive_idx):
        gdom, gdom_n, _ = given_pattern(cands[i].rows, given_code, n_given)
        pattern_lo[j] = float(wilson(gdom_n, cands[i].n, z_rank)[0]) - p0_given[gdom] if gdom >= 0 else 0.0
    inter_lo = np.array(
        [interaction_lower(cands[i], cond_mask, since_mask, dis_bool, z_rank, params.z) for i in alive_idx],
        dtype=np.float64,
    )
    sub = masks[alive_idx]
    covered = np.zeros(sub.shape[1], dtype=np.float32)
    taken = np.zeros(len(alive_idx), dtype=bool)
    picks: list[tuple[int, float]] = []
    while not params.top_k or len(picks) < params.top_k:
        free = 1.0 - covered
        rn = (sub @ free).astype(np.float64)
        rk = (sub @ (free * disagree.astype(np.float32))).astype(np.float64)
        lo_sel, _ = wilson(rk, rn, z_sel)
        lo95, _ = wilson(rk, rn, z_rank)
        ok = ~taken & (rn >= params.min_support) & (lo_sel > p0)
        if not ok.any():
            break
        # effect size: the lower 95% bound of the rate difference over the baseline (on the rows no better
        # finding covers) and over every simpler explanation of the group, whichever is smaller
        score = np.where(ok, np.minimum(np.minimum(lo95 - p0, inter_lo), pattern_lo), -np.inf)
        best = int(np.argmax(score))
        if score[best] <= 0:  # not confidently worse than a simpler explanation: nothing left to report
            break
        picks.append((int(alive_idx[best]), float(score[best])))
        taken[best] = True
        covered[cands[int(alive_idx[best])].rows] = 1.0
    if not picks:
        return empty

    # 6. describe
    st = rate_stats(k_arr, n_arr, p0, params.z)
    rows = []
    ref_sources = set(source)
    ref_word = (
        "gold"
        if ref_sources == {"gold"}
        else "the consensus"
        if ref_sources == {"consensus"}
        else "the reference"
    )
    gv = factors[schema.GUIDELINE_VERSION].to_numpy() if schema.GUIDELINE_VERSION in factors.columns else None
    for i, residual_score in picks:
        gr = cands[i]
        dom, dom_n, n_dis = dominant_share(gr.rows, conf_code, n_conf)
        gdom, gdom_n, _ = given_pattern(gr.rows, given_code, n_given)
        given_from = ""
        if gdom >= 0:
            sel = gr.rows[given_code[gr.rows] == gdom]
            given_from = "' or '".join(pd.Series(truth[sel]).value_counts().index.astype(str))
        guideline = ""
        if gv is not None and schema.GUIDELINE_VERSION not in gr.conditions:
            vals = np.unique(gv[gr.rows])
            if len(vals) == 1 and vals[0] != MISSING and len(np.unique(gv)) > 1:
                guideline = str(vals[0])
        srcs = set(source[gr.rows])
        row: dict[str, object] = {
            "_conditions": gr.conditions,
            "_given": str(given_names[gdom]) if gdom >= 0 else "",
            "_given_share": gdom_n / n_dis if n_dis else 0.0,
            "_given_from": given_from,
            "annotators": ", ".join(gr.conditions.get(schema.ANNOTATOR_ID, ())),
            "conditions": describe_conditions(gr.conditions)
            + (f" & {per_name}>={gr.since}" if gr.since else ""),
            "factors": "+".join(list(gr.conditions) + ([per_name] if gr.since and per_name else [])),
            "n": gr.n,
            "n_disagree": gr.k,
            "baseline": p0,
            **{key: float(val[i]) for key, val in st.items()},
            "score": residual_score,
            "dominant_confusion": str(conf_names[dom]) if dom >= 0 else "",
            "dominant_share": dom_n / n_dis if n_dis else 0.0,
            "since_period": gr.since or "",
            "guideline_version": guideline,
            "reference": "+".join(sorted(srcs)),
        }
        rows.append(row)
    out = pd.DataFrame(rows)
    out["finding"] = [finding_text(r, per_name, ref_word) for r in out.to_dict("records")]
    out["rank"] = np.arange(1, len(out) + 1)
    out = out.drop(columns=["_conditions", "_given", "_given_share", "_given_from"])
    return out[ROOT_CAUSE_COLUMNS]
