from __future__ import annotations

import json

from labelcycle import catalog
from labelcycle.catalog import ErrorModelReport, MetricsReport, SampleReport, SplitReport


def test_report_reads_empty_text_as_none_and_a_missing_count_as_zero():
    report = SampleReport.from_dict({"curated_digest": "", "sample_digest": "abc", "items_in": "7"})
    assert report == SampleReport(curated_digest=None, sample_digest="abc", items_in=7, items_out=0)


def test_report_reads_a_missing_mapping_as_an_empty_dict():
    assert SplitReport.from_dict({"eval_items": 3}).eval_label_counts == {}


def test_error_model_report_gathers_the_keys_no_field_reads_into_metrics():
    report = ErrorModelReport.from_dict({"mlflow_run_id": "r1", "model_version": 2, "auc": 0.9, "n": 4})
    assert isinstance(report, ErrorModelReport)
    assert (report.mlflow_run_id, report.model_version, report.model_uri) == ("r1", "2", None)
    assert report.metrics == {"auc": 0.9, "n": 4}


def test_metrics_report_values_are_the_top_level_numbers_except_eval_items_and_flags():
    raw = json.dumps(
        {
            "accuracy": 1,
            "macro_f1": 0.5,
            "eval_items": 10,
            "flag": True,
            "eval_digest": "d",
            "ci95": {"accuracy": {"ci_low": 0.9, "ci_high": 1.0}},
        }
    )
    report = catalog.parse_report(catalog.METRICS, raw)
    assert isinstance(report, MetricsReport)
    assert report.values == {"accuracy": 1.0, "macro_f1": 0.5}
    assert (report.eval_items, report.eval_digest) == (10, "d")
    assert report.interval("accuracy") == (0.9, 1.0)
