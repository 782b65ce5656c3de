"""Shared shape of every aggregator (after crowd-kit and scikit-learn).

``fit(annotations) -> self`` on the long table ``item_id, annotator_id, label``; learned attributes end
in ``_``:

* ``labels_``: ``pd.Series`` of aggregated labels indexed by ``item_id`` (name ``label``);
* ``probas_``: ``pd.DataFrame`` items x classes (columns = the label set, rows sum to 1);
* ``skills_``: ``pd.Series`` of per-annotator accuracy estimates indexed by ``annotator_id``;
* ``confusions_`` (where the model has them): array ``annotators x true x given``, rows sum to 1.

The label set is given to ``__init__`` (so a class nobody used still gets a column) or inferred
from the data in sorted order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.errors import NotFittedError, SchemaError


@dataclass(frozen=True)
class Encoded:
    """The annotations as integer codes, ready for vectorised algorithms."""

    item: np.ndarray  # int64 code per row
    annotator: np.ndarray  # int64 code per row
    label: np.ndarray  # int64 code per row
    items: pd.Index  # item_id per item code
    annotators: pd.Index  # annotator_id per annotator code
    classes: tuple[str, ...]  # label per class code

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_annotators(self) -> int:
        return len(self.annotators)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def encode(annotations: pd.DataFrame, classes: tuple[str, ...] | list[str] | None = None) -> Encoded:
    """Turn the long annotation table into integer codes.

    Args:
        annotations: table with ``item_id``, ``annotator_id``, ``label``.
        classes: the label set in order; inferred (sorted) when None.

    Raises:
        SchemaError: a required column is missing, or a label is outside ``classes``.
    """
    missing = [c for c in (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL) if c not in annotations.columns]
    if missing:
        raise SchemaError(
            f"annotations lack the column(s) {missing}; expected item_id, annotator_id, label "
            "(map other names with --item-col/--annotator-col/--label-col)"
        )
    item_codes, items = pd.factorize(annotations[schema.ITEM_ID].astype(str), sort=True)
    ann_codes, annotators = pd.factorize(annotations[schema.ANNOTATOR_ID].astype(str), sort=True)
    # factorize first (fast on millions of rows), then map the few distinct labels to class codes
    raw_codes, distinct = pd.factorize(annotations[schema.LABEL].astype(str), sort=True)
    distinct = [str(v) for v in distinct]
    if classes is None:
        classes = tuple(distinct)
    classes = tuple(str(c) for c in classes)
    position = {c: i for i, c in enumerate(classes)}
    unknown = [v for v in distinct if v not in position]
    if unknown:
        raise SchemaError(
            f"labels {unknown[:5]} are not in the label set {list(classes)}; "
            "add them to the label set (classes) or fix the annotations"
        )
    mapping = np.array([position[v] for v in distinct], dtype=np.int64)
    label_codes = mapping[raw_codes] if len(mapping) else np.zeros(len(raw_codes), dtype=np.int64)
    return Encoded(
        item=item_codes.astype(np.int64),
        annotator=ann_codes.astype(np.int64),
        label=label_codes,
        items=pd.Index(items, name=schema.ITEM_ID),
        annotators=pd.Index(annotators, name=schema.ANNOTATOR_ID),
        classes=classes,
    )


def vote_counts(enc: Encoded, weights: np.ndarray | None = None) -> np.ndarray:
    """Items x classes matrix of (optionally weighted) votes."""
    counts = np.zeros((enc.n_items, enc.n_classes), dtype=np.float64)
    np.add.at(counts, (enc.item, enc.label), 1.0 if weights is None else weights)
    return counts


def argmax_first(probas: np.ndarray, ties_to_last: bool = False) -> np.ndarray:
    """Row-wise argmax; ties go to the lowest class code, or with ``ties_to_last`` to the highest (on a
    severity scale listed mildest first: the more severe label)."""
    if not ties_to_last:
        return np.argmax(probas, axis=1)
    return probas.shape[1] - 1 - np.argmax(probas[:, ::-1], axis=1)


def ties_to_last(tie_break: str | None, ordinal: bool) -> bool:
    """Whether ties between labels go to the later-listed one: ``last``/``severe``, or unset on an ordinal
    scale (the more severe label); else to the earlier-listed one."""
    return bool(ordinal) if tie_break is None else tie_break in ("last", "severe")


class BaseAggregator:
    """Common plumbing: label set, result frames, fitted check."""

    #: short name used by ``--method`` and ``aggregate.method``
    name: str = "base"
    #: ties between labels go to the later-listed one (set by ``make_aggregator``; default: the earlier)
    ties_to_last: bool = False

    def __init__(self, classes: tuple[str, ...] | list[str] | None = None) -> None:
        self.classes = classes

    def fit(self, annotations: pd.DataFrame) -> BaseAggregator:  # pragma: no cover - interface
        raise NotImplementedError

    def fit_predict(self, annotations: pd.DataFrame) -> pd.Series:
        return self.fit(annotations).labels_

    def _check_fitted(self) -> None:
        if not hasattr(self, "probas_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(annotations) first")

    def _set_results(
        self, enc: Encoded, probas: np.ndarray, skills: np.ndarray, decide: np.ndarray | None = None
    ) -> None:
        """Store the results; the label is the argmax of ``decide`` when given, else of ``probas``."""
        probas = probas / probas.sum(axis=1, keepdims=True)
        self.classes_ = enc.classes
        self.probas_ = pd.DataFrame(probas, index=enc.items, columns=list(enc.classes))
        winners = argmax_first(probas if decide is None else decide, self.ties_to_last)
        self.labels_ = pd.Series(
            np.asarray(enc.classes, dtype=object)[winners], index=enc.items, name=schema.LABEL
        )
        self.skills_ = pd.Series(skills, index=enc.annotators, name="skill")

    def result_frame(self) -> pd.DataFrame:
        """``item_id, label, confidence, proba_<class>...``: the curated-label contract.

        ``confidence`` is the probability of the chosen label.
        """
        self._check_fitted()
        out = pd.DataFrame(
            {schema.ITEM_ID: self.labels_.index.astype(str), schema.LABEL: self.labels_.values}
        )
        codes = pd.Index(self.classes_).get_indexer(self.labels_.to_numpy())
        out[schema.CONFIDENCE] = self.probas_.to_numpy()[np.arange(len(codes)), codes]
        for cls in self.classes_:
            out[schema.proba_column(cls)] = self.probas_[cls].to_numpy()
        return out
