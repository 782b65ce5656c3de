"""``ingest.ordinal: true`` under the real `dvc repro`: consensus ties go to the more severe label and the
annotator report names who over-flags and who under-flags."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import dvc, ingest_demo, set_params

from labelcycle import catalog

SCALE = ["ok", "misleading", "prohibited"]  # the demo's labels, mildest first


@pytest.mark.slow
def test_an_ordinal_project_breaks_majority_ties_towards_severity_and_reports_over_and_under_flaggers(
    project,
):
    set_params(project, ingest={"labels": SCALE, "ordinal": True}, aggregate={"method": "majority_vote"})
    ingest_demo(project, 400, 12, seed=7)
    res = dvc(project, "repro", "aggregate", "annotators")
    assert res.returncode == 0, res.stdout + res.stderr

    ann = pd.read_parquet(project / catalog.ANNOTATIONS)
    counts = (
        ann.groupby(["item_id", "label"]).size().unstack(fill_value=0).reindex(columns=SCALE, fill_value=0)
    )
    top = counts.eq(counts.max(axis=1), axis=0)
    tied = top[top.sum(axis=1) > 1]
    most_severe = tied.apply(lambda row: [c for c in SCALE if row[c]][-1], axis=1)
    labels = pd.read_parquet(project / catalog.LABELS_RAW).set_index("item_id")["label"]
    assert len(tied) > 0
    assert labels.loc[most_severe.index].tolist() == most_severe.tolist()

    report = json.loads((project / catalog.ANNOTATORS_REPORT).read_text())
    assert isinstance(report["over_flaggers"], list) and isinstance(report["under_flaggers"], list)
    table = pd.read_parquet(project / catalog.ANNOTATORS_TABLE).set_index("annotator_id")
    assert set(report["over_flaggers"]) == set(table.index[table["flags"] == "over"])
    assert (table.loc[report["over_flaggers"], "severity_bias_lo"] > 0).all()
    assert "Over- and under-flagging" in (project / catalog.ANNOTATORS_HTML).read_text()
