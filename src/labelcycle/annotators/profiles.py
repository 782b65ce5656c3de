"""Annotator profiles: one row per annotator with quality, spam, speed and drift signals.

Signals and how they are defined:

* ``accuracy_est`` (model-based): with ``confusions_`` on the aggregator, the prior-weighted diagonal
  ``sum_k p_k pi_j[k, k]`` (``p`` = mean of ``probas_``); otherwise the aggregator's ``skills_``.
* ``gold_accuracy`` / ``n_gold``: share of the annotator's labels on gold items equal to gold.
* ``agreement_consensus`` / ``kappa_consensus``: raw agreement and Cohen's kappa against the consensus.
* ``rank_one_distance``: Raykar & Yu (2011, "Ranking annotators for crowdsourced labeling tasks") spammer
  measure ``S = 1/(K'(K'-1)) sum_{c<c'} sum_k (a_ck - a_c'k)^2`` of the annotator's confusion matrix ``A``
  (true x given, rows sum to 1): the scaled squared Frobenius distance of ``A`` from the nearest rank-one
  matrix ``e a^T``. A spammer's label does not depend on the true class, so every row is the same and
  ``S = 0`` (random clickers and constant clickers alike); a perfect annotator has ``S = 1``. ``A`` is the
  aggregator's ``confusions_`` when it has them, otherwise counts against the consensus smoothed with a
  uniform Dirichlet prior of ``prior_strength`` pseudo-labels per row, over the ``K'`` true classes the
  annotator has seen.
* ``spammer_score = 1 - sqrt(S * max(kappa_consensus, 0))``: one minus the geometric mean of "labels
  depend on the truth" (S) and "chance-corrected agreement" (kappa). High = spammer-like. The geometric
  mean needs both to be good: S alone is blind to an adversarial annotator (a permuted confusion has
  S = 1), kappa alone is noisy and conflates hard items with spam. ``is_spammer`` = score above
  ``spammer_threshold`` (0.85: S * kappa below ~0.02, labels nearly independent of the truth; a poor but
  informative annotator, e.g. a fatigued one at 55% accuracy, scores about 0.7-0.8 and is not a spammer)
  with at least ``min_labels`` labels.
* ``median_duration_s``, ``duration_ratio`` (annotator median over the median of all labels),
  ``fast_label_share`` (share of the annotator's labels faster than the population's 10th percentile)
  and ``is_fast_clicker`` (``duration_ratio <= fast_ratio`` with at least ``min_labels`` labels).
* ``drift_slope``: label-weighted least-squares slope of the per-period agreement with the consensus
  (periods = batches, or ISO weeks of ``created_at``; see :func:`annotator_drift`), in agreement per
  period; negative = getting worse. ``n_periods`` says how many periods it rests on.
* ``severity_bias`` (ordinal label sets only, :func:`severity_bias`): mean signed difference, in steps of
  the severity scale, between the annotator's label and the consensus, with a 95% interval; ``flags`` says
  ``over`` (interval above 0: more severe than the consensus) or ``under`` (below 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.annotators._common import (
    check_annotations,
    check_gold,
    classes_of,
    consensus_of,
    periods,
    wilson,
)
from labelcycle.annotators.agreement import confusion_counts, kappa_from_confusions
from labelcycle.params import ProfileParams

DRIFT_COLUMNS = [
    schema.ANNOTATOR_ID,
    "period",
    "period_index",
    "n",
    "n_agree",
    "agreement",
    "agreement_lo",
    "agreement_hi",
    "period_agreement",
    "n_gold",
    "gold_accuracy",
]


def rank_one_distance(confusions: np.ndarray, observed: np.ndarray | None = None) -> np.ndarray:
    """Raykar & Yu spammer measure per annotator (0 = spammer, 1 = perfect).

    Args:
        confusions: ``annotators x true x given`` row-stochastic array.
        observed: ``annotators x true`` mask of rows to use (all when None); NaN where fewer than two.

    Returns:
        ``S`` per annotator.
    """
    conf = np.asarray(confusions, dtype=np.float64)
    n_ann, k, _ = conf.shape
    if observed is None:
        observed = np.ones((n_ann, k), dtype=bool)
    # sum over c<c' of ||a_c - a_c'||^2 = K' * sum_c ||a_c||^2 - ||sum_c a_c||^2 over the used rows
    masked = conf * observed[:, :, None]
    kk = observed.sum(axis=1).astype(np.float64)
    total = kk * (masked**2).sum(axis=(1, 2)) - (masked.sum(axis=1) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = total / (kk * (kk - 1.0))
    return np.where(kk >= 2, np.clip(s, 0.0, 1.0), np.nan)


def annotator_confusions(
    annotations: pd.DataFrame,
    reference: pd.Series,
    classes: tuple[str, ...] | None = None,
    reference_name: str = "consensus",
) -> pd.DataFrame:
    """Per-annotator confusion matrices against a reference, in long form.

    Args:
        annotations: long table ``item_id, annotator_id, label``.
        reference: reference label per ``item_id`` (consensus or gold).
        classes: label order; inferred when None.
        reference_name: value of the ``reference`` column (``consensus`` or ``gold``).

    Returns:
        ``annotator_id, reference, true_label, given_label, n, row_share``: every (true, given) pair for
        every annotator (zeros included) so that a pivot gives the full square matrix; ``row_share`` is
        ``n`` over the true-label row total (NaN for an empty row).
    """
    counts, annotators, classes = confusion_counts(annotations, reference, classes)
    n_ann, k, _ = counts.shape
    rows = counts.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(rows > 0, counts / rows, np.nan)
    cls = np.asarray(classes, dtype=object)
    return pd.DataFrame(
        {
            schema.ANNOTATOR_ID: np.repeat(annotators.to_numpy(), k * k),
            "reference": reference_name,
            "true_label": np.tile(np.repeat(cls, k), n_ann),
            "given_label": np.tile(cls, n_ann * k),
            "n": counts.reshape(-1).astype(np.int64),
            "row_share": share.reshape(-1),
        }
    )


def annotator_drift(
    annotations: pd.DataFrame, consensus: pd.Series | object, gold: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Agreement of every annotator with the consensus per period (batch, or ISO week of ``created_at``).

    Args:
        annotations: long table with ``batch_id`` or ``created_at``.
        consensus: consensus label per ``item_id``, or a fitted aggregator.
        gold: optional gold table; adds gold accuracy per period.

    Returns:
        Long table ``annotator_id, period, period_index, n, n_agree, agreement, agreement_lo,
        agreement_hi, period_agreement, n_gold, gold_accuracy`` (one row per annotator x period with
        labels; ``period_index`` is the time order, ``period_agreement`` the agreement of all annotators in
        that period, ``agreement_lo/hi`` a 95% Wilson interval). Empty (same columns) when the table has
        neither ``batch_id`` nor ``created_at``.
    """
    ann = check_annotations(annotations)
    cons = consensus if isinstance(consensus, pd.Series) else consensus_of(consensus)
    cons = pd.Series(cons.astype(str).to_numpy(), index=cons.index.astype(str))
    g = check_gold(gold)
    _, per, order = periods(ann)
    if per is None:
        return pd.DataFrame({c: [] for c in DRIFT_COLUMNS})
    ref = ann[schema.ITEM_ID].map(cons)
    frame = pd.DataFrame(
        {
            schema.ANNOTATOR_ID: ann[schema.ANNOTATOR_ID].to_numpy(),
            "period": per.to_numpy(),
            "agree": (ann[schema.LABEL] == ref).where(ref.notna()).to_numpy(dtype=np.float64),
        }
    )
    if g is not None:
        gl = ann[schema.ITEM_ID].map(g)
        frame["gold_ok"] = (ann[schema.LABEL] == gl).where(gl.notna()).to_numpy(dtype=np.float64)
    else:
        frame["gold_ok"] = np.nan
    frame = frame[frame["period"].notna()]
    grouped = frame.groupby([schema.ANNOTATOR_ID, "period"], sort=False)
    out = grouped.agg(
        n=("agree", "count"),
        n_agree=("agree", "sum"),
        n_gold=("gold_ok", "count"),
        gold_ok=("gold_ok", "sum"),
    ).reset_index()
    out["n"] = out["n"].astype(np.int64)
    out["n_agree"] = out["n_agree"].astype(np.int64)
    out["n_gold"] = out["n_gold"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["agreement"] = np.where(out["n"] > 0, out["n_agree"] / out["n"], np.nan)
        out["gold_accuracy"] = np.where(out["n_gold"] > 0, out["gold_ok"] / out["n_gold"], np.nan)
    lo, hi = wilson(out["n_agree"].to_numpy(), out["n"].to_numpy())
    out["agreement_lo"], out["agreement_hi"] = lo, hi
    pop = frame.groupby("period")["agree"].mean()
    out["period_agreement"] = out["period"].map(pop).astype(np.float64)
    index = {p: i for i, p in enumerate(order)}
    out["period_index"] = out["period"].map(index).astype(np.int64)
    out = out.sort_values([schema.ANNOTATOR_ID, "period_index"], kind="stable").reset_index(drop=True)
    return out[DRIFT_COLUMNS]


def drift_slopes(drift: pd.DataFrame) -> pd.DataFrame:
    """Label-weighted least-squares slope of agreement over period index, per annotator.

    Returns:
        ``annotator_id, drift_slope, n_periods`` (slope NaN with fewer than two periods).
    """
    d = drift[drift["n"] > 0]
    if len(d) == 0:
        return pd.DataFrame({schema.ANNOTATOR_ID: [], "drift_slope": [], "n_periods": []})
    w = d["n"].to_numpy(dtype=np.float64)
    x = d["period_index"].to_numpy(dtype=np.float64)
    y = d["agreement"].to_numpy(dtype=np.float64)
    key = d[schema.ANNOTATOR_ID].to_numpy()
    tmp = pd.DataFrame(
        {"k": key, "w": w, "wx": w * x, "wy": w * y, "wxx": w * x * x, "wxy": w * x * y, "one": 1}
    )
    s = tmp.groupby("k", sort=True).sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        sxx = s["wxx"] - s["wx"] ** 2 / s["w"]
        sxy = s["wxy"] - s["wx"] * s["wy"] / s["w"]
        slope = np.where((s["one"] >= 2) & (sxx > 1e-12), sxy / sxx, np.nan)
    return pd.DataFrame(
        {schema.ANNOTATOR_ID: s.index.to_numpy(), "drift_slope": slope, "n_periods": s["one"].to_numpy()}
    )


def _aligned_model(
    aggregator: object, annotators: pd.Index, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Model accuracy per annotator and the model confusions reindexed to ``annotators`` x ``classes``."""
    skills = getattr(aggregator, "skills_", None)
    conf = getattr(aggregator, "confusions_", None)
    acc = np.full(len(annotators), np.nan)
    if skills is None:
        return acc, None
    sk_index = pd.Index(skills.index.astype(str))
    pos = sk_index.get_indexer(annotators)
    model_classes = [str(c) for c in getattr(aggregator, "classes_", ())]
    conf_arr = None if conf is None else np.asarray(conf, dtype=np.float64)
    if (
        conf_arr is not None
        and conf_arr.ndim == 3
        and conf_arr.shape[0] == len(sk_index)
        and conf_arr.shape[1] == conf_arr.shape[2] == len(model_classes)
    ):
        probas = getattr(aggregator, "probas_", None)
        if probas is not None:
            prior = probas.reindex(columns=model_classes).mean(axis=0).fillna(0).to_numpy()
        else:
            prior = np.full(len(model_classes), 1.0 / len(model_classes))
        model_acc = np.einsum("jkk,k->j", conf_arr, prior / prior.sum())
        acc = np.where(pos >= 0, model_acc[np.maximum(pos, 0)], np.nan)
        # model confusions in our class order; a class the model does not know gets a uniform row
        cpos = pd.Index(model_classes).get_indexer(list(classes))
        k = len(classes)
        aligned = np.full((len(annotators), k, k), 1.0 / k)
        for j, p in enumerate(pos):
            if p < 0:
                aligned[j] = np.nan
                continue
            for a, ca in enumerate(cpos):
                if ca < 0:
                    continue
                row = np.zeros(k)
                ok = cpos >= 0
                row[ok] = conf_arr[p, ca, cpos[ok]]
                aligned[j, a] = row / row.sum() if row.sum() > 0 else 1.0 / k
        return acc, aligned
    sk = skills.to_numpy(dtype=np.float64)
    acc = np.where(pos >= 0, sk[np.maximum(pos, 0)], np.nan)
    return acc, None


def annotator_table(
    annotations: pd.DataFrame,
    aggregator: object,
    gold: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    params: ProfileParams | None = None,
) -> pd.DataFrame:
    """One row per annotator with quality, spam, speed and drift signals (see the module docstring).

    Args:
        annotations: long table ``item_id, annotator_id, label`` (+ optional ``duration_s``,
            ``batch_id``/``created_at``).
        aggregator: a fitted aggregator (``labels_``, ``skills_``, optional ``probas_``, ``confusions_``).
        gold: optional gold table ``item_id, label``.
        items: optional items table; accepted for interface symmetry (slices are analysed in
            :mod:`labelcycle.annotators.rootcause`).
        params: flag thresholds.

    Returns:
        Columns ``annotator_id, n_labels, n_items, accuracy_est, gold_accuracy, n_gold,
        agreement_consensus, kappa_consensus, rank_one_distance, spammer_score, is_spammer,
        median_duration_s, duration_ratio, fast_label_share, is_fast_clicker, drift_slope, n_periods``,
        sorted by ``annotator_id``.

    Raises:
        NotFittedError: the aggregator is not fitted.
        SchemaError: a table lacks required columns.
    """
    del items
    params = params or ProfileParams()
    ann = check_annotations(annotations)
    cons = consensus_of(aggregator)
    g = check_gold(gold)
    classes = classes_of(aggregator, ann, cons, g)
    counts, annotators, _ = confusion_counts(ann, cons, classes)
    n_cons = counts.sum(axis=(1, 2))

    grouped = ann.groupby(schema.ANNOTATOR_ID, sort=True)
    n_labels = grouped.size().reindex(annotators).to_numpy()
    n_items = grouped[schema.ITEM_ID].nunique().reindex(annotators).to_numpy()

    acc, model_conf = _aligned_model(aggregator, annotators, classes)
    kappa = kappa_from_confusions(counts)
    if model_conf is not None and not np.isnan(model_conf).any():
        s = rank_one_distance(model_conf)
    else:
        k = len(classes)
        rows = counts.sum(axis=2, keepdims=True)
        smoothed = (counts + params.prior_strength / k) / np.maximum(rows + params.prior_strength, 1e-12)
        s = rank_one_distance(smoothed, observed=rows[:, :, 0] > 0)
    quality = np.sqrt(np.clip(s, 0.0, 1.0) * np.clip(np.nan_to_num(kappa, nan=0.0), 0.0, 1.0))
    spam = np.where(np.isnan(s), np.nan, 1.0 - quality)

    out = pd.DataFrame(
        {
            schema.ANNOTATOR_ID: annotators.to_numpy(),
            "n_labels": n_labels.astype(np.int64),
            "n_items": n_items.astype(np.int64),
            "accuracy_est": acc,
        }
    )
    if g is not None:
        gl = ann[schema.ITEM_ID].map(g)
        ok = (ann[schema.LABEL] == gl).where(gl.notna())
        gstat = ok.groupby(ann[schema.ANNOTATOR_ID]).agg(["sum", "count"]).reindex(annotators)
        out["n_gold"] = gstat["count"].fillna(0).to_numpy(dtype=np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["gold_accuracy"] = np.where(
                out["n_gold"] > 0, gstat["sum"].to_numpy(dtype=float) / out["n_gold"], np.nan
            )
    else:
        out["n_gold"] = 0
        out["gold_accuracy"] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        out["agreement_consensus"] = np.where(n_cons > 0, np.trace(counts, axis1=1, axis2=2) / n_cons, np.nan)
    out["kappa_consensus"] = kappa
    out["rank_one_distance"] = s
    out["spammer_score"] = spam
    enough = out["n_labels"] >= params.min_labels
    out["is_spammer"] = (enough & (out["spammer_score"] >= params.spammer_threshold)).astype(bool)

    if (
        schema.DURATION_S in ann.columns
        and pd.to_numeric(ann[schema.DURATION_S], errors="coerce").notna().any()
    ):
        dur = pd.to_numeric(ann[schema.DURATION_S], errors="coerce")
        pop_median = float(dur.median())
        fast_cut = float(dur.quantile(0.10))
        med = dur.groupby(ann[schema.ANNOTATOR_ID]).median().reindex(annotators)
        fast = (
            (dur < fast_cut).where(dur.notna()).groupby(ann[schema.ANNOTATOR_ID]).mean().reindex(annotators)
        )
        out["median_duration_s"] = med.to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["duration_ratio"] = out["median_duration_s"] / pop_median if pop_median > 0 else np.nan
        out["fast_label_share"] = fast.to_numpy(dtype=np.float64)
        out["is_fast_clicker"] = (enough & (out["duration_ratio"] <= params.fast_ratio)).astype(bool)
    else:
        out["median_duration_s"] = np.nan
        out["duration_ratio"] = np.nan
        out["fast_label_share"] = np.nan
        out["is_fast_clicker"] = False

    slopes = drift_slopes(annotator_drift(ann, cons)).set_index(schema.ANNOTATOR_ID).reindex(annotators)
    out["drift_slope"] = slopes["drift_slope"].to_numpy(dtype=np.float64)
    out["n_periods"] = slopes["n_periods"].fillna(0).to_numpy(dtype=np.int64)
    return out[
        [
            schema.ANNOTATOR_ID,
            "n_labels",
            "n_items",
            "accuracy_est",
            "gold_accuracy",
            "n_gold",
            "agreement_consensus",
            "kappa_consensus",
            "rank_one_distance",
            "spammer_score",
            "is_spammer",
            "median_duration_s",
            "duration_ratio",
            "fast_label_share",
            "is_fast_clicker",
            "drift_slope",
            "n_periods",
        ]
    ]


#: :func:`severity_bias` columns
SEVERITY_COLUMNS = ["severity_n", "severity_bias", "severity_bias_lo", "severity_bias_hi", "flags"]


def severity_bias(
    annotations: pd.DataFrame, consensus: pd.Series, classes: tuple[str, ...] | list[str], z: float = 1.96
) -> pd.DataFrame:
    """Who over-flags and who under-flags on an ordinal scale (``classes`` listed mildest first).

    Per annotator: the mean of ``rank(given label) - rank(consensus label)`` over their labels on items with
    a consensus (``severity_n`` of them), a normal interval ``mean +- z * sd / sqrt(n)`` (none for n < 2),
    and ``flags``: ``over`` when the interval lies above 0, ``under`` when below, else empty. The consensus
    includes the annotator's own vote, which pulls the bias towards 0 (a conservative reading).

    Returns:
        ``annotator_id`` and :data:`SEVERITY_COLUMNS`, sorted by ``severity_bias`` (most severe first).
    """
    rank = {str(c): i for i, c in enumerate(classes)}
    ann = annotations[[schema.ANNOTATOR_ID, schema.ITEM_ID, schema.LABEL]].astype(str)
    ref = ann[schema.ITEM_ID].map(consensus.astype(str).map(rank))
    given = ann[schema.LABEL].map(rank)
    diff = pd.DataFrame({schema.ANNOTATOR_ID: ann[schema.ANNOTATOR_ID], "d": given - ref}).dropna()
    g = diff.groupby(schema.ANNOTATOR_ID)["d"]
    out = pd.DataFrame({"severity_n": g.size(), "severity_bias": g.mean(), "sd": g.std(ddof=1)})
    half = z * out["sd"] / np.sqrt(out["severity_n"])
    half = half.where(out["severity_n"] >= 2)
    out["severity_bias_lo"] = out["severity_bias"] - half
    out["severity_bias_hi"] = out["severity_bias"] + half
    out["flags"] = np.select(
        [out["severity_bias_lo"] > 0, out["severity_bias_hi"] < 0], ["over", "under"], default=""
    )
    out = out.drop(columns="sd").reset_index().sort_values("severity_bias", ascending=False, kind="stable")
    out["severity_n"] = out["severity_n"].astype("int64")
    return out[[schema.ANNOTATOR_ID, *SEVERITY_COLUMNS]].reset_index(drop=True)
