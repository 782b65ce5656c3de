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


def _second_batch_of_new_items(project) -> None:
    """Ingest a second raw batch: 60 new items (``wk2-`` ids) labelled by the same crowd."""
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


@pytest.mark.slow
def test_a_second_raw_batch_of_new_items_takes_the_incremental_path_and_keeps_the_old_items_rows(project):
    ingest_demo(project, 300, 12, seed=0)
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _report(project)["fit"] == "cold"  # no stored state yet
    _assert_logged_as_the_whole_table(project, _report(project))
    state_meta = json.loads((project / catalog.AGGREGATE_STATE / "state.json").read_text())
    assert state_meta["row_hashes"] is True  # kept for the next run's digest
    first = pd.read_parquet(project / catalog.LABELS_RAW).set_index("item_id")

    _second_batch_of_new_items(project)
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
    assert not list((project / catalog.LABELS_RAW).parent.glob(".labels_raw*"))
    _assert_logged_as_the_whole_table(project, report)


def _assert_logged_as_the_whole_table(project, report) -> None:
    """What the stage reported and logged of labels_raw equals what it computes from the whole table
    (what it did before the incremental run summarised the file by parts): digest, agreement summary,
    row count, first rows."""
    import os
    import warnings

    import mlflow
    from tests.conftest import runs_of

    from labelcycle.curation import agreement_summary
    from labelcycle.versioning.digest import table_digest

    whole = pd.read_parquet(project / catalog.LABELS_RAW)
    summary = agreement_summary(whole)
    digest = table_digest(whole)
    assert report["labels_raw_digest"] == digest
    assert {k: report[k] for k in summary} == summary
    uri = os.environ["MLFLOW_TRACKING_URI"]
    run = max(
        (r for r in runs_of(uri) if r.data.tags["labelcycle.stage"] == "aggregate"),
        key=lambda r: r.info.start_time,
    )
    assert run.data.tags["labels_raw_digest"] == digest
    assert run.data.params["dataset.labels_raw.digest"] == digest
    assert run.data.metrics["dataset.labels_raw.rows"] == len(whole)
    assert {k: run.data.metrics[f"agreement.{k}"] for k in summary} == summary
    (logged,) = [d for d in run.inputs.dataset_inputs if d.dataset.name == "labels_raw"]
    with warnings.catch_warnings():  # MLflow's hint on integer columns
        warnings.simplefilter("ignore", UserWarning)
        expected = mlflow.data.from_pandas(whole.head(1000), name="labels_raw", digest=digest).to_dict()
    assert logged.dataset.schema == expected["schema"] and logged.dataset.profile == expected["profile"]
    assert {t.key: t.value for t in logged.tags}["rows"] == str(len(whole))


@pytest.mark.slow
def test_a_state_written_before_row_hashes_were_kept_still_digests_the_incremental_table_exactly(project):
    ingest_demo(project, 300, 12, seed=0)
    assert dvc(project, "repro", "aggregate").returncode == 0
    state = project / catalog.AGGREGATE_STATE
    (state / "row_hashes.npy").unlink()  # as an older labelcycle left it
    meta = json.loads((state / "state.json").read_text())
    (state / "state.json").write_text(json.dumps({**meta, "row_hashes": False}))
    _second_batch_of_new_items(project)
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    report = _report(project)
    assert report["fit"] == "incremental", report
    _assert_logged_as_the_whole_table(project, report)
    assert json.loads((state / "state.json").read_text())["row_hashes"] is True  # the next run has them
