"""`dvc exp run -S 'curate.exclude_annotators=[X]'`: "drop this annotator" as an experiment."""

from __future__ import annotations

import os

import mlflow
import pandas as pd
import pytest
from tests.conftest import demo_project, set_params, sh

from labelcycle import catalog
from labelcycle.aggregation import make_aggregator
from labelcycle.params import load

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_excluding_an_annotator_changes_the_curated_labels_of_items_it_decided_and_mlflow_shows_it(
    tmp_path,
):
    root = tmp_path / "proj"
    uri = f"sqlite:///{tmp_path / catalog.MLFLOW_DB}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    demo_project(root, n_items=300, seed=5)
    # curated labels = the majority vote (no error-score action): the expected labels are known exactly, and
    # only items an annotator judged can change without it (a global model such as Dawid-Skene shifts more)
    set_params(
        root,
        aggregate={"method": "majority_vote"},
        curate={"action": "none"},
        train_error_model={"features": {"quality_model": False}},
    )
    first = sh(root, "dvc", "repro", "curate", env={"MLFLOW_TRACKING_URI": uri})
    before = pd.read_parquet(root / catalog.LABELS).set_index("item_id")["label"]
    ann = pd.read_parquet(root / catalog.ANNOTATIONS)
    params = load(root)

    def consensus_without(who: str) -> pd.Series:
        rest = ann[ann["annotator_id"] != who]
        return make_aggregator(params.aggregate.method, classes=params.classes).fit(rest).labels_

    # an annotator whose judgements decide some items' consensus
    who, expected = next(
        (a, c)
        for a in sorted(ann["annotator_id"].unique())
        if (c := consensus_without(a)).ne(before.reindex(c.index)).any()
    )
    sh(
        root,
        "dvc",
        "exp",
        "run",
        "-S",
        f"curate.exclude_annotators=[{who}]",
        "curate",
        env={"MLFLOW_TRACKING_URI": uri},
    )
    after = pd.read_parquet(root / catalog.LABELS).set_index("item_id")["label"]
    assert after.sort_index().equals(expected.rename("label").sort_index().astype(after.dtype)), first.stdout
    changed = after.index[after.ne(before.reindex(after.index))]
    assert len(changed) > 0
    assert set(changed) <= set(ann.loc[ann["annotator_id"] == who, "item_id"])  # only items it judged
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`labelcycle.stage` = 'curate'")
    latest = runs.sort_values("start_time").iloc[-1]
    assert latest["params.curate.exclude_annotators"] == str([who])
