"""The aggregate stage streams the ingest stage's coded parts and warm-starts from its stored fit (real dvc)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.conftest import dvc, ingest_demo, lc, set_params

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

    ingest_demo(project, 60, 12, seed=1)  # a second raw batch (its rows repeat the first's pairs)
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    warm = _report(project)
    assert warm["warm_started"] is True and warm["fit"] == "warm" and "warm fit" in res.stdout

    set_params(project, aggregate={"warm_start": False})
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    cold = _report(project)
    assert cold["warm_started"] is False and cold["fit"] == "cold" and "cold fit" in res.stdout


@pytest.mark.slow
def test_a_second_raw_batch_of_new_items_takes_the_incremental_path_and_keeps_the_old_items_rows(project):
    ingest_demo(project, 300, 12, seed=0)
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _report(project)["fit"] == "cold"  # no stored state yet
    first = pd.read_parquet(project / catalog.LABELS_RAW).set_index("item_id")

    lc(project, "demo", "--out", "week2", "--items", "60", "--annotators", "12", "--seed", "1")
    for name in ("annotations", "items", "gold"):  # the same crowd on new items
        path = project / "week2" / f"{name}.csv"
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        table.assign(item_id="wk2-" + table["item_id"]).to_csv(path, index=False)
    week2 = (
        "--annotations",
        "week2/annotations.csv",
        "--items",
        "week2/items.csv",
        "--gold",
        "week2/gold.csv",
    )
    lc(project, "ingest", *week2)
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    report = _report(project)
    assert report["fit"] == "incremental" and "incremental fit" in res.stdout, report
    got = pd.read_parquet(project / catalog.LABELS_RAW).set_index("item_id")
    fresh = got.index.str.startswith("wk2-")
    assert fresh.sum() > 0 and not got.index.duplicated().any()
    pd.testing.assert_frame_equal(got[~fresh].loc[first.index], first)  # old items keep their rows
    # the next state holds the appended file (the consensus' rows, in order); no temporary file is left
    state = project / catalog.AGGREGATE_STATE
    pd.testing.assert_frame_equal(pd.read_parquet(state / "labels.parquet"), got.reset_index())
    assert not list(state.parent.glob(f".{state.name}*"))
