"""The aggregate stage streams the ingest stage's coded parts and warm-starts from its stored fit (real dvc)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.conftest import dvc, ingest_demo, set_params

from labelcycle import catalog
from labelcycle.aggregation import make_aggregator
from labelcycle.curation import curated_labels


def _report(project):
    return json.loads((project / catalog.AGGREGATE_REPORT).read_text())


@pytest.mark.slow
def test_streamed_stage_equals_in_memory_fit_then_a_new_batch_warm_starts_and_warm_start_false_fits_cold(
    project,
):
    ingest_demo(project, 400, 12, seed=0)
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert (project / catalog.ANNOTATION_CODES / "meta.json").exists()
    annotations = pd.read_parquet(project / catalog.ANNOTATIONS)
    expected = curated_labels(annotations, make_aggregator("hierarchical_dawid_skene").fit(annotations))
    got = pd.read_parquet(project / catalog.LABELS_RAW)
    assert got["label"].equals(expected["label"]) and got["item_id"].equals(expected["item_id"])
    np.testing.assert_allclose(got["confidence"], expected["confidence"], atol=1e-9)
    assert _report(project)["warm_started"] is False

    ingest_demo(project, 60, 12, seed=1)  # a second raw batch
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    warm = _report(project)
    assert warm["warm_started"] is True and "warm start" in res.stdout

    set_params(project, aggregate={"warm_start": False})
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    cold = _report(project)
    assert cold["warm_started"] is False and "cold start" in res.stdout
