from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from labelcycle.errors import ValidationError
from labelcycle.evaluation import plots
from labelcycle.evaluation.paired import PredictionSet, compare_paired
from labelcycle.evaluation.slices import MISSING, slice_metrics, slice_paired


def test_slice_metrics_has_one_block_per_slice_value(make_preds):
    y, p, cls = make_preds(300, seed=0)
    sl = pd.DataFrame({"lang": np.where(np.arange(300) % 3 == 0, "de", "en"), "src": ["web"] * 299 + [None]})
    t = slice_metrics(y, p, cls, sl, metrics=["accuracy", "macro_f1"], n_boot=50, random_state=0)
    assert list(t.columns) == ["slice_column", "slice_value", "n", "metric", "value", "ci_low", "ci_high"]
    assert set(zip(t["slice_column"], t["slice_value"], strict=True)) == {
        ("lang", "de"),
        ("lang", "en"),
        ("src", "web"),
        ("src", MISSING),
    }
    de = t[(t["slice_value"] == "de") & (t["metric"] == "accuracy")].iloc[0]
    assert de["n"] == 100
    pred = np.array(cls)[p.argmax(axis=1)]
    assert de["value"] == pytest.approx(np.mean((pred == y)[np.arange(300) % 3 == 0]))


def test_slice_metrics_refuses_misaligned_slice_table(make_preds):
    y, p, cls = make_preds(30, seed=0)
    with pytest.raises(ValidationError, match="slice table has 29 rows but there are 30"):
        slice_metrics(y, p, cls, pd.DataFrame({"a": ["x"] * 29}), n_boot=10, random_state=0)


def test_slice_paired_aligns_slices_by_item_id(make_preds):
    y, p, cls = make_preds(200, seed=0)
    ids = np.array([f"i{i}" for i in range(200)])
    base = PredictionSet(ids, y, p, cls)
    cand = PredictionSet(ids, y, p[:, ::-1][:, ::-1], cls)
    sl = pd.DataFrame({"item_id": ids[::-1], "lang": np.where(np.arange(200) < 50, "de", "en")})
    t = slice_paired(base, cand, sl, metrics=["accuracy"], n_boot=20, random_state=0)
    assert t.set_index("slice_value")["n"].to_dict() == {"de": 50, "en": 150}
    assert np.allclose(t["delta"], 0)
    with pytest.raises(ValidationError, match="no row in the slice table"):
        slice_paired(base, cand, sl.iloc[1:], n_boot=5, random_state=0)


@pytest.fixture
def preds_with_missing_class():
    rng = np.random.default_rng(0)
    y = np.where(rng.random(80) < 0.5, "a", "b").astype(object)  # class "c" never in gold
    p = rng.dirichlet(np.ones(3), size=80)
    return y, p, ["a", "b", "c"]


def _has_axes(fig):
    return isinstance(fig, Figure) and len(fig.axes) >= 1


def test_prediction_plots_return_figures_even_with_a_missing_class(preds_with_missing_class):
    y, p, cls = preds_with_missing_class
    assert _has_axes(plots.plot_confusion_matrix(y, p, cls))
    fig = plots.plot_pr_curves(y, p, cls)
    assert _has_axes(fig) and "skipped" in fig.axes[0].get_title()
    assert _has_axes(plots.plot_reliability_diagram(y, p, cls, n_bins=10))


def test_table_plots_return_figures(preds_with_missing_class, tmp_path):
    y, p, cls = preds_with_missing_class
    sl = pd.DataFrame({"lang": np.where(np.arange(80) % 2 == 0, "de", "en")})
    st = slice_metrics(y, p, cls, sl, n_boot=20, random_state=0)
    fig = plots.plot_slice_metric(st, "accuracy")
    assert _has_axes(fig)
    fig.savefig(tmp_path / "slices.png")  # the caller saves; Agg canvas works headless
    ids = np.array([str(i) for i in range(80)])
    cmp = compare_paired(
        PredictionSet(ids, y, p, cls), PredictionSet(ids, y, p[::-1][::-1], cls), n_boot=20, random_state=0
    )
    assert _has_axes(plots.plot_paired_forest(cmp.table))
    with pytest.raises(ValidationError, match="metric 'nope' not in the slice table"):
        plots.plot_slice_metric(st, "nope")
