"""Inter-annotator agreement: Krippendorff's alpha, Fleiss' kappa, Cohen's kappa against the consensus.

All statistics are nominal (labels are unordered categories) and computed from count matrices, so they
handle any number of labels per item without loops over items.

Choices:

* **Krippendorff's alpha** uses the coincidence matrix (Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability"): every item with at least two labels contributes ``n_uc n_uk / (m_u - 1)`` pairable
  values; items with a single label are not pairable and are left out. Missing and unequal numbers of
  labels per item are therefore handled exactly.
* **Fleiss' kappa** assumes the same number of ratings ``m`` for every item. Rather than a generalised
  form we report the classical statistic on the items that have the *modal* number of labels (ties go to
  the larger ``m``), and say how many items that covers. It does not apply (value ``None`` with a reason)
  when no item has two labels, fewer than two items share the modal count, or only one category is used.
* **Cohen's kappa** of each annotator against the consensus label (one rater vs a reference), which is
  the same as :func:`sklearn.metrics.cohen_kappa_score` on that annotator's items; NaN where chance
  agreement is 1 (both sides used a single, identical category).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.annotators._common import check_annotations


@dataclass(frozen=True)
class AgreementStat:
    """One agreement statistic with its coverage.

    Attributes:
        name: ``krippendorff_alpha`` or ``fleiss_kappa``.
        value: the statistic, or None when it does not apply.
        n_items: items that entered the computation.
        n_labels: labels (pairable values) that entered the computation.
        note: why the value is None, or what subset it was computed on.
    """

    name: str
    value: float | None
    n_items: int
    n_labels: int
    note: str = ""


def _item_counts(annotations: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    """Items x classes label counts."""
    ann = check_annotations(annotations)
    item_codes, _ = pd.factorize(ann[schema.ITEM_ID], sort=True)
    label_codes, classes = pd.factorize(ann[schema.LABEL], sort=True)
    counts = np.zeros((int(item_codes.max()) + 1, len(classes)), dtype=np.float64)
    np.add.at(counts, (item_codes, label_codes), 1.0)
    return counts, tuple(str(c) for c in classes)


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix ``o_ck`` from items x classes counts.

    Items with fewer than two labels are not pairable and contribute nothing.
    """
    m = counts.sum(axis=1)
    keep = m >= 2
    c = counts[keep]
    w = 1.0 / (m[keep] - 1.0)
    return (c * w[:, None]).T @ c - np.diag((c * w[:, None]).sum(axis=0))


def krippendorff_alpha_from_counts(counts: np.ndarray) -> AgreementStat:
    """Nominal Krippendorff's alpha from an items x classes count matrix."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    o = coincidence_matrix(counts)
    n_c = o.sum(axis=1)
    n = float(n_c.sum())
    n_items = int(pairable.sum())
    if n_items == 0 or n < 2:
        return AgreementStat("krippendorff_alpha", None, n_items, int(n), "no item has two or more labels")
    expected = n * n - float((n_c**2).sum())  # sum over c != k of n_c n_k
    if expected <= 0:
        return AgreementStat(
            "krippendorff_alpha",
            None,
            n_items,
            int(n),
            "only one category is used: expected disagreement is 0",
        )
    observed = n - float(np.trace(o))  # sum over c != k of o_ck
    alpha = 1.0 - (n - 1.0) * observed / expected
    return AgreementStat("krippendorff_alpha", float(alpha), n_items, int(n))


def krippendorff_alpha(annotations: pd.DataFrame) -> AgreementStat:
    """Nominal Krippendorff's alpha of the annotation table (any number of labels per item).

    Args:
        annotations: long table ``item_id, annotator_id, label``.

    Returns:
        The statistic; ``value`` is None (with ``note``) when no item has two labels or one category
        is used throughout.
    """
    counts, _ = _item_counts(annotations)
    return krippendorff_alpha_from_counts(counts)


def fleiss_kappa_from_counts(counts: np.ndarray) -> AgreementStat:
    """Fleiss' kappa on the items with the modal number of labels (see the module docstring)."""
    m_all = counts.sum(axis=1)
    rated = m_all[m_all >= 2]
    if len(rated) == 0:
        return AgreementStat("fleiss_kappa", None, 0, 0, "no item has two or more labels")
    values, freq = np.unique(rated, return_counts=True)
    m = float(values[freq == freq.max()].max())
    sub = counts[m_all == m]
    n_items = sub.shape[0]
    n_labels = int(sub.sum())
    if n_items < 2:
        return AgreementStat(
            "fleiss_kappa", None, n_items, n_labels, f"fewer than two items have the modal {int(m)} labels"
        )
    p_i = ((sub**2).sum(axis=1) - m) / (m * (m - 1.0))
    p_bar = float(p_i.mean())
    p_j = sub.sum(axis=0) / (n_items * m)
    p_e = float((p_j**2).sum())
    if p_e >= 1.0 - 1e-12:
        return AgreementStat(
            "fleiss_kappa", None, n_items, n_labels, "only one category is used: chance agreement is 1"
        )
    note = f"on the {n_items} of {int((m_all >= 2).sum())} multiply-labelled items with the modal {int(m)} labels"
    return AgreementStat("fleiss_kappa", (p_bar - p_e) / (1.0 - p_e), n_items, n_labels, note)


def fleiss_kappa(annotations: pd.DataFrame) -> AgreementStat:
    """Fleiss' kappa on the items with the modal number of labels per item.

    Args:
        annotations: long table ``item_id, annotator_id, label``.

    Returns:
        The statistic with the subset it covers in ``note``; ``value`` None with the reason when it does
        not apply.
    """
    counts, _ = _item_counts(annotations)
    return fleiss_kappa_from_counts(counts)


