from __future__ import annotations

import html

import pandas as pd
import pytest
from annotators_crowd import BIASED, SPAMMERS

from labelcycle.aggregation import MajorityVote
from labelcycle.annotators import AnnotatorAnalysis, analyse_annotators, render_report


@pytest.fixture(scope="module")
def analysis(crowd) -> AnnotatorAnalysis:
    agg = MajorityVote().fit(crowd.annotations)
    return analyse_annotators(crowd.annotations, agg, items=crowd.items, gold=crowd.gold)


def test_analyse_annotators_flags_spammers_and_finds_the_biased_group(analysis):
    assert sorted(analysis.spammers) == sorted(SPAMMERS)
    assert analysis.agreement["n_spammers"] == 2
    assert 0 < analysis.agreement["krippendorff_alpha"] < 1
    assert analysis.agreement["n_gold_items"] == 80
    top = analysis.root_causes.iloc[0]
    assert top["annotators"] == ", ".join(BIASED) and top["since_period"] == "week-05"
    assert not set(SPAMMERS) & set(", ".join(analysis.root_causes["annotators"]).split(", "))


def test_analysis_tables_have_one_row_per_annotator_and_period(analysis, crowd):
    n_ann = crowd.annotations["annotator_id"].nunique()
    assert len(analysis.table) == n_ann
    assert len(analysis.drift) == n_ann * 10
    assert set(analysis.confusions["reference"]) == {"consensus", "gold"}
    m = analysis.confusion_matrix("bias1")
    assert (
        m.shape == (4, 4)
        and m.to_numpy().sum() == analysis.table.set_index("annotator_id").loc["bias1", "n_labels"]
    )


def test_report_is_self_contained_html_with_plots_and_findings(analysis):
    page = render_report(analysis, title="Crowd <test>")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("data:image/png;base64,") == 3
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Crowd &lt;test&gt;" in page
    assert html.escape(analysis.root_causes["finding"].iloc[0]) in page


def test_analysis_and_report_work_with_only_the_required_columns():
    ann = pd.DataFrame(
        {"item_id": ["1", "1", "2", "2"], "annotator_id": ["x", "y", "x", "y"], "label": ["a", "a", "b", "a"]}
    )
    out = analyse_annotators(ann, MajorityVote().fit(ann))
    assert out.drift.empty and out.root_causes.empty
    assert "No group stands out" in render_report(out)
