"""evaluate.primary_metric may be a binary moderation metric, only when evaluate.positive_labels is set."""

from __future__ import annotations

import pytest

from labelcycle import catalog
from labelcycle.errors import ConfigError
from labelcycle.evaluation.moderation import BINARY_METRICS
from labelcycle.params import EvaluateParams


def test_the_headline_holds_the_binary_metrics_under_their_metrics_json_names():
    assert set(catalog.BINARY_HEADLINE) <= set(BINARY_METRICS)
    assert {"binary_f1", "binary_precision", "binary_recall", "binary_pr_auc"} <= set(catalog.HEADLINE)


@pytest.mark.parametrize("metric", catalog.BINARY_HEADLINE)
def test_a_binary_primary_metric_with_positive_labels_is_accepted(metric):
    p = EvaluateParams(primary_metric=metric, positive_labels=["mild", "strong"])
    assert p.primary_metric == metric


def test_a_binary_primary_metric_without_positive_labels_names_both_keys():
    with pytest.raises(ConfigError) as err:
        EvaluateParams(primary_metric="binary_f1")
    assert "evaluate.primary_metric" in str(err.value) and "evaluate.positive_labels" in str(err.value)
