"""Benchmark: finding wrong annotations, labelcycle's error model vs Dawid-Skene vs cleanlab CROWDLAB.

Run from the repository root (cleanlab, AGPL, lives only in its own venv and is called as a subprocess):

    python3.11 -m venv benchmarks/.venv-peers-cleanlab
    benchmarks/.venv-peers-cleanlab/bin/pip install cleanlab==2.9.0 pandas scikit-learn
    PYTHONPATH=src nice .venv/bin/python benchmarks/error_detection.py

Data: the real data sets in ``../shared/datasets`` read in place (gold used only to score, and for the
clearly marked gold-trained row, where gold annotations are scored out-of-fold) and the demo data.
An annotation is wrong when it differs from the gold label of its item; scores are judged on the
annotations of gold items by average precision (AP) and ROC-AUC.

Methods:

* ``ours (no gold)``: labelcycle's unsupervised score, 1 - the cross-fitted posterior of the given label
  (cross-fitted annotator confusions, leave-one-out item posterior; on the demo also the cross-fitted
  quality model). No gold at all.
* ``ours (gold, out-of-fold)``: the LightGBM error model trained on gold annotations; every gold
  annotation is scored by a model that did not see its item (5 folds over gold items).
* ``dawid_skene``: 1 - the Dawid-Skene posterior of the given label (fitted on all annotations).
* ``crowdlab``: cleanlab's ``get_label_quality_multiannotator`` per-annotation quality with out-of-fold
  model probabilities (LightGBM on item features, 5 folds, trained on majority vote) on the demo; the real
  data sets have no item features, so there the "model" is the out-of-fold class frequency of the
  majority vote (CROWDLAB then rests on its annotator weights).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from labelcycle import schema  # noqa: E402
from labelcycle.detection.features import dawid_skene_em, item_folds  # noqa: E402
from labelcycle.detection.model import detect_label_errors  # noqa: E402
from labelcycle.params import ErrorModelParams, FeatureParams  # noqa: E402

#: the settings the published figures were measured with (majority-vote context, 300 trees); the pipeline's
#: defaults (params.yaml train_error_model) are leaner
BENCH_TREES = 300

DATA = REPO.parent / "shared" / "datasets"
PEER_PY = REPO / "benchmarks" / ".venv-peers-cleanlab" / "bin" / "python"
OUT = REPO / "benchmarks" / "results" / "error_detection.md"
DEMO = {"n_items": 10_000, "n_annotators": 100, "seed": 7}

CROWDLAB_SCRIPT = r"""
import sys, numpy as np, pandas as pd
from cleanlab.multiannotator import get_label_quality_multiannotator
d = np.load(sys.argv[1])
item, ann, lab, probs = d["item"], d["ann"], d["lab"], d["probs"]
M = np.full((probs.shape[0], ann.max() + 1), np.nan)
M[item, ann] = lab
df = pd.DataFrame(M, columns=[f"a{j}" for j in range(M.shape[1])])
res = get_label_quality_multiannotator(df, probs, verbose=False)
q = res["detailed_label_quality"].to_numpy()
np.save(sys.argv[2], q[item, ann])
"""


# ---------------------------------------------------------------- loaders (minimal, read in place)
def _frame(i, w, lab) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.ITEM_ID: pd.Series(i).astype(str).str.strip().to_numpy(),
            schema.ANNOTATOR_ID: pd.Series(w).astype(str).str.strip().to_numpy(),
            schema.LABEL: pd.Series(lab).astype(str).str.strip().to_numpy(),
        }
    )


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(annotations, gold) of a shared data set; gold ids leaking into item ids are cut."""
    f = DATA / name
    if name in ("adult_content2", "hitspam_crowdflower"):
        raw = pd.read_csv(f / "labels.txt", sep="\t", header=None, names=["w", "i", "l"], dtype=str)
        g = pd.read_csv(f / "gold.txt", sep="\t", header=None, names=["i", "g"], dtype=str)
        ann, gold = _frame(raw["i"], raw["w"], raw["l"]), _frame(g["i"], g["i"], g["g"])
    elif name.endswith("zheng2017"):
        raw = pd.read_csv(f / "answer.csv", dtype=str)
        g = pd.read_csv(f / "truth.csv", dtype=str)
        raw.columns, g.columns = ["i", "w", "l"], ["i", "g"]
        if name == "product_zheng2017":  # ids end in _<gold>
            raw["i"] = raw["i"].str.strip().str.rsplit("_", n=1).str[0]
            g["i"] = g["i"].str.strip().str.rsplit("_", n=1).str[0]
        ann, gold = _frame(raw["i"], raw["w"], raw["l"]), _frame(g["i"], g["i"], g["g"])
    elif name in ("rte_snow2008", "temp_snow2008"):
        raw = pd.read_csv(f / f"{name.split('_')[0]}.standardized.tsv", sep="\t", dtype=str)
        ann, gold = (
            _frame(raw["orig_id"], raw["!amt_worker_ids"], raw["response"]),
            _frame(raw["orig_id"], raw["orig_id"], raw["gold"]),
        )
    elif name == "music_genre_rodrigues2013":
        raw = pd.read_csv(f / "mturk_answers.csv", dtype=str)
        codes, _ = pd.factorize(raw["Input.song"])  # file names leak the genre: opaque ids
        ids = [f"song{c:04d}" for c in codes]
        ann, gold = (
            _frame(ids, raw["WorkerID"], raw["Answer.pred_label"]),
            _frame(ids, ids, raw["Input.true_label"]),
        )
    else:
        raise KeyError(name)
    ann = ann.drop_duplicates([schema.ITEM_ID, schema.ANNOTATOR_ID], keep="last").reset_index(drop=True)
    gold = gold[[schema.ITEM_ID, schema.LABEL]].drop_duplicates(schema.ITEM_ID)
    gold = gold[gold[schema.ITEM_ID].isin(set(ann[schema.ITEM_ID]))].reset_index(drop=True)
    return ann, gold


