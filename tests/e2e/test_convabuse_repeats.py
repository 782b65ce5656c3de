"""ConvAbuse's intentional repeats (the paper's self-agreement measure) through `labelcycle ingest`, the
ingest stage and the annotators stage: 357 repeats in 345 (item, annotator) pairs, 28 of them
self-disagreeing, none quarantined; re-sending the same file with gold merges instead of quarantining."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.conftest import SHARED_DATASETS, dvc, lc

from labelcycle import catalog

CONVABUSE = SHARED_DATASETS / "convabuse_curry2021" / "ConvAbuseEMNLPfull.csv"
ITEM_KEY = ["conv_id", "prev_agent", "prev_user", "agent", "user"]
SEVERITY = {"is_abuse.1": "not", "is_abuse.0": "ambiguous", "is_abuse.-1": "mild", "is_abuse.-2": "strong"}
SEVERITY["is_abuse.-3"] = "very_strong"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CONVABUSE.exists(), reason=f"ConvAbuse is not at {CONVABUSE} (../shared/datasets)"
    ),
]


def convabuse_annotations() -> pd.DataFrame:
    """The README's few lines of pandas: collapse the one-hot severity, build the item key."""
    df = pd.read_csv(CONVABUSE, dtype=str, keep_default_na=False)
    df["item_id"] = pd.util.hash_pandas_object(df[ITEM_KEY], index=False).map("c{:016x}".format)
    df["label"] = df[list(SEVERITY)].astype(int).idxmax(axis=1).map(SEVERITY)
    return df[["item_id", "annotator_id", "label"]]


def test_convabuse_repeats_are_self_agreement_not_quarantine(project):
    convabuse_annotations().to_csv(project / "convabuse.csv", index=False)
    (project / catalog.PARAMS).write_text(
        (project / catalog.PARAMS).read_text().replace("labels: [ok, misleading, prohibited]", "labels: []")
    )
    out = lc(project, "ingest", "--annotations", "convabuse.csv").stdout
    assert "357 repeats (kept for self-agreement)" in out and "0 to quarantine" in out, out
    res = dvc(project, "repro", "annotators")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "self-agreement on repeats: 317 of 345 pairs agree" in res.stdout, res.stdout

    ingest = json.loads((project / catalog.INGEST_REPORT).read_text())
    ann = ingest["tables"]["annotations"]
    assert (ann["read"], ann["kept"], ann["merged"], ann["repeats"], ann["quarantined"]) == (
        12768,
        12411,
        0,
        357,
        0,
    )
    assert ann["reconciles"] and "latest" in ingest["consensus_rule"]
    assert len(pd.read_parquet(project / catalog.QUARANTINE)) == 0
    assert len(pd.read_parquet(project / catalog.REPEATS)) == 357
    selfagree = json.loads((project / catalog.ANNOTATORS_REPORT).read_text())["self_agreement"]
    assert (selfagree["repeats"], selfagree["pairs"], selfagree["disagreeing"]) == (357, 345, 28)
    table = pd.read_parquet(project / catalog.ANNOTATORS_TABLE)
    assert table["repeat_pairs"].sum() == 345 and table["repeat_judgements"].sum() == 357

    # the same file again, now with gold: its rows are re-sends (merged), not 12,768 duplicates
    gold = pd.read_csv(project / "convabuse.csv").drop_duplicates("item_id").head(60)[["item_id", "label"]]
    gold.rename(columns={"item_id": "key", "label": "verdict"}).to_csv(project / "gold.csv", index=False)
    lc(
        project,
        *("ingest", "--annotations", "convabuse.csv"),
        *("--gold", "gold.csv", "--gold-item-col", "key", "--gold-label-col", "verdict"),
    )
    res = dvc(project, "repro", "ingest")
    assert res.returncode == 0, res.stdout + res.stderr
    ann = json.loads((project / catalog.INGEST_REPORT).read_text())["tables"]["annotations"]
    assert (ann["read"], ann["kept"], ann["merged"], ann["repeats"], ann["quarantined"]) == (
        2 * 12768,
        12411,
        12768,
        357,
        0,
    )