def confusion_counts(
    annotations: pd.DataFrame, reference: pd.Series, classes: tuple[str, ...] | None = None
) -> tuple[np.ndarray, pd.Index, tuple[str, ...]]:
    """Annotators x reference x given label counts on the items that have a reference label.

    Args:
        annotations: long table ``item_id, annotator_id, label``.
        reference: reference label (consensus or gold) indexed by ``item_id``.
        classes: label order; inferred (sorted union) when None.

    Returns:
        (counts array, annotator index, classes). Annotators with no referenced item get zero rows.
    """
    ann = check_annotations(annotations)
    ref = reference.astype(str)
    ref.index = ref.index.astype(str)
    if classes is None:
        classes = tuple(sorted(set(ann[schema.LABEL]) | set(ref)))
    annotators = pd.Index(sorted(ann[schema.ANNOTATOR_ID].unique()), name=schema.ANNOTATOR_ID)
    truth = ann[schema.ITEM_ID].map(ref)
    has = truth.notna().to_numpy()
    a = annotators.get_indexer(ann[schema.ANNOTATOR_ID][has])
    t = pd.Categorical(truth[has], categories=list(classes)).codes
    g = pd.Categorical(ann[schema.LABEL][has], categories=list(classes)).codes
    ok = (t >= 0) & (g >= 0)
    counts = np.zeros((len(annotators), len(classes), len(classes)), dtype=np.float64)
    np.add.at(counts, (a[ok], t[ok], g[ok]), 1.0)
    return counts, annotators, tuple(classes)


def kappa_from_confusions(counts: np.ndarray) -> np.ndarray:
    """Cohen's kappa per leading index of a ``... x true x given`` count array (NaN when undefined)."""
    n = counts.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        po = np.trace(counts, axis1=-2, axis2=-1) / n
        pe = (counts.sum(axis=-1) * counts.sum(axis=-2)).sum(axis=-1) / (n * n)
        kappa = (po - pe) / (1.0 - pe)
    return np.where((n > 0) & (pe < 1.0 - 1e-12), kappa, np.nan)


def cohen_kappa_vs_consensus(annotations: pd.DataFrame, consensus: pd.Series) -> pd.DataFrame:
    """Cohen's kappa and raw agreement of each annotator against the consensus labels.

    Args:
        annotations: long table ``item_id, annotator_id, label``.
        consensus: aggregated label per ``item_id`` (e.g. a fitted aggregator's ``labels_``).

    Returns:
        One row per annotator: ``annotator_id, n_consensus, agreement_consensus, kappa_consensus``.
    """
    counts, annotators, _ = confusion_counts(annotations, consensus)
    n = counts.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = np.trace(counts, axis1=1, axis2=2) / n
    return pd.DataFrame(
        {
            schema.ANNOTATOR_ID: annotators.to_numpy(),
            "n_consensus": n.astype(np.int64),
            "agreement_consensus": np.where(n > 0, agree, np.nan),
            "kappa_consensus": kappa_from_confusions(counts),
        }
    )


def agreement_summary(annotations: pd.DataFrame, consensus: pd.Series | None = None) -> dict[str, object]:
    """Overall agreement figures as a flat, JSON-friendly dict.

    Keys: ``n_items, n_annotators, n_labels, labels_per_item_mean, pairwise_agreement, krippendorff_alpha,
    krippendorff_alpha_note, fleiss_kappa, fleiss_kappa_n_items, fleiss_kappa_note`` and, with a
    consensus, ``consensus_agreement`` (share of labels equal to the consensus) and
    ``mean_kappa_consensus`` (label-weighted mean of per-annotator Cohen's kappa).
    """
    ann = check_annotations(annotations)
    counts, _ = _item_counts(ann)
    m = counts.sum(axis=1)
    multi = m >= 2
    # share of agreeing ordered pairs among all pairs within items (percent agreement)
    pairs = (m[multi] * (m[multi] - 1)).sum()
    agree_pairs = (counts[multi] * (counts[multi] - 1)).sum()
    alpha = krippendorff_alpha_from_counts(counts)
    fleiss = fleiss_kappa_from_counts(counts)
    out: dict[str, object] = {
        "n_items": int(counts.shape[0]),
        "n_annotators": int(ann[schema.ANNOTATOR_ID].nunique()),
        "n_labels": int(len(ann)),
        "labels_per_item_mean": float(m.mean()),
        "pairwise_agreement": float(agree_pairs / pairs) if pairs > 0 else None,
        "krippendorff_alpha": alpha.value,
        "krippendorff_alpha_note": alpha.note,
        "fleiss_kappa": fleiss.value,
        "fleiss_kappa_n_items": fleiss.n_items,
        "fleiss_kappa_note": fleiss.note,
    }
    if consensus is not None:
        per = cohen_kappa_vs_consensus(ann, consensus)
        n = per["n_consensus"].to_numpy(dtype=np.float64)
        agree = per["agreement_consensus"].fillna(0).to_numpy() * n
        out["consensus_agreement"] = float(agree.sum() / n.sum()) if n.sum() > 0 else None
        k = per["kappa_consensus"].to_numpy()
        ok = ~np.isnan(k) & (n > 0)
        out["mean_kappa_consensus"] = float(np.average(k[ok], weights=n[ok])) if ok.any() else None
    return out
