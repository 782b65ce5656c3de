"""Self-contained HTML report of an :class:`~labelcycle.annotators.analysis.AnnotatorAnalysis`.

Plots are PNGs embedded as base64 (matplotlib's Agg canvas on a bare ``Figure``; pyplot's global state is
not touched); no JavaScript, no CDN: the file opens offline. The function returns the HTML string; the
caller writes it.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from labelcycle import schema
from labelcycle.annotators.analysis import AnnotatorAnalysis

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em;color:#222;max-width:1400px}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}tr.flag td{background:#fdecea}
.note{color:#666;font-size:.85em}img{max-width:100%}
"""


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else ""
    if isinstance(v, float | np.floating):
        return f"{v:.3f}"
    return html.escape(str(v))


def _table(df: pd.DataFrame, flag: pd.Series | None = None, left: tuple[str, ...] = ()) -> str:
    head = "".join(f'<th class="{"l" if c in left else ""}">{html.escape(str(c))}</th>' for c in df.columns)
    body = []
    flags = flag.to_numpy() if flag is not None else np.zeros(len(df), dtype=bool)
    for row, fl in zip(df.itertuples(index=False), flags, strict=True):
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{_fmt(v)}</td>'
            for c, v in zip(df.columns, row, strict=True)
        )
        body.append(f'<tr class="{"flag" if fl else ""}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _scatter(table: pd.DataFrame) -> str:
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    x = table["spammer_score"].to_numpy(dtype=float)
    y = table["accuracy_est"].to_numpy(dtype=float)
    size = 15 + 120 * table["n_labels"] / max(float(table["n_labels"].max()), 1.0)
    spam = table["is_spammer"].to_numpy(dtype=bool)
    fast = table["is_fast_clicker"].to_numpy(dtype=bool)
    ax.scatter(x[~spam], y[~spam], s=size[~spam], c="#4878a8", alpha=0.7, label="annotator")
    ax.scatter(x[spam], y[spam], s=size[spam], c="#d62728", alpha=0.85, label="flagged spammer")
    if fast.any():
        ax.scatter(
            x[fast], y[fast], s=size[fast] + 40, facecolors="none", edgecolors="#ff7f0e", label="fast clicker"
        )
    for xi, yi, name, fl in zip(x, y, table[schema.ANNOTATOR_ID], spam | fast, strict=True):
        if fl and not (np.isnan(xi) or np.isnan(yi)):
            ax.annotate(str(name), (xi, yi), fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("spammer score (1 - sqrt(rank-one distance x kappa); high = spammer-like)")
    ax.set_ylabel("accuracy_est (model-based)")
    ax.set_xlim(-0.02, 1.02)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def _drift(drift: pd.DataFrame, names: list[str]) -> str:
    if drift.empty or not names:
        return '<p class="note">No periods (batch_id or created_at) to plot drift over.</p>'
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    periods = drift.drop_duplicates("period_index").sort_values("period_index")
    pop = periods["period_agreement"].to_numpy(dtype=float)
    ax.plot(periods["period_index"], pop, "k--", lw=2, label="all annotators")
    for name in names:
        d = drift[drift[schema.ANNOTATOR_ID] == name]
        ax.plot(d["period_index"], d["agreement"], marker="o", ms=3, label=str(name))
    ax.set_xticks(periods["period_index"].to_numpy())
    ax.set_xticklabels([str(p) for p in periods["period"]], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("agreement with consensus")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return _png(fig)


def _confusions(analysis: AnnotatorAnalysis, names: list[str]) -> str:
    if not names:
        return '<p class="note">No flagged annotators.</p>'
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    k = len(analysis.classes)
    fig = Figure(figsize=(4.2 * cols, 3.8 * rows))
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        m = analysis.confusion_matrix(name).to_numpy(dtype=float)
        share = np.divide(
            m, m.sum(axis=1, keepdims=True), out=np.zeros_like(m), where=m.sum(axis=1, keepdims=True) > 0
        )
        ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
        for a in range(k):
            for b in range(k):
                ax.text(
                    b,
                    a,
                    f"{int(m[a, b])}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share[a, b] > 0.6 else "black",
                )
        ax.set_xticks(range(k))
        ax.set_xticklabels(analysis.classes, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(k))
        ax.set_yticklabels(analysis.classes, fontsize=7)
        ax.set_title(str(name), fontsize=9)
        ax.set_xlabel("given", fontsize=8)
        ax.set_ylabel("consensus", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _cause_annotators(causes: pd.DataFrame, top: int = 3) -> list[str]:
    names: list[str] = []
    for s in causes["annotators"].head(top):
        names += [a.strip() for a in str(s).split(",") if a.strip()]
    return list(dict.fromkeys(names))


def _severity(table: pd.DataFrame, classes: tuple[str, ...]) -> list[str]:
    """Who over-flags and who under-flags (ordinal label sets: the table has ``severity_bias``)."""
    if "severity_bias" not in table.columns:
        return []
    rows = table[table["flags"] != ""] if "flags" in table.columns else table.iloc[:0]
    cols = [
        schema.ANNOTATOR_ID,
        "flags",
        "severity_bias",
        "severity_bias_lo",
        "severity_bias_hi",
        "severity_n",
    ]
    scale = " &lt; ".join(html.escape(str(c)) for c in classes)
    return [
        "<h2>Over- and under-flagging</h2>",
        f'<p class="note">Severity scale {scale}. Mean signed difference (in steps) between each '
        "annotator's label and the consensus, with a 95% interval; listed when the interval excludes 0 "
        "(over: more severe than the consensus, under: milder).</p>",
        _table(rows.sort_values("severity_bias", ascending=False)[cols], left=(schema.ANNOTATOR_ID, "flags"))
        if len(rows)
        else "<p>No annotator over- or under-flags beyond chance.</p>",
    ]


def render_report(
    analysis: AnnotatorAnalysis, title: str = "Annotator report", max_drift: int = 6, max_confusions: int = 6
) -> str:
    """The analysis as one self-contained HTML page.

    Args:
        analysis: result of :func:`~labelcycle.annotators.analysis.analyse_annotators`.
        title: page title.
        max_drift: annotators drawn in the drift plot (named in top root causes first, then the most
            negative ``drift_slope``).
        max_confusions: confusion matrices drawn (spammers, fast clickers, then annotators named in the
            top root causes).

    Returns:
        The HTML document.
    """
    t = analysis.table
    causes = analysis.root_causes
    in_causes = _cause_annotators(causes)
    flagged = t.loc[t["is_spammer"] | t["is_fast_clicker"], schema.ANNOTATOR_ID].tolist()
    conf_names = list(dict.fromkeys(flagged + in_causes))[:max_confusions]
    by_slope = t[~t["is_spammer"]].sort_values("drift_slope")[schema.ANNOTATOR_ID].tolist()
    drift_names = list(dict.fromkeys(in_causes + by_slope))[:max_drift]

    agree = pd.DataFrame({"figure": list(analysis.agreement), "value": list(analysis.agreement.values())})
    shown = t.sort_values("spammer_score", ascending=False, kind="stable")
    cause_cols = [
        "rank",
        "finding",
        "n",
        "n_disagree",
        "rate",
        "baseline",
        "rate_diff_lo",
        "rate_diff_hi",
        "score",
    ]
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>{len(t)} annotators, {analysis.agreement.get('n_labels')} labels on {analysis.agreement.get('n_items')} items; "
        f"flagged: {len(analysis.spammers)} spammer(s), {int(t['is_fast_clicker'].sum())} fast clicker(s).</p>",
        "<h2>Overall agreement</h2>",
        _table(agree, left=("figure", "value")),
        "<h2>Root causes of disagreement</h2>",
        '<p class="note">Groups that concentrate disagreement with the reference label, ranked by excess '
        "disagreements at the 95% lower bound; flagged spammers excluded.</p>",
        _table(causes[cause_cols], left=("finding",)) if len(causes) else "<p>No group stands out.</p>",
        *_severity(t, analysis.classes),
        "<h2>Spammer map</h2>",
        _scatter(t),
        "<h2>Drift per period</h2>",
        _drift(analysis.drift, drift_names),
        "<h2>Confusion matrices of flagged annotators</h2>",
        _confusions(analysis, conf_names),
        "<h2>Annotators</h2>",
        '<p class="note">Sorted by spammer score; flagged rows highlighted.</p>',
        _table(shown, flag=shown["is_spammer"] | shown["is_fast_clicker"], left=(schema.ANNOTATOR_ID,)),
        "</body></html>",
    ]
    return "\n".join(parts)
