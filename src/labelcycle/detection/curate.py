"""Apply annotation error scores to the curated labels: drop, relabel or down-weight (a plan, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation import make_aggregator
from labelcycle.aggregation.base import argmax_first
from labelcycle.curation import N_ANNOTATIONS, VOTE_SHARE, curated_labels
from labelcycle.detection.model import SCORE
from labelcycle.detection.review import DOUBT, item_priorities
from labelcycle.errors import ConfigError, SchemaError

ACTIONS = ("none", "drop", "relabel", "downweight")


@dataclass(frozen=True)
class CurateResult:
    """Curated labels (the ``curated_labels`` contract) and what the action did."""

    labels: pd.DataFrame
    summary: dict[str, float | str]


def curate_labels(
    annotations: pd.DataFrame,
    labels: pd.DataFrame,
    scores: pd.DataFrame,
    classes: tuple[str, ...] | list[str],
    action: str,
    threshold: float,
    method: str = "majority_vote",
    annotator_weights: Mapping[str, float] | None = None,
    ties_to_last: bool = False,
) -> CurateResult:
    """Use the error scores on the consensus labels.

    Args:
        annotations: ``item_id, annotator_id, label``.
        labels: consensus per item (``item_id, label, confidence, proba_<class>..., n_annotations, vote_share``).
        scores: ``item_id, annotator_id, label_error_score`` per annotation.
        classes: the label set.
        action: ``none`` (keep), ``drop`` (remove items whose label doubt, the mean error score of the
            annotations that support the label, is >= threshold), ``relabel`` (remove annotations scored
            >= threshold and aggregate the remaining ones with ``method``; items left without
            annotations are dropped) or ``downweight`` (vote weights ``1 - score``; the label's
            ``confidence`` becomes the trust-weighted share of its support, for
            ``train_quality.use_confidence_weights``).
        threshold: the error-score (or doubt) cut-off.
        method: aggregator for ``relabel``.
        annotator_weights: annotator -> weight in [0, 1] multiplying the trust ``1 - score`` of its
            annotations (unnamed annotators weigh 1): the vote weight under ``downweight``; under ``relabel``
            and ``drop`` the score becomes ``1 - weight * (1 - score)``, so weight 0 removes them.
        ties_to_last: label ties go to the later-listed label (the more severe one on an ordinal scale).

    Raises:
        SchemaError: an unknown action.
    """
    if action not in ACTIONS:
        raise SchemaError(
            f"unknown curate action {action!r}; choose one of {list(ACTIONS)} (params curate.action)"
        )
    classes = tuple(str(c) for c in classes)
    key = [schema.ITEM_ID, schema.ANNOTATOR_ID]
    ann = annotations[[*key, schema.LABEL]].astype(str)
    sc = ann.merge(
        scores[[*key, SCORE]].astype({schema.ITEM_ID: str, schema.ANNOTATOR_ID: str}),
        on=key,
        how="left",
        validate="one_to_one",
    )
    unscored = int(sc[SCORE].isna().sum())
    sc[SCORE] = sc[SCORE].fillna(0.0)
    if annotator_weights:
        weight = sc[schema.ANNOTATOR_ID].map(dict(annotator_weights)).fillna(1.0)
        sc[SCORE] = (1.0 - weight * (1.0 - sc[SCORE].clip(0.0, 1.0))).clip(0.0, 1.0)
    summary: dict[str, float | str] = {
        "action": action,
        "threshold": threshold,
        "items_before": float(len(labels)),
        "annotations_unscored": float(unscored),
    }
    if action == "none":
        out = labels.copy()
    elif action == "drop":
        pri = item_priorities(sc, labels)
        doubtful = set(pri.loc[pri[DOUBT] >= threshold, schema.ITEM_ID])
        out = labels[~labels[schema.ITEM_ID].astype(str).isin(doubtful)].copy()
        summary["items_dropped"] = float(len(doubtful))
    elif action == "relabel":
        flagged = sc[SCORE] >= threshold
        keep = sc[~flagged]
        agg = make_aggregator(method, classes=classes, ties_to_last=ties_to_last).fit(keep)
        out = curated_labels(keep, agg)
        before = labels.set_index(labels[schema.ITEM_ID].astype(str))[schema.LABEL].astype(str)
        changed = (
            out.set_index(schema.ITEM_ID)[schema.LABEL].astype(str)
            != before.reindex(out[schema.ITEM_ID]).to_numpy()
        )
        summary.update(
            {
                "annotations_removed": float(flagged.sum()),
                "items_relabelled": float(changed.sum()),
                "items_dropped": float(len(labels) - len(out)),
            }
        )
    else:
        w = (1.0 - sc[SCORE]).clip(0.0, 1.0).to_numpy()
        codes, items = pd.factorize(sc[schema.ITEM_ID], sort=True)
        lab = pd.Categorical(sc[schema.LABEL], categories=list(classes)).codes
        votes = np.zeros((len(items), len(classes)))
        np.add.at(votes, (codes, lab), w)
        n = np.bincount(codes, minlength=len(items)).astype(np.float64)
        total = votes.sum(axis=1, keepdims=True)
        probas = np.where(total > 0, votes / np.where(total > 0, total, 1.0), 1.0 / len(classes))
        win = argmax_first(probas, ties_to_last)
        out = pd.DataFrame(
            {
                schema.ITEM_ID: np.asarray(items, dtype=object),
                schema.LABEL: np.asarray(classes, dtype=object)[win],
                schema.CONFIDENCE: votes[np.arange(len(items)), win] / n,
            }
        )
        for j, c in enumerate(classes):
            out[schema.proba_column(c)] = probas[:, j]
        out[N_ANNOTATIONS] = n.astype("int64")
        raw_votes = np.zeros_like(votes)
        np.add.at(raw_votes, (codes, lab), 1.0)
        out[VOTE_SHARE] = raw_votes[np.arange(len(items)), win] / n
        before = labels.set_index(labels[schema.ITEM_ID].astype(str))[schema.LABEL].astype(str)
        summary["items_relabelled"] = float(
            (out[schema.LABEL].to_numpy() != before.reindex(out[schema.ITEM_ID]).to_numpy()).sum()
        )
        summary["mean_confidence"] = float(out[schema.CONFIDENCE].mean())
    out = out.sort_values(schema.ITEM_ID).reset_index(drop=True)
    summary["items_after"] = float(len(out))
    return CurateResult(out, summary)


def without_annotators(
    annotations: pd.DataFrame, scores: pd.DataFrame, excluded: Sequence[str], named: Sequence[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``annotations`` and ``scores`` less the rows of the ``excluded`` annotators.

    Raises:
        ConfigError: an excluded or ``named`` (weighted) annotator has no annotation (a typo would
            otherwise change nothing, silently).
    """
    known = set(annotations[schema.ANNOTATOR_ID].astype(str))
    for key, names in (("exclude_annotators", excluded), ("annotator_weights", named)):
        unknown = sorted(set(map(str, names)) - known)
        if unknown:
            raise ConfigError(
                f"params.yaml: curate.{key} names annotator(s) {unknown[:5]} that judged nothing in the "
                f"annotations ({len(known)} annotators, e.g. {sorted(known)[:3]}); fix the ids in "
                f"curate.{key}"
            )
    drop = set(map(str, excluded))
    keep_ann = ~annotations[schema.ANNOTATOR_ID].astype(str).isin(drop)
    keep_sc = ~scores[schema.ANNOTATOR_ID].astype(str).isin(drop)
    return annotations[keep_ann].reset_index(drop=True), scores[keep_sc].reset_index(drop=True)
