"""One entry point for the CLI and the pipeline: every annotator analysis from one fitted aggregator."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.annotators._common import check_annotations, check_gold, classes_of, consensus_of
from labelcycle.annotators.agreement import agreement_summary
from labelcycle.annotators.profiles import (
    annotator_confusions,
    annotator_drift,
    annotator_table,
)
from labelcycle.annotators.rootcause import root_causes
from labelcycle.params import AnalysisParams


@dataclass(frozen=True)
class AnnotatorAnalysis:
    """Everything :func:`analyse_annotators` found.

    Attributes:
        table: one row per annotator (:func:`~labelcycle.annotators.profiles.annotator_table`).
        drift: annotator x period agreement (:func:`~labelcycle.annotators.profiles.annotator_drift`).
        agreement: overall figures (JSON-friendly dict; see
            :func:`~labelcycle.annotators.agreement.agreement_summary`) plus ``n_spammers``,
            ``n_fast_clickers`` and, with gold, ``consensus_gold_accuracy`` / ``n_gold_items``.
        root_causes: ranked findings (:func:`~labelcycle.annotators.rootcause.root_causes`).
        confusions: per-annotator confusion counts in long form against the consensus and, with gold, gold
            (column ``reference``).
        classes: the label set, in order.
    """

    table: pd.DataFrame
    drift: pd.DataFrame
    agreement: dict[str, object]
    root_causes: pd.DataFrame
    confusions: pd.DataFrame
    classes: tuple[str, ...]

    @property
    def spammers(self) -> list[str]:
        """Annotators flagged as spammers."""
        return self.table.loc[self.table["is_spammer"], schema.ANNOTATOR_ID].tolist()

    def confusion_matrix(self, annotator_id: str, reference: str = "consensus") -> pd.DataFrame:
        """Square count matrix (rows = reference label, columns = given label) of one annotator."""
        c = self.confusions
        sub = c[(c[schema.ANNOTATOR_ID] == annotator_id) & (c["reference"] == reference)]
        m = sub.pivot(index="true_label", columns="given_label", values="n")
        return m.reindex(index=list(self.classes), columns=list(self.classes)).fillna(0).astype(np.int64)


def analyse_annotators(
    annotations: pd.DataFrame,
    aggregator: object,
    items: pd.DataFrame | None = None,
    gold: pd.DataFrame | None = None,
    params: AnalysisParams | None = None,
) -> AnnotatorAnalysis:
    """Agreement, annotator profiles, drift, confusions and root causes in one call.

    Args:
        annotations: long table ``item_id, annotator_id, label`` (+ optional ``created_at``,
            ``duration_s``, ``batch_id``, ``guideline_version``).
        aggregator: any fitted aggregator (``labels_``, ``skills_``; ``probas_`` and ``confusions_`` are
            used where present).
        items: optional items table (``item_id`` + features) for slice-level root causes.
        gold: optional gold table ``item_id, label``.
        params: settings.

    Returns:
        The analysis; the caller renders it (:func:`labelcycle.annotators.report.render_report`) or writes
        its tables.

    Raises:
        NotFittedError: the aggregator is not fitted.
        SchemaError: a table lacks required columns.
        ValidationError: the annotations are empty or gold is contradictory.
    """
    params = params or AnalysisParams()
    ann = check_annotations(annotations)
    cons = consensus_of(aggregator)
    g = check_gold(gold)
    classes = classes_of(aggregator, ann, cons, g)

    table = annotator_table(ann, aggregator, gold=gold, items=items, params=params.profile)
    drift = annotator_drift(ann, cons, gold=gold)
    agreement = agreement_summary(ann, cons)
    agreement["n_spammers"] = int(table["is_spammer"].sum())
    agreement["n_fast_clickers"] = int(table["is_fast_clicker"].sum())
    if g is not None:
        common = cons.index.intersection(g.index)
        agreement["n_gold_items"] = int(len(common))
        agreement["consensus_gold_accuracy"] = (
            float((cons[common] == g[common]).mean()) if len(common) else None
        )
    confusions = [annotator_confusions(ann, cons, classes, "consensus")]
    if g is not None:
        confusions.append(annotator_confusions(ann, g, classes, "gold"))
    rc_params = params.root_cause
    if params.exclude_spammers:
        spam = tuple(table.loc[table["is_spammer"], schema.ANNOTATOR_ID])
        rc_params = replace(rc_params, exclude_annotators=tuple(rc_params.exclude_annotators) + spam)
    causes = root_causes(ann, cons, items=items, gold=gold, params=rc_params)
    return AnnotatorAnalysis(
        table=table,
        drift=drift,
        agreement=agreement,
        root_causes=causes,
        confusions=pd.concat(confusions, ignore_index=True),
        classes=classes,
    )
