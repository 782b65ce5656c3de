"""labelcycle ingest: gold alone, the gold file's own column options, label discovery, gold from the crowd."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import dvc, lc, run_cli

from labelcycle import catalog
from labelcycle.versioning import raw

ANN = "item_id,annotator_id,label\ni1,a,ok\ni1,b,bad\ni2,a,bad\ni2,b,bad\ni3,a,ok\n"


def _no_labels(project) -> str:
    params = (
        (project / catalog.PARAMS).read_text().replace("labels: [ok, misleading, prohibited]", "labels: []")
    )
    (project / catalog.PARAMS).write_text(params)
    return params


def test_labels_are_discovered_written_into_params_in_place_and_the_stage_refuses_an_empty_set(project):
    before = _no_labels(project)
    (project / "a.csv").write_text(ANN)
    res = lc(project, "ingest", "--annotations", "a.csv")
    assert "discovered the labels ['bad', 'ok'] and wrote them to params.yaml (ingest.labels)" in res.stdout
    assert "reorder them there" in res.stdout
    after = (project / catalog.PARAMS).read_text()
    # one line changed, its comment and every other line kept
    assert after == before.replace("labels: []", "labels: [bad, ok]", 1)
    assert dvc(project, "repro", "ingest").returncode == 0

    (project / catalog.PARAMS).write_text(after.replace("labels: [bad, ok]", "labels: []", 1))
    res = dvc(project, "repro", "ingest")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert (
        "ingest.labels is empty; run `labelcycle ingest --annotations FILE` first" in res.stderr + res.stdout
    )


def test_gold_alone_is_a_gold_only_batch_with_its_own_column_options_and_the_stage_takes_it(project):
    (project / "a.csv").write_text(ANN.replace("label", "answer", 1))
    (project / "g.csv").write_text("key,verdict\ni1,ok\ni2,misleading\n")
    lc(project, "ingest", "--annotations", "a.csv", "--label-col", "answer")
    res = lc(project, "ingest", "--gold", "g.csv", "--gold-item-col", "key", "--gold-label-col", "verdict")
    assert "gold: 2 rows, 2 valid" in res.stdout
    batches = raw.list_batches(project)
    assert [sorted(b.manifest["files"]) for b in batches] == [["annotations"], ["gold"]]
    assert dvc(project, "repro", "ingest").returncode == 0
    gold = pd.read_parquet(project / catalog.GOLD)
    assert gold[["item_id", "label"]].values.tolist() == [["i1", "ok"], ["i2", "misleading"]]


def test_the_annotations_column_options_never_apply_to_gold_and_gold_errors_name_the_gold_flags(project):
    (project / "a.csv").write_text(ANN.replace("item_id", "q", 1).replace("label", "answer", 1))
    (project / "g.csv").write_text("item_id,label\ni1,ok\n")
    cols = ("--item-col", "q", "--label-col", "answer")
    res = lc(project, "ingest", "--annotations", "a.csv", *cols, "--gold", "g.csv")
    assert "gold: 1 rows, 1 valid" in res.stdout
    (project / "g2.csv").write_text("item_id,verdict\ni1,ok\n")
    for args in (
        ("ingest", "--gold", "g2.csv"),
        ("errors", "a.csv", *cols, "--gold", "g2.csv"),
    ):
        res = run_cli(project, *args)
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert "g2.csv: missing required column(s) ['label'] for the gold table" in res.stderr
        assert "map them with --gold-label-col" in res.stderr
    (project / "g3.csv").write_text("item_id,label\ni1,spam\n")
    res = run_cli(project, "ingest", "--gold", "g3.csv")
    assert res.returncode == 2 and "g3.csv: none of its 1 gold rows is valid (unknown_label: 1)" in res.stderr
    assert "--gold-item-col/--gold-label-col" in res.stderr
    res = run_cli(project, "ingest", "--annotations", "a.csv", "--gold-from-crowd")
    assert (
        res.returncode == 2
        and "--gold-from-crowd describes a gold file: give it with --gold FILE" in res.stderr
    )
    res = run_cli(project, "ingest")
    assert res.returncode == 2 and "give --annotations FILE, --gold FILE or --items FILE" in res.stderr


@pytest.mark.slow  # two stages with their MLflow runs: ~30 s on a busy 2-core machine
def test_gold_declared_from_the_crowd_is_warned_in_the_ingest_and_split_reports(project):
    (project / "a.csv").write_text(ANN)
    (project / "g.csv").write_text("item_id,label\ni1,ok\ni2,bad\n")
    set_split = (project / catalog.PARAMS).read_text().replace("eval_fraction: 0.6", "eval_fraction: 1.0")
    (project / catalog.PARAMS).write_text(set_split.replace("[ok, misleading, prohibited]", "[ok, bad]"))
    lc(project, "ingest", "--annotations", "a.csv", "--gold", "g.csv", "--gold-from-crowd")
    assert raw.list_batches(project)[0].origin == {"gold_from_crowd": True}
    res = dvc(project, "repro", "split")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warning: circular gold: 2 gold items were declared derived from the crowd" in res.stdout
    gold = json.loads((project / catalog.INGEST_REPORT).read_text())["gold"]
    assert (gold["declared_items"], gold["circular"]) == (2, True)
    split = json.loads((project / catalog.SPLIT_REPORT).read_text())
    assert split["gold_warning"].startswith(
        "circular gold: 2 of 2 of these gold items are derived from the crowd"
    )


def test_aggregate_in_a_project_that_lists_no_labels_uses_the_labels_seen(project):
    _no_labels(project)
    (project / "a.csv").write_text(ANN)
    res = lc(project, "aggregate", "a.csv", "-o", "labels.csv")
    assert "aggregate: 3 items from 5 annotations" in res.stdout
    labels = pd.read_csv(project / "labels.csv")
    assert sorted(c for c in labels.columns if c.startswith("proba_")) == ["proba_bad", "proba_ok"]
