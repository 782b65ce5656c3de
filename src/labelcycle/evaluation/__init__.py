"""Evaluation on a frozen gold eval split: metrics, bootstrap intervals, paired comparison, slices, plots.

Plots live in :mod:`labelcycle.evaluation.plots` (imported on demand, it pulls in matplotlib).
"""

from __future__ import annotations

from labelcycle.evaluation.bootstrap import bootstrap_metrics
from labelcycle.evaluation.metrics import MetricReport, compute_metrics, evaluate, metric_names
from labelcycle.evaluation.paired import (
    PairedComparison,
    PredictionSet,
    check_same_eval_digest,
    compare_paired,
    mcnemar_test,
    verdict,
)
from labelcycle.evaluation.slices import slice_metrics, slice_paired

__all__ = [
    "MetricReport",
    "PairedComparison",
    "PredictionSet",
    "bootstrap_metrics",
    "check_same_eval_digest",
    "compare_paired",
    "compute_metrics",
    "evaluate",
    "mcnemar_test",
    "metric_names",
    "slice_metrics",
    "slice_paired",
    "verdict",
]
