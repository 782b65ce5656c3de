"""Annotator analyses: agreement, profiles (quality, spam, speed, drift), root causes, HTML report.

Entry point: :func:`analyse_annotators` (then :func:`render_report` for the HTML page).
"""

from __future__ import annotations

from labelcycle.annotators.agreement import (
    AgreementStat,
    agreement_summary,
    cohen_kappa_vs_consensus,
    fleiss_kappa,
    krippendorff_alpha,
)
from labelcycle.annotators.analysis import AnnotatorAnalysis, analyse_annotators
from labelcycle.annotators.profiles import (
    annotator_confusions,
    annotator_drift,
    annotator_table,
    rank_one_distance,
)
from labelcycle.annotators.report import render_report
from labelcycle.annotators.rootcause import root_causes
from labelcycle.params import AnalysisParams, ProfileParams, RootCauseParams

__all__ = [
    "AgreementStat",
    "AnalysisParams",
    "AnnotatorAnalysis",
    "ProfileParams",
    "RootCauseParams",
    "agreement_summary",
    "analyse_annotators",
    "annotator_confusions",
    "annotator_drift",
    "annotator_table",
    "cohen_kappa_vs_consensus",
    "fleiss_kappa",
    "krippendorff_alpha",
    "rank_one_distance",
    "render_report",
    "root_causes",
]
