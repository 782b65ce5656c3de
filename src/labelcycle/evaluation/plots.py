"""Evaluation figures. Every function returns a :class:`matplotlib.figure.Figure`; the caller saves it.

Figures are built with the object API on the Agg canvas (no pyplot, no display, no global state).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labelcycle.errors import ValidationError
from labelcycle.evaluation.metrics import DEFAULT_N_BINS, higher_is_better, prepare_eval


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def plot_confusion_matrix(
    y_true: Sequence[str] | np.ndarray, proba: np.ndarray, classes: Sequence[str]
) -> Figure:
    """Confusion matrix of arg-max predictions: counts (left) and row-normalised by gold class (right)."""
    prep = prepare_eval(y_true, proba, classes)
    k = prep.k
    counts = np.bincount(prep.y * k + prep.pred, minlength=k * k).reshape(k, k)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros((k, k)), where=rows > 0)
    fig, (ax_c, ax_n) = _figure(4 + 1.2 * k, 2 + 0.5 * k, ncols=2)
    for ax, mat, title, fmt in ((ax_c, counts, "counts", "d"), (ax_n, norm, "row-normalised", ".2f")):
        im = ax.imshow(mat, cmap="Blues", vmin=0)
        for i in range(k):
            for j in range(k):
                ax.text(j, i, format(mat[i, j], fmt), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(k), prep.classes, rotation=45, ha="right")
        ax.set_yticks(range(k), prep.classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def plot_pr_curves(y_true: Sequence[str] | np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> Figure:
    """One-vs-rest precision-recall curves; a class absent from ``y_true`` is listed as skipped."""
    prep = prepare_eval(y_true, proba, classes)
    p = np.asarray(proba, dtype=np.float64)
    fig, (ax,) = _figure(5.5, 4.5)
    skipped = []
    for j, cls in enumerate(prep.classes):
        pos = prep.y == j
        if not pos.any():
            skipped.append(cls)
            continue
        order = np.argsort(-p[:, j], kind="stable")
        tp = np.cumsum(pos[order])
        precision = tp / np.arange(1, prep.n + 1)
        recall = tp / pos.sum()
        ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))
        ax.step(recall, precision, where="post", label=f"{cls} (AP~{ap:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    title = "precision-recall, one vs rest"
    if skipped:
        title += f"\nskipped (absent from gold): {', '.join(skipped)}"
    ax.set_title(title, fontsize=10)
    if len(skipped) < prep.k:
        ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_reliability_diagram(
    y_true: Sequence[str] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    *,
    n_bins: int = DEFAULT_N_BINS,
) -> Figure:
    """Top-label reliability diagram (accuracy vs confidence per equal-width bin) with bin counts."""
    prep = prepare_eval(y_true, proba, classes, n_bins=n_bins)
    p = np.asarray(proba, dtype=np.float64)
    conf = p[np.arange(prep.n), prep.pred]
    correct = (prep.pred == prep.y).astype(float)
    b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    acc = np.divide(
        np.bincount(b, weights=correct, minlength=n_bins), cnt, out=np.full(n_bins, np.nan), where=cnt > 0
    )
    mean_conf = np.divide(
        np.bincount(b, weights=conf, minlength=n_bins), cnt, out=np.full(n_bins, np.nan), where=cnt > 0
    )
    ece = float(np.nansum(cnt / prep.n * np.abs(acc - mean_conf)))
    edges = np.linspace(0, 1, n_bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    fig = Figure(figsize=(5, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax, ax_h = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.bar(centers, np.nan_to_num(acc), width=1 / n_bins, edgecolor="black", alpha=0.7, label="accuracy")
    ax.plot(centers, mean_conf, "o", color="C3", markersize=4, label="mean confidence")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (top label), ECE = {ece:.3f}")
    ax.legend(fontsize=8, loc="upper left")
    ax_h.bar(centers, cnt, width=1 / n_bins, color="grey", edgecolor="black")
    ax_h.set_xlabel("confidence")
    ax_h.set_ylabel("items")
    ax_h.set_xlim(0, 1)
    return fig


def plot_slice_metric(slice_table: pd.DataFrame, metric: str) -> Figure:
    """Bar chart of one metric per slice value with interval whiskers (from :func:`slice_metrics`).

    Raises:
        ValidationError: the metric is not in the table.
    """
    rows = slice_table[slice_table["metric"] == metric]
    if rows.empty:
        raise ValidationError(
            f"metric {metric!r} not in the slice table; known: {sorted(slice_table['metric'].unique())}"
        )
    labels = [
        f"{c}={v} (n={n})"
        for c, v, n in zip(rows["slice_column"], rows["slice_value"], rows["n"], strict=True)
    ]
    val = rows["value"].to_numpy(dtype=float)
    lo = rows["ci_low"].to_numpy(dtype=float)
    hi = rows["ci_high"].to_numpy(dtype=float)
    err = np.vstack([np.nan_to_num(val - lo), np.nan_to_num(hi - val)])
    colors = [f"C{i % 10}" for i in pd.factorize(rows["slice_column"])[0]]
    fig, (ax,) = _figure(6, 1 + 0.3 * len(rows))
    y = np.arange(len(rows))
    ax.barh(y, np.nan_to_num(val), xerr=err, color=colors, alpha=0.8, capsize=3)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} per slice (bootstrap interval)")
    return fig


def plot_paired_forest(table: pd.DataFrame, *, metrics: Sequence[str] | None = None) -> Figure:
    """Forest plot of paired deltas (candidate - base) with intervals and a zero line.

    Args:
        table: ``PairedComparison.table`` or the output of :func:`slice_paired` (rows are then labelled
            by slice).
        metrics: metrics to show (default: the summary metrics present in the table).
    """
    from labelcycle.evaluation.metrics import SUMMARY_METRICS

    keep = list(metrics) if metrics is not None else [m for m in SUMMARY_METRICS if m in set(table["metric"])]
    rows = table[table["metric"].isin(keep)]
    if "slice_column" in rows.columns:
        labels = [
            f"{m} | {c}={v}"
            for m, c, v in zip(rows["metric"], rows["slice_column"], rows["slice_value"], strict=True)
        ]
    else:
        labels = rows["metric"].tolist()
    d = rows["delta"].to_numpy(dtype=float)
    lo = rows["ci_low"].to_numpy(dtype=float)
    hi = rows["ci_high"].to_numpy(dtype=float)
    fig, (ax,) = _figure(6, 1.2 + 0.3 * max(len(rows), 1))
    y = np.arange(len(rows))
    for i, m in enumerate(rows["metric"]):
        good = higher_is_better(m)
        improving = (lo[i] > 0) if good else (hi[i] < 0)
        worsening = (hi[i] < 0) if good else (lo[i] > 0)
        color = "C2" if improving else "C3" if worsening else "grey"
        ax.errorbar(
            d[i],
            y[i],
            xerr=[[np.nan_to_num(d[i] - lo[i])], [np.nan_to_num(hi[i] - d[i])]],
            fmt="o",
            color=color,
            capsize=3,
        )
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("delta (candidate - base); losses: lower is better")
    ax.set_title("paired deltas with bootstrap intervals")
    return fig


def plot_note(title: str, text: str) -> Figure:
    """A figure that only says something (e.g. why there is nothing to plot), wrapped to its width."""
    import textwrap

    fig, (ax,) = _figure(6, 2.5)
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, textwrap.fill(text, 80), ha="center", va="center", fontsize=8, wrap=True)
    return fig
