"""The README's "Your own data" flow on real moderation data (ConvAbuse), step for step: `labelcycle init`,
the README's own pandas lines, ingest with the labels discovered, `dvc repro` without gold (no evaluation,
repeats as self-agreement, nothing quarantined), `gold sample` + `review import --as-gold`, `dvc repro`
evaluated with the moderation metrics, and `labelcycle predict` on new messages."""

from __future__ import annotations

import json
import re
import sys

import mlflow
import pandas as pd
import pytest
import yaml
from tests.conftest import REPO_ROOT, SHARED_DATASETS, SMALL_PARAMS, dvc, lc, sh

from labelcycle import catalog
from labelcycle.params.edit import write_value

CONVABUSE = SHARED_DATASETS / "convabuse_curry2021"
SCALE = ["not_abusive", "ambiguous", "mild", "strong", "very_strong"]
ABUSIVE = ["mild", "strong", "very_strong"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CONVABUSE / "ConvAbuseEMNLPfull.csv").exists(),
        reason=f"ConvAbuse is not at {CONVABUSE} (../shared/datasets)",
    ),
]


def readme_prepare() -> str:
    """The pandas lines the README gives (the python block after its ``convabuse-prepare`` marker)."""
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- convabuse-prepare -->\n```python\n(.*?)```", text, re.S)
    assert block, "README lost its ConvAbuse preparation block"
    code = block.group(1)
    assert len([x for x in code.splitlines() if x.strip() and not x.startswith("import")]) <= 15
    return code


def adjudicate(sheet: pd.DataFrame, annotations: pd.DataFrame) -> pd.DataFrame:
    """Simulated adjudicators: each item's majority severity (ties to the more severe label)."""
    rank = {label: i for i, label in enumerate(SCALE)}
    votes = annotations.groupby(["item_id", "label"]).size().rename("n").reset_index()
    votes["rank"] = votes["label"].map(rank)
    top = votes.sort_values(["item_id", "n", "rank"]).groupby("item_id").tail(1).set_index("item_id")
    sheet["review_label"] = sheet["item_id"].map(top["label"])
    return sheet


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    base = tmp_path_factory.mktemp("convabuse")
    lc(base, "init", "convabuse")
    root = base / "convabuse"
    params = (root / catalog.PARAMS).read_text()
    for old, new in SMALL_PARAMS.items():
        params = params.replace(old, new)
    (root / catalog.PARAMS).write_text(params)
    (root / "prepare.py").write_text(readme_prepare())
    sh(root, sys.executable, "prepare.py", str(CONVABUSE))
    ingest = lc(root, "ingest", "--annotations", "annotations.csv", "--items", "items.csv")
    discovered = yaml.safe_load((root / catalog.PARAMS).read_text())
    write_value(root / catalog.PARAMS, "ingest", "labels", SCALE)
    write_value(root / catalog.PARAMS, "ingest", "ordinal", True)
    write_value(root / catalog.PARAMS, "evaluate", "positive_labels", ABUSIVE)
    no_gold = dvc(root, "repro", timeout=1800)
    yield {"root": root, "ingest": ingest, "discovered": discovered["ingest"]["labels"], "no_gold": no_gold}


def test_the_readme_lines_make_the_tables_and_ingest_discovers_the_five_labels(flow):
    assert sorted(flow["discovered"]) == sorted(SCALE)
    assert "357 repeats" in flow["ingest"].stdout and "0 to quarantine" in flow["ingest"].stdout


def test_without_gold_dvc_repro_passes_and_says_there_is_no_evaluation(flow):
    res, root = flow["no_gold"], flow["root"]
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert any(x.startswith("evaluate: no evaluation") for x in res.stdout.splitlines())
    assert json.loads((root / catalog.METRICS).read_text())["evaluated"] is False


def test_the_repeats_are_self_agreement_and_nothing_is_quarantined(flow):
    root = flow["root"]
    report = json.loads((root / catalog.ANNOTATORS_REPORT).read_text())
    assert (report["self_agreement"]["pairs"], report["self_agreement"]["disagreeing"]) == (345, 28)
    assert len(pd.read_parquet(root / catalog.QUARANTINE)) == 0
    assert report["over_flaggers"] or report["under_flaggers"]  # the severity scale is read as one


def test_gold_from_gold_sample_and_review_import_gives_an_evaluated_registered_model_and_predictions(flow):
    root = flow["root"]
    lc(root, "gold", "sample", "--budget", "300", "-o", "adjudicate.csv")
    sheet = adjudicate(pd.read_csv(root / "adjudicate.csv", dtype=str), pd.read_csv(root / "annotations.csv"))
    sheet.to_csv(root / "adjudicate.csv", index=False)
    lc(root, "review", "import", "adjudicate.csv", "--as-gold", "--reviewer", "lead")
    res = dvc(root, "repro", timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    metrics = json.loads((root / catalog.METRICS).read_text())
    assert metrics["eval_items"] > 0 and "evaluated" not in metrics
    assert "binary_f1" in json.dumps(metrics) and "baseline" in metrics
    versions = mlflow.MlflowClient().search_model_versions()
    assert len(versions) == 1
    lc(root, "predict", "new.csv", "-o", "p.csv")
    p = pd.read_csv(root / "p.csv")
    assert len(p) == 853 and list(p.columns[:2]) == ["item_id", "label"]
    assert sorted(c for c in p.columns if c.startswith("proba_")) == sorted(f"proba_{x}" for x in SCALE)
