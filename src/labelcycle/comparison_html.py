"""The offline HTML report of a :class:`~labelcycle.comparison.ComparisonReport` (``compare --html``)."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import pandas as pd

from labelcycle.comparison import ATTRIBUTION_METRIC, ComparisonReport


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _transition_figure(t: pd.DataFrame) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = max(len(t), 1)
    fig = Figure(figsize=(2.5 + 0.9 * k, 1.8 + 0.7 * k), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    m = t.to_numpy()
    off = m.copy()
    np.fill_diagonal(off, 0)
    ax.imshow(off, cmap="Oranges", vmin=0)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(t.columns)), list(t.columns), rotation=30, ha="right")
    ax.set_yticks(range(len(t.index)), list(t.index))
    ax.set_xlabel("candidate label")
    ax.set_ylabel("base label")
    ax.set_title("label transitions (common items; colour = changed)", fontsize=9)
    return fig


def _table(df: pd.DataFrame, floats: str = "{:.4f}") -> str:
    if df is None or df.empty:
        return "<p><em>none</em></p>"
    return df.to_html(index=False, border=0, classes="t", float_format=lambda v: floats.format(v), na_rep="-")


def render_html(report: ComparisonReport) -> str:
    """One self-contained HTML page (no scripts, no external resources)."""
    from labelcycle.evaluation.metrics import SUMMARY_METRICS
    from labelcycle.evaluation.plots import plot_paired_forest

    esc = html.escape
    d = report.dataset_diff
    colour = {"better": "#1a7f37", "worse": "#cf222e"}.get(report.verdict, "#57606a")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>labelcycle compare</title><style>",
        "body{font-family:sans-serif;margin:2em;max-width:1100px} table.t{border-collapse:collapse;font-size:13px}"
        " .t td,.t th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right} .t th{background:#f6f8fa}"
        " .v{font-size:1.4em;font-weight:bold} img{max-width:100%}",
        "</style></head><body>",
        "<h1>Dataset version comparison</h1>",
        f"<p>base: <code>{esc(str(report.base.get('spec', '')))}</code> ({esc(str(report.base.get('kind', '')))}, "
        f"rev {esc(str(report.base.get('rev') or '-'))[:12]})<br>candidate: "
        f"<code>{esc(str(report.candidate.get('spec', '')))}</code> ({esc(str(report.candidate.get('kind', '')))}, "
        f"rev {esc(str(report.candidate.get('rev') or '-'))[:12]})</p>",
        f"<p class='v' style='color:{colour}'>verdict: {esc(report.verdict)}</p>",
        f"<p>on {esc(report.primary_metric)}, paired bootstrap {report.paired.confidence:.0%} interval over "
        f"{report.paired.n} frozen gold eval items ({report.paired.n_boot} resamples; eval digest "
        f"<code>{esc(str(report.paired.eval_digest or '-'))}</code>). Accuracy p-value: mid-p McNemar "
        f"({report.paired.mcnemar.base_only} items only base got right, {report.paired.mcnemar.candidate_only} "
        "only the candidate).</p>",
        "<h2>Downstream impact</h2>",
    ]
    summary = report.paired.table[report.paired.table["metric"].isin(SUMMARY_METRICS)]
    parts.append(_table(summary.drop(columns=["n"])))
    parts.append(_png(plot_paired_forest(report.paired.table)))
    if len(report.slices):
        parts.append("<h2>Per-slice deltas</h2>")
        parts.append(_table(report.slices))
        parts.append(_png(plot_paired_forest(report.slices, metrics=["accuracy"])))
    parts.append("<h2>Dataset diff (curated labels)</h2>")
    if d is None:
        parts.append("<p><em>curated labels not available for one of the versions</em></p>")
    else:
        counts = pd.DataFrame(
            [
                {
                    "items base": d.items_base,
                    "items candidate": d.items_candidate,
                    "added": d.items_added,
                    "removed": d.items_removed,
                    "common": d.items_common,
                    "labels changed": d.labels_changed,
                }
            ]
        )
        parts.append(_table(counts))
        parts.append(_png(_transition_figure(d.transitions)))
        parts.append("<h3>By aggregation method</h3>" + _table(d.by_method))
        parts.append("<h3>By batch</h3>" + _table(d.by_batch.head(30)))
        parts.append("<h3>By annotator (top 30 by changed items)</h3>" + _table(d.by_annotator.head(30)))
        if d.annotations:
            parts.append("<h3>Annotations</h3>" + _table(pd.DataFrame([d.annotations])))
    t = report.training_diff
    parts.append("<h2>Training data diff (the sample each version was fitted on)</h2>")
    if t is None:
        parts.append("<p><em>training sample not available for one of the versions</em></p>")
    else:
        parts.append(
            _table(
                pd.DataFrame(
                    [
                        {
                            "items base": t.items_base,
                            "items candidate": t.items_candidate,
                            "added": t.items_added,
                            "removed": t.items_removed,
                            "relabelled": t.labels_changed,
                        }
                    ]
                )
            )
        )
        if report.attribution is not None:
            parts.append(
                f"<h3>Where the change happened ({ATTRIBUTION_METRIC} delta per group, paired "
                "interval)</h3>" + _table(report.attribution)
            )
    notes = list(report.notes) + list(report.paired.notes)
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