REAL = (
    "adult_content2",
    "rte_snow2008",
    "temp_snow2008",
    "product_zheng2017",
    "possent_zheng2017",
    "dog_zheng2017",
    "music_genre_rodrigues2013",
    "hitspam_crowdflower",
)


# ---------------------------------------------------------------- peers
def ds_score(ann: pd.DataFrame, classes: tuple[str, ...]) -> np.ndarray:
    """1 - Dawid-Skene posterior of the given label (aggregation.dawid_skene when present, else the
    detection module's EM started from majority vote, 50 steps)."""
    try:
        from labelcycle.aggregation import make_aggregator

        agg = make_aggregator("dawid_skene", classes=classes).fit(ann)
        post = agg.probas_.reindex(ann[schema.ITEM_ID])[list(classes)].to_numpy()
    except Exception:
        item, items = pd.factorize(ann[schema.ITEM_ID], sort=True)
        a, _ = pd.factorize(ann[schema.ANNOTATOR_ID], sort=True)
        lab = pd.Categorical(ann[schema.LABEL], categories=list(classes)).codes.astype(np.int64)
        votes = np.zeros((len(items), len(classes)))
        np.add.at(votes, (item, lab), 1.0)
        p, _, _ = dawid_skene_em(item, a, lab, votes / votes.sum(1, keepdims=True), a.max() + 1, 50)
        post = p[item]
    lab = pd.Categorical(ann[schema.LABEL], categories=list(classes)).codes
    return 1.0 - post[np.arange(len(ann)), lab]


def oof_probs(
    ann: pd.DataFrame, classes: tuple[str, ...], items: pd.DataFrame | None
) -> tuple[np.ndarray, pd.Index]:
    """Out-of-fold model probabilities per item (LightGBM on features, else class frequencies), MV targets."""
    from labelcycle.aggregation import make_aggregator
    from labelcycle.quality.model import train

    mv = make_aggregator("majority_vote", classes=classes).fit(ann)
    ids = mv.labels_.index
    fold = item_folds(np.asarray(ids, dtype=object), 5, "benchmark-crowdlab")
    probs = np.zeros((len(ids), len(classes)))
    y = mv.labels_.astype(str).to_numpy()
    for f in range(5):
        te, tr = fold == f, fold != f
        if items is None:
            freq = pd.Series(y[tr]).value_counts().reindex(list(classes)).fillna(0).to_numpy() + 1.0
            probs[te] = freq / freq.sum()
        else:
            feat = items.set_index(schema.ITEM_ID).loc[np.asarray(ids, dtype=object)].reset_index()
            m = train(
                feat[tr].reset_index(drop=True),
                pd.Series(y[tr]),
                classes,
                params={"n_estimators": 150, "learning_rate": 0.1, "num_leaves": 15, "num_threads": 1},
                valid_fraction=0.0,
                seed=0,
            ).model
            probs[te] = m.predict_proba(feat[te].reset_index(drop=True)).to_numpy()
    probs = np.clip(probs, 1e-6, 1)
    return probs / probs.sum(1, keepdims=True), ids


