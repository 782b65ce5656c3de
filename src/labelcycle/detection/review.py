"""The review loop: which items to send back to people, and what comes back.

Pure functions on DataFrames: :func:`item_priorities` turns annotation error scores and the consensus
into one priority per item, :func:`select_for_review` picks a budget (optionally stratified),
:func:`review_sheet` makes the file reviewers work from (:func:`export_sheet` does all three for the
pipeline's tables), and :func:`parse_review` validates what they return into an annotations table.

Reviewers are not crowd annotators: every reviewer id is recorded as ``reviewer:<id>``
(:func:`reviewer_annotator_id`), so a reviewer called ``alice`` never merges with a crowd annotator
``alice`` in the aggregation or the annotator profiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.detection.model import SCORE
from labelcycle.errors import SchemaError, ValidationError

PRIORITY = "priority"
DOUBT = "label_doubt"
UNCERTAINTY = "uncertainty"
CURRENT = "current_label"
REVIEW_LABEL = "review_label"
REVIEWER = "reviewer_id"
LABELS_SEEN = "labels_seen"
#: the prefix that keeps reviewer ids apart from crowd annotator ids
REVIEWER_PREFIX = "reviewer:"
STRATEGIES = ("error_model", "uncertainty", "random")
#: the columns a review sheet adds beside the item id and the item's fields
REVIEW_COLUMNS = (CURRENT, DOUBT, UNCERTAINTY, "n_annotations", PRIORITY, LABELS_SEEN, REVIEW_LABEL, REVIEWER)


def item_priorities(scores: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """One row per item: how worth re-reviewing it is.

    Args:
        scores: annotation error scores (``item_id, label, label_error_score``).
        labels: consensus per item (``item_id, label, confidence``).

    Returns:
        ``item_id, current_label, label_doubt, uncertainty, priority, n_annotations`` sorted by priority
        (highest first, ties by item_id). ``label_doubt`` is the mean error score of the annotations
        that support the current label (1 when none does); ``uncertainty`` is one minus the consensus
        confidence; ``priority = 1 - (1 - label_doubt) * (1 - uncertainty)``.
    """
    for name, df, cols in (
        ("scores", scores, (schema.ITEM_ID, schema.LABEL, SCORE)),
        ("labels", labels, (schema.ITEM_ID, schema.LABEL, schema.CONFIDENCE)),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise SchemaError(f"the {name} table lacks the column(s) {missing}; expected {list(cols)}")
    cur = labels.set_index(labels[schema.ITEM_ID].astype(str))
    s = scores.assign(**{schema.ITEM_ID: scores[schema.ITEM_ID].astype(str)})
    s = s[s[schema.ITEM_ID].isin(cur.index)]
    support = s[
        s[schema.LABEL].astype(str).to_numpy()
        == cur[schema.LABEL].astype(str).reindex(s[schema.ITEM_ID]).to_numpy()
    ]
    doubt = support.groupby(schema.ITEM_ID)[SCORE].mean().reindex(cur.index).fillna(1.0)
    n = s.groupby(schema.ITEM_ID).size().reindex(cur.index).fillna(0).astype("int64")
    unc = 1.0 - cur[schema.CONFIDENCE].astype("float64")
    out = pd.DataFrame(
        {
            schema.ITEM_ID: cur.index.to_numpy(),
            CURRENT: cur[schema.LABEL].astype(str).to_numpy(),
            DOUBT: doubt.to_numpy(),
            UNCERTAINTY: unc.to_numpy(),
            "n_annotations": n.to_numpy(),
        }
    )
    out[PRIORITY] = 1.0 - (1.0 - out[DOUBT]) * (1.0 - out[UNCERTAINTY])
    return out.sort_values([PRIORITY, schema.ITEM_ID], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )


def select_for_review(
    priorities: pd.DataFrame,
    budget: int,
    by: str = PRIORITY,
    stratify: pd.Series | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The ``budget`` items to review.

    Args:
        priorities: one row per item with the column ``by`` (higher = review first).
        budget: number of items (capped at the number of items).
        by: the ranking column, or ``"random"`` for a seeded random sample.
        stratify: a stratum per row of ``priorities`` (same index); the budget is shared out in
            proportion to stratum sizes (largest remainders), every stratum ranked on its own.
        seed: seed of the random ranking.

    Raises:
        ValidationError: the budget is not positive.
    """
    if budget < 1:
        raise ValidationError(f"the review budget must be a positive number of items, got {budget}")
    budget = min(budget, len(priorities))
    if by == "random":
        key = pd.Series(np.random.default_rng(seed).random(len(priorities)), index=priorities.index)
    else:
        key = priorities[by].astype("float64")
    ranked = priorities.assign(_key=key.to_numpy()).sort_values(
        ["_key", schema.ITEM_ID], ascending=[False, True], kind="stable"
    )
    if stratify is None:
        return ranked.head(budget).drop(columns="_key").reset_index(drop=True)
    strata = stratify.reindex(ranked.index).astype(str)
    sizes = strata.value_counts().sort_index()
    exact = sizes / sizes.sum() * budget
    alloc = np.floor(exact).astype(int)
    rest = budget - int(alloc.sum())
    if rest > 0:
        order = (exact - alloc).sort_values(ascending=False, kind="stable").index[:rest]
        alloc[order] += 1
    parts = [ranked[strata == s].head(int(alloc[s])) for s in sizes.index]
    picked = pd.concat(parts).sort_values(["_key", schema.ITEM_ID], ascending=[False, True], kind="stable")
    return picked.drop(columns="_key").reset_index(drop=True)


