"""Row-level diff of two data set versions (DataFrames in, a dataclass out; no I/O).

The labels table (``item_id, label, ...``: the curated labels, or the training sample a model was fitted
on) of a base and a candidate version are compared item by item: items added (only in the candidate),
removed (only in the base), and labels changed (in both, different label), with the class transition
matrix over the items in both. When the annotations the labels were aggregated from are given, the
changed items are broken down by annotator and by batch, and the annotation rows themselves are counted
(added, removed, relabelled). :func:`changes_by_group` counts the changes per label and per item group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from labelcycle import catalog, schema
from labelcycle.errors import SchemaError, ValidationError

BASE_LABEL = "base_label"
CANDIDATE_LABEL = "candidate_label"
#: transition matrix row/column for "no label in this version" (item added or removed)
ABSENT = "<absent>"


@dataclass(frozen=True)
class DatasetDiff:
    """What changed between two curated data set versions.

    Attributes:
        items_base, items_candidate: items in each version.
        items_added: items only in the candidate.
        items_removed: items only in the base.
        items_common: items in both.
        labels_changed: items in both whose label differs.
        transitions: base label (rows) x candidate label (columns) counts over the common items; the
            diagonal holds unchanged items. Rows and columns cover the union of labels seen.
        changed: one row per changed item: ``item_id, base_label, candidate_label``.
        by_annotator: per annotator: ``annotator_id, items_changed`` (changed items they annotated),
            ``agrees_with_base``, ``agrees_with_candidate`` (their label on those items); empty without
            annotations.
        by_batch: per batch: ``batch, items_changed, items_added, items_removed``; empty without
            annotations.
        by_method: one row ``method_base, method_candidate, items_added, items_removed, labels_changed``.
        annotations: annotation-row counts: ``base``, ``candidate``, ``added``, ``removed``,
            ``relabelled`` (same item and annotator, different label) and ``items_count_changed`` (items
            whose number of annotations differs); empty without annotations.
        added: one row per added item: ``item_id, candidate_label``.
        removed: one row per removed item: ``item_id, base_label``.
    """

    items_base: int
    items_candidate: int
    items_added: int
    items_removed: int
    items_common: int
    labels_changed: int
    transitions: pd.DataFrame
    changed: pd.DataFrame
    by_annotator: pd.DataFrame
    by_batch: pd.DataFrame
    by_method: pd.DataFrame
    annotations: dict[str, int] = field(default_factory=dict)
    added: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=[schema.ITEM_ID, CANDIDATE_LABEL])
    )
    removed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=[schema.ITEM_ID, BASE_LABEL]))

    def to_dict(self, max_rows: int = 50) -> dict[str, Any]:
        """JSON-ready summary (tables cut to ``max_rows`` rows, largest first)."""
        return {
            "items_base": self.items_base,
            "items_candidate": self.items_candidate,
            "items_added": self.items_added,
            "items_removed": self.items_removed,
            "items_common": self.items_common,
            "labels_changed": self.labels_changed,
            "transitions": {
                str(r): {str(c): int(v) for c, v in row.items()} for r, row in self.transitions.iterrows()
            },
            "by_annotator": self.by_annotator.head(max_rows).to_dict(orient="records"),
            "by_batch": self.by_batch.head(max_rows).to_dict(orient="records"),
            "by_method": self.by_method.to_dict(orient="records"),
            "annotations": dict(self.annotations),
        }


def _check_labels(df: pd.DataFrame, name: str) -> pd.Series:
    missing = [c for c in (schema.ITEM_ID, schema.LABEL) if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{name} curated labels lack column(s) {missing}; expected the curated-label table "
            f"({schema.ITEM_ID}, {schema.LABEL}, ...) from {catalog.LABELS}"
        )
    ids = df[schema.ITEM_ID].astype(str)
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].unique()[:3].tolist()
        raise ValidationError(
            f"{name} curated labels have duplicated item ids (e.g. {dup!r}); one row per item"
        )
    return pd.Series(
        df[schema.LABEL].astype(str).to_numpy(), index=pd.Index(ids.to_numpy(), name=schema.ITEM_ID)
    )


def _check_annotations(df: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL) if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{name} annotations lack column(s) {missing}; expected item_id, annotator_id, label"
        )
    out = pd.DataFrame({col: _text(df[col]) for col in (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL)})
    batch_col = (
        schema.BATCH_ID
        if schema.BATCH_ID in df.columns
        else (schema.RAW_BATCH if schema.RAW_BATCH in df.columns else None)
    )
    out["batch"] = _text(df[batch_col]) if batch_col else "<unknown>"
    return out


def _text(values: pd.Series) -> pd.Series:
    """``values`` as pandas text (kept Arrow-backed: hashing, joins and ``isin`` stay in Arrow, with no
    Python string per row), on a fresh 0..n-1 index."""
    return values.astype(str).reset_index(drop=True)


def _transitions(base: pd.Series, cand: pd.Series) -> pd.DataFrame:
    labels = sorted(set(base.unique()) | set(cand.unique()))
    if len(base) == 0:
        return pd.DataFrame(
            0, index=pd.Index(labels, name=BASE_LABEL), columns=pd.Index(labels, name=CANDIDATE_LABEL)
        )
    table = pd.crosstab(
        pd.Categorical(base.to_numpy(), categories=labels),
        pd.Categorical(cand.to_numpy(), categories=labels),
        dropna=False,
    )
    table.index = pd.Index(labels, name=BASE_LABEL)
    table.columns = pd.Index(labels, name=CANDIDATE_LABEL)
    return table.astype("int64")


def _by_annotator(changed: pd.DataFrame, ann: pd.DataFrame) -> pd.DataFrame:
    cols = [schema.ANNOTATOR_ID, "items_changed", "agrees_with_base", "agrees_with_candidate"]
    if changed.empty or ann.empty:
        return pd.DataFrame(columns=cols)
    a = ann[ann[schema.ITEM_ID].isin(changed[schema.ITEM_ID])]  # few rows: filter before joining
    a = a.merge(changed, on=schema.ITEM_ID, how="inner")
    a = a.drop_duplicates([schema.ITEM_ID, schema.ANNOTATOR_ID])
    out = (
        a.assign(
            agrees_with_base=(a[schema.LABEL] == a[BASE_LABEL]).astype("int64"),
            agrees_with_candidate=(a[schema.LABEL] == a[CANDIDATE_LABEL]).astype("int64"),
        )
        .groupby(schema.ANNOTATOR_ID)
        .agg(
            items_changed=(schema.ITEM_ID, "nunique"),
            agrees_with_base=("agrees_with_base", "sum"),
            agrees_with_candidate=("agrees_with_candidate", "sum"),
        )
        .reset_index()
    )
    return out.sort_values(["items_changed", schema.ANNOTATOR_ID], ascending=[False, True]).reset_index(
        drop=True
    )[cols]


def _by_batch(
    changed_ids: pd.Index, added: pd.Index, removed: pd.Index, base_ann: pd.DataFrame, cand_ann: pd.DataFrame
) -> pd.DataFrame:
    cols = ["batch", "items_changed", "items_added", "items_removed"]
    if base_ann.empty and cand_ann.empty:
        return pd.DataFrame(columns=cols)
    both = pd.concat([base_ann, cand_ann], ignore_index=True)
    parts = {}
    for name, ids, src in (
        ("items_changed", changed_ids, both),
        ("items_added", added, cand_ann),
        ("items_removed", removed, base_ann),
    ):
        sub = src.loc[src[schema.ITEM_ID].isin(ids), [schema.ITEM_ID, "batch"]]  # filter first: few rows
        parts[name] = sub.groupby("batch")[schema.ITEM_ID].nunique()
    out = pd.DataFrame(parts).fillna(0).astype("int64")
    out = out[(out > 0).any(axis=1)]
    out.index.name = "batch"
    return (
        out.reset_index()
        .sort_values(["items_changed", "batch"], ascending=[False, True])
        .reset_index(drop=True)[cols]
    )


def _annotation_counts(base_ann: pd.DataFrame, cand_ann: pd.DataFrame) -> dict[str, int]:
    # integer keys (item code * annotators + annotator code) instead of a merge on two string columns
    both = pd.concat([base_ann, cand_ann], ignore_index=True)
    item_codes, _ = pd.factorize(both[schema.ITEM_ID])
    ann_codes, annotators = pd.factorize(both[schema.ANNOTATOR_ID])
    label_codes, _ = pd.factorize(both[schema.LABEL])
    key = item_codes.astype(np.int64) * max(len(annotators), 1) + ann_codes
    nb = len(base_ann)
    kb = pd.Series(label_codes[:nb], index=key[:nb])
    kc = pd.Series(label_codes[nb:], index=key[nb:])
    kb = kb[~kb.index.duplicated()]
    kc = kc[~kc.index.duplicated()]
    common = kb.index.intersection(kc.index)
    per_item_b = np.bincount(item_codes[:nb], minlength=item_codes.max() + 1 if len(both) else 0)
    per_item_c = np.bincount(item_codes[nb:], minlength=item_codes.max() + 1 if len(both) else 0)
    return {
        "base": int(nb),
        "candidate": int(len(cand_ann)),
        "added": int(len(kc.index.difference(kb.index))),
        "removed": int(len(kb.index.difference(kc.index))),
        "relabelled": int((kb.loc[common].to_numpy() != kc.loc[common].to_numpy()).sum()),
        "items_count_changed": int((per_item_b != per_item_c).sum()),
    }


def diff_datasets(
    base_labels: pd.DataFrame,
    candidate_labels: pd.DataFrame,
    *,
    base_annotations: pd.DataFrame | None = None,
    candidate_annotations: pd.DataFrame | None = None,
    base_method: str | None = None,
    candidate_method: str | None = None,
) -> DatasetDiff:
    """Row-level diff of two curated label tables.

    Args:
        base_labels, candidate_labels: curated labels (``item_id``, ``label``, ...), one row per item.
        base_annotations, candidate_annotations: the annotations each version was aggregated from
            (``item_id, annotator_id, label`` and optionally ``batch_id`` / ``raw_batch``); when either is
            missing, the by-annotator, by-batch and annotation counts are empty.
        base_method, candidate_method: the aggregation method of each version, when known.

    Raises:
        SchemaError: a table lacks a required column.
        ValidationError: duplicated item ids in a label table.
    """
    b = _check_labels(base_labels, "base")
    c = _check_labels(candidate_labels, "candidate")
    common = b.index.intersection(c.index)
    added = c.index.difference(b.index)
    removed = b.index.difference(c.index)
    bl, cl = b.loc[common], c.loc[common]
    diff_mask = bl.to_numpy() != cl.to_numpy()
    changed = (
        pd.DataFrame(
            {
                schema.ITEM_ID: common[diff_mask].to_numpy(),
                BASE_LABEL: bl.to_numpy()[diff_mask],
                CANDIDATE_LABEL: cl.to_numpy()[diff_mask],
            }
        )
        .sort_values(schema.ITEM_ID, kind="stable")
        .reset_index(drop=True)
    )
    has_ann = base_annotations is not None and candidate_annotations is not None
    if has_ann:
        ba = _check_annotations(base_annotations, "base")  # type: ignore[arg-type]
        ca = _check_annotations(candidate_annotations, "candidate")  # type: ignore[arg-type]
        by_annotator = _by_annotator(changed, ca)
        by_batch = _by_batch(pd.Index(changed[schema.ITEM_ID]), added, removed, ba, ca)
        ann_counts = _annotation_counts(ba, ca)
    else:
        by_annotator = _by_annotator(changed, pd.DataFrame())
        by_batch = pd.DataFrame(columns=["batch", "items_changed", "items_added", "items_removed"])
        ann_counts = {}
    by_method = pd.DataFrame(
        [
            {
                "method_base": base_method or "unknown",
                "method_candidate": candidate_method or "unknown",
                "items_added": int(len(added)),
                "items_removed": int(len(removed)),
                "labels_changed": int(diff_mask.sum()),
            }
        ]
    )
    return DatasetDiff(
        items_base=int(len(b)),
        items_candidate=int(len(c)),
        items_added=int(len(added)),
        items_removed=int(len(removed)),
        items_common=int(len(common)),
        labels_changed=int(diff_mask.sum()),
        transitions=_transitions(bl, cl),
        changed=changed,
        by_annotator=by_annotator,
        by_batch=by_batch,
        by_method=by_method,
        annotations=ann_counts,
        added=pd.DataFrame({schema.ITEM_ID: added.to_numpy(), CANDIDATE_LABEL: c.loc[added].to_numpy()}),
        removed=pd.DataFrame({schema.ITEM_ID: removed.to_numpy(), BASE_LABEL: b.loc[removed].to_numpy()}),
    )


#: the columns of :func:`changes_by_group`
GROUP_COLUMNS = [
    "group_column",
    "group_value",
    "items_base",
    "items_candidate",
    "added",
    "removed",
    "relabelled",
]


def changes_by_group(
    base: pd.DataFrame, candidate: pd.DataFrame, diff: DatasetDiff, columns: Sequence[str] = ()
) -> pd.DataFrame:
    """What changed in each group of items between two label tables (``diff`` is their :func:`diff_datasets`).

    Groups are the labels (``group_column`` = ``label``: an added item counts in its candidate label, a
    removed one in its base label, a relabelled one in both) and the values of each item column in
    ``columns`` (an item's value is taken from the candidate, else the base).

    Returns:
        One row per group: ``group_column, group_value, items_base, items_candidate, added, removed,
        relabelled`` (items in the group in each version, and the changes).
    """
    rows = []
    changed = diff.changed
    for label in sorted(set(base[schema.LABEL].astype(str)) | set(candidate[schema.LABEL].astype(str))):
        rows.append(
            {
                "group_column": schema.LABEL,
                "group_value": label,
                "items_base": int((base[schema.LABEL].astype(str) == label).sum()),
                "items_candidate": int((candidate[schema.LABEL].astype(str) == label).sum()),
                "added": int((diff.added[CANDIDATE_LABEL] == label).sum()),
                "removed": int((diff.removed[BASE_LABEL] == label).sum()),
                "relabelled": int(
                    ((changed[BASE_LABEL] == label) | (changed[CANDIDATE_LABEL] == label)).sum()
                ),
            }
        )
    for col in columns:
        if col not in base.columns and col not in candidate.columns:
            continue
        value = pd.concat(
            [
                frame.set_index(frame[schema.ITEM_ID].astype(str))[col].astype(str)
                for frame in (candidate, base)
                if col in frame.columns
            ]
        )
        value = value[~value.index.duplicated()]
        for v in sorted(value.unique()):
            ids = set(value.index[value == v])
            rows.append(
                {
                    "group_column": col,
                    "group_value": v,
                    "items_base": int(base[schema.ITEM_ID].astype(str).isin(ids).sum()),
                    "items_candidate": int(candidate[schema.ITEM_ID].astype(str).isin(ids).sum()),
                    "added": int(diff.added[schema.ITEM_ID].isin(ids).sum()),
                    "removed": int(diff.removed[schema.ITEM_ID].isin(ids).sum()),
                    "relabelled": int(changed[schema.ITEM_ID].isin(ids).sum()),
                }
            )
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)
