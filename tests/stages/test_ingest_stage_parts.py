"""The ingest stage out of core (``ingest.part_rows`` below the annotations) writes the in-memory stage's
tables, and the aggregate stage fits its parts to the same consensus."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import dvc, ingest_demo, lc, set_params

from labelcycle import catalog, schema


def _outputs(project) -> dict:
    key = [schema.ITEM_ID, schema.ANNOTATOR_ID]
    ann = pd.read_parquet(project / catalog.ANNOTATIONS)
    return {
        "annotations": ann.sort_values(key).reset_index(drop=True).astype(str),
        "quarantine": pd.read_parquet(project / catalog.QUARANTINE),
        "report": json.loads((project / catalog.INGEST_REPORT).read_text()),
        "codes": json.loads((project / catalog.ANNOTATION_CODES / "meta.json").read_text()),
    }


def _labels(project) -> pd.DataFrame:
    labels = pd.read_parquet(project / catalog.LABELS_RAW)
    return labels.sort_values(schema.ITEM_ID).reset_index(drop=True)


@pytest.mark.slow
def test_out_of_core_ingest_stage_writes_the_same_annotations_counts_and_digest_as_in_memory(project):
    ingest_demo(project, 300, 12, seed=0)
    ingest_demo(project, 80, 12, seed=1)  # a second raw batch
    set_params(project, aggregate={"warm_start": False})
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    memory = _outputs(project)
    memory_labels = _labels(project)
    assert memory["report"]["out_of_core_parts"] == 0

    set_params(project, ingest={"part_rows": 300})
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    parts = _outputs(project)
    n_parts = parts["report"]["out_of_core_parts"]
    assert n_parts > 2 and f"out of core, in {n_parts} parts" in res.stdout
    assert parts["annotations"].equals(memory["annotations"])
    assert parts["report"]["tables"] == memory["report"]["tables"]
    assert parts["report"]["gold"] == memory["report"]["gold"]
    assert parts["codes"]["digest"] == memory["codes"]["digest"]
    assert parts["codes"]["n_rows"] == memory["codes"]["n_rows"] == len(memory["annotations"])
    assert len(parts["quarantine"]) == len(memory["quarantine"])
    # the aggregate stage streams the parts written out of core to the same consensus
    labels = _labels(project)
    assert labels[schema.ITEM_ID].equals(memory_labels[schema.ITEM_ID])
    assert labels["label"].equals(memory_labels["label"])

    # a weekly batch of new items on top of the out-of-core parts is aggregated incrementally
    set_params(project, aggregate={"warm_start": True})
    assert dvc(project, "repro", "aggregate").returncode == 0
    lc(project, "demo", "--out", "week", "--items", "40", "--annotators", "12", "--seed", "2")
    for table in ("annotations", "items"):
        week = pd.read_csv(project / "week" / f"{table}.csv")
        week["item_id"] = "w" + week["item_id"].astype(str)  # new items only
        week.to_csv(project / f"week_{table}.csv", index=False)
    lc(project, "ingest", "--annotations", "week_annotations.csv", "--items", "week_items.csv")
    res = dvc(project, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads((project / catalog.AGGREGATE_REPORT).read_text())
    assert report["fit"] == "incremental", report["fit_reason"]