def review_sheet(
    selected: pd.DataFrame, annotations: pd.DataFrame, items: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The file reviewers work from: selected items, the labels seen, features, blank review columns."""
    seen = (
        annotations.assign(**{schema.ITEM_ID: annotations[schema.ITEM_ID].astype(str)})
        .groupby(schema.ITEM_ID)[schema.LABEL]
        .agg(lambda s: "|".join(f"{k}:{v}" for k, v in s.astype(str).value_counts().sort_index().items()))
    )
    out = selected.copy()
    out[LABELS_SEEN] = out[schema.ITEM_ID].map(seen).fillna("")
    if items is not None and items.shape[1] > 1:
        out = out.merge(
            items.assign(**{schema.ITEM_ID: items[schema.ITEM_ID].astype(str)}), on=schema.ITEM_ID, how="left"
        )
    out[REVIEW_LABEL] = ""
    out[REVIEWER] = ""
    return out


def stratum_columns(items: pd.DataFrame | None) -> list[str]:
    """What the budget may be stratified by: ``label`` (the current label) or an item feature column."""
    return ["label", *(schema.feature_columns(list(items.columns)) if items is not None else [])]


def export_sheet(
    scores: pd.DataFrame,
    labels: pd.DataFrame,
    annotations: pd.DataFrame,
    budget: int,
    *,
    by: str = PRIORITY,
    stratify_by: str | None = None,
    items: pd.DataFrame | None = None,
    gold: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The review sheet of the ``budget`` items most worth re-reviewing (one row per item).

    Args:
        scores: annotation error scores (``item_id, label, label_error_score``).
        labels: consensus per item (``item_id, label, confidence``).
        annotations: the annotations (for the labels each item was given).
        budget: number of items.
        by: ranking column (``priority``, ``uncertainty`` or ``label_doubt``).
        stratify_by: one of :func:`stratum_columns`, or None.
        items: item features (copied into the sheet; strata by feature), or None.
        gold: gold labels; items that have one are never sent for review.
    """
    pri = item_priorities(scores, labels)
    if gold is not None:  # audited items already have an expert label
        pri = pri[~pri[schema.ITEM_ID].isin(set(gold[schema.ITEM_ID].astype(str)))]
    pri = pri.reset_index(drop=True)
    strata = None
    if stratify_by == "label":
        strata = pri[CURRENT]
    elif stratify_by is not None and items is not None:
        by_item = items.set_index(schema.ITEM_ID)[stratify_by].astype(str)
        strata = pri[schema.ITEM_ID].map(by_item).fillna("(none)")
    return review_sheet(select_for_review(pri, budget, by=by, stratify=strata), annotations, items)


def reviewer_annotator_id(reviewer: str) -> str:
    """The annotator id of a reviewer: ``alice`` -> ``reviewer:alice`` (an id already prefixed stays)."""
    return reviewer if reviewer.startswith(REVIEWER_PREFIX) else REVIEWER_PREFIX + reviewer


def parse_review(
    batch: pd.DataFrame,
    classes: tuple[str, ...] | list[str],
    known_items: pd.Series,
    source: str = "batch",
    default_reviewer: str | None = None,
    now: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, int]:
    """Validate a returned review sheet into an annotations table.

    Rows with an empty ``review_label`` were not reviewed and are skipped. Every other row must name a
    known item, a label from the label set and a reviewer (the column, or ``default_reviewer``). The
    reviewer becomes the annotator ``reviewer:<id>`` (:func:`reviewer_annotator_id`).

    Args:
        batch: the sheet as read (``item_id, review_label`` and optionally ``reviewer_id``).
        classes: the label set.
        known_items: item ids the project knows (reviews of other items are rejected).
        source: file name for messages.
        default_reviewer: reviewer id for rows without one.
        now: timestamp for ``created_at`` (default: now, UTC).

    Returns:
        ``(annotations, n_skipped)`` with ``item_id, annotator_id, label, created_at, batch_id``.

    Raises:
        SchemaError: the sheet lacks ``item_id`` or ``review_label``.
        ValidationError: a row has an unknown item or label, no reviewer, or a reviewer reviewed the same
            item twice; or nothing was reviewed.
    """
    missing = [c for c in (schema.ITEM_ID, REVIEW_LABEL) if c not in batch.columns]
    if missing:
        raise SchemaError(
            f"{source}: missing column(s) {missing}; return the sheet made by `labelcycle review export` with "
            f"the {REVIEW_LABEL} column filled in"
        )
    rows = pd.Series(np.arange(2, len(batch) + 2), index=batch.index)  # file line numbers (header = 1)
    label = batch[REVIEW_LABEL].fillna("").astype(str).str.strip()
    done = label != ""
    if not done.any():
        raise ValidationError(f"{source}: no row has a {REVIEW_LABEL}; fill in the labels and import again")
    reviewer = (
        batch[REVIEWER].fillna("").astype(str).str.strip()
        if REVIEWER in batch.columns
        else pd.Series("", index=batch.index)
    )
    if default_reviewer:
        reviewer = reviewer.where(reviewer != "", default_reviewer)
    item = batch[schema.ITEM_ID].fillna("").astype(str).str.strip()
    classes = [str(c) for c in classes]
    problems = []
    for mask, what in (
        (done & ~label.isin(classes), lambda r: f"{REVIEW_LABEL} {label[r]!r} is not one of {classes}"),
        (
            done & ~item.isin(set(pd.Series(known_items).astype(str))),
            lambda r: f"item {item[r]!r} is not in the project",
        ),
        (done & (reviewer == ""), lambda r: f"no {REVIEWER} (fill it in or pass --reviewer)"),
        (
            done & pd.DataFrame({"i": item, "r": reviewer}).duplicated(keep="first"),
            lambda r: f"reviewer {reviewer[r]!r} reviewed item {item[r]!r} twice",
        ),
    ):
        problems += [f"row {rows[r]}: {what(r)}" for r in batch.index[mask]]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValidationError(
            f"{source}: {len(problems)} invalid review row(s): {shown}. Fix them and import again"
        )
    now = now or pd.Timestamp.now(tz="UTC")
    out = pd.DataFrame(
        {
            schema.ITEM_ID: item[done].to_numpy(),
            schema.ANNOTATOR_ID: reviewer[done].map(reviewer_annotator_id).to_numpy(),
            schema.LABEL: label[done].to_numpy(),
            schema.CREATED_AT: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            schema.BATCH_ID: f"review-{now.strftime('%Y%m%d')}",
        }
    )
    return out, int((~done).sum())
