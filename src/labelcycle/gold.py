"""Gold labels: whether they are circular (derived from the crowd they judge), and which items are worth
adjudicating into new gold.

Gold made from the crowd's own labels (e.g. the majority vote of the same annotations) cannot tell
whether the crowd, or a model trained on it, is right: metrics on it measure agreement with the crowd.
Such gold is *circular*. It is declared (``labelcycle ingest --gold g.csv --gold-from-crowd``, recorded
in the batch manifest) or detected (:func:`circularity`); either way every report that rests on it says
so (:data:`CIRCULAR`, the ``circular`` column of the gold table, :func:`warning`).

Pure functions on DataFrames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from labelcycle import schema

#: the gold table's column marking circular gold items (present only when some item is circular)
CIRCULAR = "circular"
#: where the ``--gold-from-crowd`` declaration is recorded (a raw batch's manifest origin)
FROM_CROWD = "gold_from_crowd"
#: the reports' key (split.json, metrics.json) holding the circular-gold warning
WARNING_KEY = "gold_warning"


@dataclass(frozen=True)
class Circularity:
    """What :func:`circularity` found.

    Attributes:
        declared_items: gold items from batches declared ``--gold-from-crowd``.
        compared: gold items that have annotations (compared with their majority vote).
        majority_agreement: share of those whose gold label is the unique majority label (None: none).
        detected: ``compared >= min_items`` and ``majority_agreement >= min_agreement`` (params
            ``ingest.circular_min_items`` and ``ingest.circular_min_agreement``).
    """

    declared_items: int
    compared: int
    majority_agreement: float | None
    detected: bool

    @property
    def circular(self) -> bool:
        return self.detected or self.declared_items > 0

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "circular": self.circular, "warning": self.warning()}

    def warning(self) -> str | None:
        """The warning every report carries, or None when the gold is not circular."""
        if not self.circular:
            return None
        why = []
        if self.declared_items:
            why.append(
                f"{self.declared_items} gold items were declared derived from the crowd (--gold-from-crowd)"
            )
        if self.detected:
            why.append(
                f"gold equals the annotators' majority vote on {self.majority_agreement:.1%} of "
                f"{self.compared} gold items"
            )
        return warning("; ".join(why))


def warning(reason: str) -> str:
    """The circular-gold warning with its reason."""
    return (
        f"circular gold: {reason}. Metrics on it measure agreement with the crowd, not correctness; "
        "adjudicate independent gold (`labelcycle gold sample`, then `labelcycle review import FILE --as-gold`)"
    )


def majority_labels(annotations: pd.DataFrame) -> pd.Series:
    """The unique majority label per item (items whose top labels tie are left out)."""
    counts = annotations.groupby([schema.ITEM_ID, schema.LABEL], sort=False).size().rename("n").reset_index()
    top = counts.groupby(schema.ITEM_ID)["n"].transform("max")
    best = counts[counts["n"] == top]
    unique = best[~best[schema.ITEM_ID].duplicated(keep=False)]
    return unique.set_index(schema.ITEM_ID)[schema.LABEL].astype(str)


def circularity(
    gold: pd.DataFrame,
    annotations: pd.DataFrame,
    declared: set[str] | None,
    *,
    min_agreement: float,
    min_items: int,
) -> Circularity:
    """Is ``gold`` derived from the crowd? Declared items, and the share that equals the majority vote.

    Args:
        gold: ``item_id, label``.
        annotations: the judgements the consensus uses (one per item and annotator).
        declared: item ids of gold declared derived from the crowd, or None.
        min_agreement: detected when the gold equals the unique majority label on at least this share ...
        min_items: ... of at least this many gold items that have annotations.
    """
    declared = set(declared or ())
    ids = gold[schema.ITEM_ID].astype(str)
    judged = annotations[annotations[schema.ITEM_ID].astype(str).isin(set(ids))]
    compared = int(ids.isin(set(judged[schema.ITEM_ID].astype(str))).sum())
    agreement = None
    if compared:
        majority = majority_labels(judged)
        same = gold[schema.LABEL].astype(str).to_numpy() == ids.map(majority).to_numpy()
        agreement = float(np.sum(same)) / compared
    detected = compared >= min_items and agreement is not None and agreement >= min_agreement
    return Circularity(int(ids.isin(declared).sum()), compared, agreement, bool(detected))


def mark_circular(gold: pd.DataFrame, found: Circularity, declared: set[str] | None = None) -> pd.DataFrame:
    """``gold`` with the :data:`CIRCULAR` column when some item is circular (all of them when detected,
    else the declared ones); ``gold`` unchanged otherwise."""
    if not found.circular:
        return gold
    flag = np.ones(len(gold), dtype=bool) if found.detected else gold[schema.ITEM_ID].isin(declared or set())
    return gold.assign(**{CIRCULAR: np.asarray(flag, dtype=bool)})


def split_warning(gold: pd.DataFrame) -> str | None:
    """The warning for a gold table (e.g. the eval split) that carries the :data:`CIRCULAR` column."""
    if CIRCULAR not in gold.columns or not gold[CIRCULAR].any():
        return None
    n = int(gold[CIRCULAR].sum())
    return warning(f"{n} of {len(gold)} of these gold items are derived from the crowd's own labels")


def comparison_notes(base_metrics: dict, candidate_metrics: dict) -> list[str]:
    """The circular-gold warnings of two versions' metrics.json, for ``compare``."""
    return [
        f"{role}: {m[WARNING_KEY]}"
        for role, m in (("base", base_metrics), ("candidate", candidate_metrics))
        if m.get(WARNING_KEY)
    ]


def adjudication_strata(labels: pd.DataFrame, by: pd.Series | None = None, bands: int = 3) -> pd.Series:
    """A stratum per consensus item for :func:`labelcycle.detection.review.select_for_review`: its
    consensus label (or ``by``) crossed with its uncertainty band (``bands`` quantile bands of one minus
    the consensus confidence), so a gold sample spans labels and easy as well as hard items.

    Args:
        labels: the consensus (``item_id, label, confidence``).
        by: a value per row of ``labels`` replacing the consensus label in the strata (``--stratify-by``).
        bands: uncertainty bands.
    """
    unc = 1.0 - labels[schema.CONFIDENCE].astype("float64")
    ranks = unc.rank(method="first", pct=True)
    band = np.minimum((ranks * bands).apply(np.ceil).astype(int), bands)
    names = np.array(["low", "mid", "high"] if bands == 3 else [str(b) for b in range(1, bands + 1)])
    first = (by if by is not None else labels[schema.LABEL]).astype(str)
    return first + "|uncertainty:" + pd.Series(names[band.to_numpy() - 1], index=labels.index)