def crowdlab_score(ann: pd.DataFrame, classes: tuple[str, ...], items: pd.DataFrame | None) -> np.ndarray:
    if not PEER_PY.exists():
        raise RuntimeError(f"{PEER_PY} missing; create the cleanlab venv (see the module docstring)")
    probs, ids = oof_probs(ann, classes, items)
    item = ids.get_indexer(ann[schema.ITEM_ID])
    a, _ = pd.factorize(ann[schema.ANNOTATOR_ID], sort=True)
    lab = pd.Categorical(ann[schema.LABEL], categories=list(classes)).codes
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "in.npz", item=item, ann=a, lab=lab, probs=probs)
        (Path(tmp) / "run.py").write_text(CROWDLAB_SCRIPT)
        res = subprocess.run(
            [str(PEER_PY), str(Path(tmp) / "run.py"), str(Path(tmp) / "in.npz"), str(Path(tmp) / "out.npy")],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise RuntimeError(res.stderr[-2000:])
        return 1.0 - np.load(Path(tmp) / "out.npy")


# ---------------------------------------------------------------- evaluation
def evaluate(
    name: str,
    ann: pd.DataFrame,
    gold: pd.DataFrame,
    items: pd.DataFrame | None,
    truth_error: np.ndarray | None = None,
) -> tuple[list[dict], dict]:
    classes = tuple(sorted(set(ann[schema.LABEL]) | set(gold[schema.LABEL])))
    g = gold.set_index(schema.ITEM_ID)[schema.LABEL]
    ref = ann[schema.ITEM_ID].map(g)
    on_gold = ref.notna().to_numpy()
    y = (ann[schema.LABEL] != ref).to_numpy()[on_gold] if truth_error is None else truth_error[on_gold]
    params = ErrorModelParams(
        features=FeatureParams(aggregator="majority_vote", quality_model=items is not None),
        n_estimators=BENCH_TREES,
        min_gold_targets=20,
    )
    scores, times = {}, {}
    t = time.time()
    scores["ours (no gold)"] = (
        detect_label_errors(ann, classes, items, None, params=params).scores["label_error_score"].to_numpy()
    )
    times["ours (no gold)"] = time.time() - t
    t = time.time()
    sup = detect_label_errors(ann, classes, items, gold, params=params)
    scores["ours (gold, out-of-fold)"] = sup.scores["label_error_score"].to_numpy()
    times["ours (gold, out-of-fold)"] = time.time() - t
    t = time.time()
    scores["dawid_skene"] = ds_score(ann, classes)
    times["dawid_skene"] = time.time() - t
    t = time.time()
    try:
        scores["crowdlab"] = crowdlab_score(ann, classes, items)
    except Exception as exc:  # report, do not hide
        print(f"{name}: crowdlab failed: {exc}", file=sys.stderr)
    times["crowdlab"] = time.time() - t
    rows = []
    for method, s in scores.items():
        s = s[on_gold]
        rows.append(
            {
                "dataset": name,
                "method": method,
                "n_scored": int(on_gold.sum()),
                "error_rate": float(y.mean()),
                "AP": average_precision_score(y, s) if 0 < y.sum() < len(y) else np.nan,
                "ROC_AUC": roc_auc_score(y, s) if 0 < y.sum() < len(y) else np.nan,
                "seconds": times[method],
            }
        )
        print(rows[-1], flush=True)
    extra = {"scores": scores, "on_gold": on_gold}
    return rows, extra


def main() -> None:
    from labelcycle.demo import generate
    from labelcycle.split import split_gold

    rows: list[dict] = []
    # demo: known truth for every annotation; the error model trains on the gold_train split only
    d = generate(**DEMO)
    ann = d.annotations.copy()
    truth_err = d.truth_annotations["is_error"].to_numpy()
    eval_gold, gold_train = split_gold(d.gold, 0.6, "labelcycle-eval-v1")
    all_truth = d.truth_items.rename(columns={"true_label": schema.LABEL})[[schema.ITEM_ID, schema.LABEL]]
    classes = ("ok", "misleading", "prohibited")
    params = ErrorModelParams(features=FeatureParams(aggregator="majority_vote"), n_estimators=BENCH_TREES)
    t = time.time()
    sup = detect_label_errors(
        ann, classes, d.items, gold_train, exclude_items=eval_gold[schema.ITEM_ID], params=params
    )
    sup_s = sup.scores["label_error_score"].to_numpy()
    sup_t = time.time() - t
    demo_rows, extra = evaluate("demo", ann, all_truth, d.items, truth_err)
    # replace the (truth-as-gold) supervised row by the pipeline's setting: gold_train only
    gt_items = set(gold_train[schema.ITEM_ID])
    not_train = ~ann[schema.ITEM_ID].isin(gt_items).to_numpy()
    for r in demo_rows:
        if r["method"] == "ours (gold, out-of-fold)":
            r["method"] = "ours (gold_train 2% of items)"
            r["AP"] = average_precision_score(truth_err, sup_s)
            r["ROC_AUC"] = roc_auc_score(truth_err, sup_s)
            r["seconds"] = sup_t
    for r in demo_rows:
        r["n_scored"] = len(ann)
    rows += demo_rows
    # 5% review budget on the demo: annotations chosen by the error model vs at random
    n5 = int(round(0.05 * len(ann)))
    top = np.argsort(-sup_s, kind="stable")[:n5]
    found = int(truth_err[top].sum())
    random_expect = truth_err.mean() * n5
    budget = {
        "annotations": len(ann),
        "budget_5pct": n5,
        "wrong_found_error_model": found,
        "wrong_found_random_expected": random_expect,
        "ratio": found / random_expect,
        "wrong_found_excluding_gold_train": int(truth_err[top][not_train[top]].sum()),
    }
    print(budget, flush=True)

    for name in REAL:
        ann, gold = load(name)
        r, _ = evaluate(name, ann, gold, None)
        rows += r
    res = pd.DataFrame(rows)
    write_report(res, budget)


def write_report(res: pd.DataFrame, budget: dict) -> None:
    fmt = res.copy()
    pivot_ap = fmt.pivot(index="dataset", columns="method", values="AP")
    pivot_auc = fmt.pivot(index="dataset", columns="method", values="ROC_AUC")
    order = [d for d in ["demo", *REAL] if d in pivot_ap.index]
    pivot_ap, pivot_auc = pivot_ap.loc[order], pivot_auc.loc[order]
    real = [d for d in order if d != "demo"]
    pivot_ap.loc["mean over real data sets"] = pivot_ap.loc[real].mean()
    pivot_auc.loc["mean over real data sets"] = pivot_auc.loc[real].mean()
    info = res.groupby("dataset")[["n_scored", "error_rate"]].first().loc[order]
    lines = [
        "# Finding wrong annotations: error model vs Dawid-Skene vs CROWDLAB",
        "",
        "Reproduce (from the repository root; cleanlab only in its own venv, see the script's docstring):",
        "",
        "```",
        "PYTHONPATH=src nice /work/main/.venv/bin/python benchmarks/error_detection.py",
        "```",
        "",
        f"Demo: `labelcycle.demo.generate({', '.join(f'{k}={v}' for k, v in DEMO.items())})`, every annotation scored "
        "against the hidden truth; the supervised error model trains on the gold_train split only (40% of the "
        "5% gold items; eval items excluded). Real data sets: read in place from `../shared/datasets`, duplicate "
        "(item, worker) rows reduced to the last, scored on the annotations of gold items; gold is never an "
        "input except in the `ours (gold, out-of-fold)` column, where each gold annotation is scored by a model "
        "that did not see its item. The real data sets have no item features, so the quality-model features "
        "are absent and CROWDLAB's model probabilities are out-of-fold class frequencies.",
        "",
        "## Average precision (wrong annotation = positive)",
        "",
        pivot_ap.to_markdown(floatfmt=".3f"),
        "",
        "## ROC-AUC",
        "",
        pivot_auc.to_markdown(floatfmt=".3f"),
        "",
        "## Data",
        "",
        info.to_markdown(floatfmt=".3f"),
        "",
        "## Review budget on the demo (5% of annotations)",
        "",
        f"The error model's top 5% ({budget['budget_5pct']} of {budget['annotations']} annotations) hold "
        f"{budget['wrong_found_error_model']} wrong annotations ({budget['wrong_found_excluding_gold_train']} of "
        f"them off the gold_train items); a random 5% holds {budget['wrong_found_random_expected']:.0f} in "
        f"expectation: **{budget['ratio']:.2f}x**.",
        "",
        "Run time per method (seconds, 2 shared cores):",
        "",
        res.pivot(index="dataset", columns="method", values="seconds").loc[order].to_markdown(floatfmt=".1f"),
        "",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines))
    (OUT.with_suffix(".json")).write_text(
        json.dumps({"rows": res.to_dict(orient="records"), "budget": budget}, indent=1, default=float)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
