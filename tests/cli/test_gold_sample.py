"""labelcycle gold sample -> adjudicate -> labelcycle review import --as-gold -> gold in the pipeline."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import demo_project, dvc, lc, run_cli

from labelcycle import catalog
from labelcycle.versioning import raw

pytestmark = pytest.mark.slow  # a demo project through ingest and aggregate: ~30 s on 2 busy cores


@pytest.fixture(scope="module")
def aggregated(tmp_path_factory):
    root = demo_project(tmp_path_factory.mktemp("gold") / "proj", n_items=400)
    res = dvc(root, "repro", "aggregate")
    assert res.returncode == 0, res.stdout + res.stderr
    return root


def test_gold_sample_spans_labels_and_uncertainty_and_skips_items_with_gold(aggregated):
    root = aggregated
    res = lc(root, "gold", "sample", "--budget", "30", "-o", "sheet.csv")
    assert "gold sample: 30 items" in res.stdout and "review import sheet.csv --as-gold" in res.stdout
    sheet = pd.read_csv(root / "sheet.csv", dtype=str, keep_default_na=False)
    # the columns `review export` writes: ranking, labels seen, item features, the blanks to fill in
    features = [c for c in pd.read_parquet(root / catalog.ITEMS).columns if c != "item_id"]
    ranking = ["item_id", "current_label", "label_doubt", "uncertainty", "n_annotations", "priority"]
    assert list(sheet.columns) == [*ranking, "labels_seen", *features, "review_label", "reviewer_id"]
    gold = pd.read_parquet(root / catalog.GOLD)
    assert not set(sheet["item_id"]) & set(gold["item_id"])
    consensus = pd.read_parquet(root / catalog.LABELS_RAW)
    consensus = consensus[~consensus["item_id"].isin(set(gold["item_id"]))]
    # every consensus label is represented, and not only the most uncertain items
    assert set(sheet["current_label"]) == set(consensus["label"])
    unc = sheet["uncertainty"].astype(float)
    assert unc.min() <= (1 - consensus["confidence"]).median() < unc.max()
    res = run_cli(root, "gold", "sample", "--budget", "5", "--stratify-by", "nope", "-o", "s.csv")
    assert res.returncode == 2 and "--stratify-by 'nope' is not an item column" in res.stderr


def test_adjudicated_sheet_imports_as_a_gold_batch_once_and_reaches_the_gold_table(aggregated):
    root = aggregated
    lc(root, "gold", "sample", "--budget", "12", "-o", "adjudicate.csv")
    sheet = pd.read_csv(root / "adjudicate.csv", dtype=str, keep_default_na=False)
    sheet["review_label"] = sheet["current_label"]
    sheet.loc[sheet.index[-2:], "review_label"] = ""  # two left for later
    sheet.to_csv(root / "adjudicate.csv", index=False)
    gold_before = pd.read_parquet(root / catalog.GOLD)
    res = lc(root, "review", "import", "adjudicate.csv", "--as-gold", "--reviewer", "alice")
    assert "10 adjudicated gold labels (2 rows left blank) -> gold batch" in res.stdout
    batch = raw.list_batches(root)[-1]
    assert sorted(batch.manifest["files"]) == ["gold"]
    assert batch.origin["gold_origin"] == "adjudicated" and batch.origin["reviewers"] == "reviewer:alice"
    again = lc(root, "review", "import", "adjudicate.csv", "--as-gold", "--reviewer", "alice")
    assert "already imported" in again.stdout and len(raw.list_batches(root)) == 2
    # before the pipeline has run again, the new gold items are already never sampled
    lc(root, "gold", "sample", "--budget", "1000", "--stratify-by", "label", "-o", "rest.csv")
    rest = set(pd.read_csv(root / "rest.csv", dtype=str)["item_id"])
    assert rest and not rest & set(sheet.loc[sheet["review_label"] != "", "item_id"])
    res = dvc(root, "repro", "ingest")
    assert res.returncode == 0, res.stdout + res.stderr
    gold = pd.read_parquet(root / catalog.GOLD)
    assert len(gold) == len(gold_before) + 10
    new = gold[~gold["item_id"].isin(set(gold_before["item_id"]))].set_index("item_id")["label"]
    assert new.to_dict() == sheet[sheet["review_label"] != ""].set_index("item_id")["review_label"].to_dict()
    assert json.loads((root / catalog.INGEST_REPORT).read_text())["gold"]["circular"] is False
    # adjudicated labels are gold, not judgements: no reviewer joins the annotations
    assert not pd.read_parquet(root / catalog.ANNOTATIONS)["annotator_id"].str.startswith("reviewer:").any()


def test_conflicting_verdicts_on_one_item_are_refused_with_the_items_named(aggregated):
    root = aggregated
    lc(root, "gold", "sample", "--budget", "3", "--seed", "7", "-o", "two.csv")
    sheet = pd.read_csv(root / "two.csv", dtype=str, keep_default_na=False)
    first = sheet.iloc[[0]].assign(review_label="ok", reviewer_id="bob")
    second = sheet.iloc[[0]].assign(review_label="prohibited", reviewer_id="carol")
    pd.concat([first, second]).to_csv(root / "two.csv", index=False)
    res = run_cli(root, "review", "import", "two.csv", "--as-gold")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"reviewers disagree on item(s) '{sheet['item_id'].iloc[0]}'" in res.stderr
