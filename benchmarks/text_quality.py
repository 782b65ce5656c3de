"""Issue 13 benchmark: the quality model reads the content (text features) vs TF-IDF + logistic regression.

On three real crowd-labelled text sets, read in place from ``../shared/datasets`` (never copied):

* **convabuse_curry2021**: the train split's judgements in (5 severity levels, 8 annotators), the test
  split scored; gold = abusive when at least half of an item's annotators (each annotator's first
  judgement) chose mild, strong or very strong (with this reading the SOURCE.md peer figure reproduces).
  The valid split is the development set
  the text defaults were chosen on (reported too, as such).
* **rte_snow2008** (text + hypothesis) and **product_zheng2017** (name, description and price of both
  records): the pipeline's own gold split (``split.eval_fraction`` of the gold items frozen as the eval
  split, the rest trained on); gold columns and the product id suffix (which equals the gold) are never
  features.

labelcycle = its library functions with the pipeline's default params, no per-data-set setting:
aggregate (``aggregate.method``) -> tune (``tune``: Optuna, default trials and timeout) -> train the
quality model (``train_quality``, tuned params) -> predict; item column roles inferred (``features``
empty); the error model and curation are skipped. The peer: TF-IDF (word 1-2-grams + char_wb 2-5-grams,
sublinear tf) + ``LogisticRegression(C=4, class_weight="balanced")`` on the text columns joined, trained
on the same aggregated labels (binary); on ConvAbuse also the peer recipe of the data set's SOURCE.md
(``user`` text only, trained on the binary majority of the train split's annotators).

Every (data set, method) runs in its own fresh process (spawn), so the peak memory is that run's: the
process's peak resident set (VmHWM) after loading the data and fitting. A last run times a 10,000-item
synthetic text set through tune (default n_trials and timeout) + train_quality.

    python benchmarks/text_quality.py [--only convabuse,rte,product,timing] [--out PATH]

Writes benchmarks/results/text_quality.md (whole, with the command that reproduces it).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import multiprocessing as mp
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import datasets_root, load_snow, load_zheng  # noqa: E402

if TYPE_CHECKING:
    import optuna

    from labelcycle.params import Params
    from labelcycle.quality.data import TrainingRows
    from labelcycle.quality.model import TrainResult

OUT = Path(__file__).parent / "results" / "text_quality.md"
SEVERITY = {"1": "not_abusive", "0": "ambiguous", "-1": "mild", "-2": "strong", "-3": "very_strong"}
ABUSIVE = ["mild", "strong", "very_strong"]
CONVABUSE_KEY = ["conv_id", "prev_agent", "prev_user", "agent", "user"]


@dataclass
class TextSet:
    """One benchmark set: training judgements, items, and the eval sets (binary gold per item)."""

    name: str
    classes: list[str]
    positive: list[str]  # the labels that make an item positive
    annotations: pd.DataFrame  # item_id, annotator_id, label (the judgements the pipeline may see)
    items: pd.DataFrame  # item_id + item columns
    train_ids: pd.Series  # items the models may train on
    evals: dict[str, tuple[pd.Series, np.ndarray]] = field(default_factory=dict)  # name -> (ids, is_positive)
    text_columns: list[str] = field(default_factory=list)  # what the TF-IDF + LR peer reads
    peer_labels: pd.Series | None = None  # binary labels of the peer recipe (convabuse), by item_id
    peer_text: list[str] | None = None


def _key(frame: pd.DataFrame) -> pd.Series:
    return pd.util.hash_pandas_object(frame[CONVABUSE_KEY].astype(str), index=False).map(
        lambda h: f"c{h:016x}"
    )


def load_convabuse(root: Path) -> TextSet:
    folder = root / "convabuse_curry2021"
    full = pd.read_csv(folder / "ConvAbuseEMNLPfull.csv", dtype=str, keep_default_na=False)
    full["item_id"] = _key(full)
    onehot = full[[f"is_abuse.{s}" for s in SEVERITY]].astype(int).to_numpy()
    full["label"] = np.asarray(list(SEVERITY.values()))[onehot.argmax(axis=1)]
    splits = {}
    for split in ("train", "valid", "test"):
        frame = pd.read_csv(folder / f"ConvAbuseEMNLP{split}.csv", dtype=str, keep_default_na=False)
        splits[split] = _key(frame).drop_duplicates()
    # gold: at least half of an item's annotators (first judgement each) chose an abusive level; this
    # reproduces the SOURCE.md peer figure (TF-IDF + LR on `user`: macro-F1 0.856 here vs 0.855 there)
    first = full.drop_duplicates(["item_id", "annotator_id"])
    votes = first.assign(pos=first["label"].isin(ABUSIVE)).groupby("item_id")["pos"].agg(["sum", "count"])
    majority = votes["sum"] >= votes["count"] / 2
    train_ids = splits["train"]
    annotations = full.loc[full["item_id"].isin(set(train_ids)), ["item_id", "annotator_id", "label"]]
    items = full.drop_duplicates("item_id")[
        ["item_id", "conv_id", "prev_agent", "prev_user", "agent", "user", "bot"]
    ]
    evals = {s: (splits[s], majority.loc[splits[s]].to_numpy()) for s in ("test", "valid")}
    return TextSet(
        "convabuse_curry2021",
        list(SEVERITY.values()),
        ABUSIVE,
        annotations.reset_index(drop=True),
        items.reset_index(drop=True),
        train_ids,
        evals,
        ["prev_agent", "prev_user", "agent", "user"],
        peer_labels=majority.loc[train_ids],
        peer_text=["user"],
    )


def _gold_split(name: str, gold: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    from labelcycle.params import SplitParams
    from labelcycle.split import split_gold

    p = SplitParams()
    eval_split, gold_train = split_gold(gold, p.eval_fraction, p.salt)
    return eval_split["item_id"], eval_split


def load_rte(root: Path) -> TextSet:
    data = load_snow(root / "rte_snow2008" / "rte.standardized.tsv", "rte_snow2008")
    texts = pd.read_csv(root / "rte_snow2008" / "rte1.tsv", sep="\t", dtype=str, keep_default_na=False)
    # `value` is the gold label: never an item column
    items = texts.rename(columns={"id": "item_id"})[["item_id", "task", "text", "hypothesis"]]
    eval_ids, eval_split = _gold_split("rte", data.gold)
    all_ids = items["item_id"]
    return TextSet(
        "rte_snow2008",
        ["0", "1"],
        ["1"],
        data.annotations,
        items,
        all_ids[~all_ids.isin(set(eval_ids))],
        {"eval": (eval_ids, (eval_split["label"] == "1").to_numpy())},
        ["text", "hypothesis"],
    )


def _price(value: str) -> float:
    digits = value.replace("$", "").replace(",", "").strip()
    try:
        return float(digits)
    except ValueError:
        return float("nan")


def load_product(root: Path) -> TextSet:
    folder = root / "product_zheng2017"
    data = load_zheng(folder, "product_zheng2017", strip_id_suffix=True)  # the id suffix is the gold
    records = {}
    with open(folder / "data_product", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            rid, name, description, price = ast.literal_eval(line.strip())
            records[str(rid)] = (name, description, _price(price))
    ids = pd.Series(sorted(set(data.annotations["item_id"])))
    a, b = ids.str.split("_").str[0], ids.str.split("_").str[1]
    items = pd.DataFrame({"item_id": ids})
    for side, rec in (("a", a), ("b", b)):
        items[f"name_{side}"] = [records[r][0] for r in rec]
        items[f"description_{side}"] = [records[r][1] for r in rec]
        items[f"price_{side}"] = [records[r][2] for r in rec]
    eval_ids, eval_split = _gold_split("product", data.gold)
    return TextSet(
        "product_zheng2017",
        ["0", "1"],
        ["1"],
        data.annotations,
        items,
        ids[~ids.isin(set(eval_ids))],
        {"eval": (eval_ids, (eval_split["label"] == "1").to_numpy())},
        ["name_a", "description_a", "name_b", "description_b"],
    )


LOADERS = {"convabuse": load_convabuse, "rte": load_rte, "product": load_product}
METHOD_NAMES = {
    "labelcycle": "labelcycle",
    "tfidf_lr": "TF-IDF + LR",
    "peer": "TF-IDF + LR, peer recipe",
    "labelcycle_user": "labelcycle, features.text: [user] (per-data-set setting)",
}


def synthetic_text(n: int = 10_000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``n`` messages of 5 to 60 Zipf-distributed pseudo-words with a few class cue words, a channel and a
    numeric column; 3 classes (60/25/15%)."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = np.array(["".join(rng.choice(letters, size=rng.integers(2, 9))) for _ in range(5000)])
    p = 1 / np.arange(1, 5001) ** 1.1
    p /= p.sum()
    classes = np.array(["ok", "misleading", "prohibited"])
    y = rng.choice(3, size=n, p=[0.6, 0.25, 0.15])
    cues = [vocab[rng.choice(5000, 40, replace=False)] for _ in range(3)]
    texts = []
    for k in y:
        words = list(rng.choice(vocab, size=rng.integers(5, 60), p=p))
        for _ in range(rng.binomial(3, 0.5)):
            words.insert(rng.integers(0, len(words) + 1), rng.choice(cues[k]))
        texts.append(" ".join(words))
    items = pd.DataFrame(
        {
            "item_id": [f"t{i:05d}" for i in range(n)],
            "message": texts,
            "channel": rng.choice(["web", "app", "email", "sms", "api"], n),
            "score": rng.normal(size=n),
        }
    )
    return items, pd.Series(classes[y])


# -- measurement ---------------------------------------------------------------------------------------


def _vm(field_name: str) -> float:
    """A /proc/self/status memory figure in MiB (NaN where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def binary_scores(is_pos: np.ndarray, p_pos: np.ndarray) -> dict[str, float]:
    """Binary macro-F1, accuracy, positive recall (flagged: P(positive) > 0.5) and PR-AUC."""
    from labelcycle.evaluation.metrics import compute_metrics
    from labelcycle.evaluation.moderation import BINARY_CLASSES, POSITIVE

    gold = np.where(is_pos, BINARY_CLASSES[1], BINARY_CLASSES[0])
    v = compute_metrics(gold, np.column_stack([1 - p_pos, p_pos]), BINARY_CLASSES)
    return {
        "macro_f1": v["macro_f1"],
        "accuracy": v["accuracy"],
        "recall": v[f"recall__{POSITIVE}"],
        "pr_auc": v[f"pr_auc__{POSITIVE}"],
        "positive_rate": float(np.mean(p_pos > 0.5)),
        "gold": [bool(x) for x in is_pos],
        "flags": [bool(x) for x in p_pos > 0.5],
    }


def bootstrap_macro_f1(gold: np.ndarray, flags: list[np.ndarray], n_boot: int = 1000) -> np.ndarray:
    """``n_boot x len(flags)`` binary macro-F1 of each flag vector, all on the same item resamples."""
    rng = np.random.default_rng(0)
    w = rng.multinomial(len(gold), np.full(len(gold), 1 / len(gold)), size=n_boot).astype(np.float64)
    out = np.empty((n_boot, len(flags)))
    for j, f in enumerate(flags):
        tp, fp = w @ (gold & f), w @ (~gold & f)
        fn, tn = w @ (gold & ~f), w @ (~gold & ~f)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1_pos = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
            f1_neg = np.nan_to_num(2 * tn / (2 * tn + fn + fp))
        out[:, j] = (f1_pos + f1_neg) / 2
    return out


def aggregated(ts: TextSet) -> pd.DataFrame:
    """The pipeline's consensus (``aggregate.method``) per item: ``item_id, label, confidence, ...``."""
    from labelcycle.aggregation import make_aggregator
    from labelcycle.curation import curated_labels
    from labelcycle.params import Params
    from labelcycle.validation import validate

    p = Params()
    clean = validate(ts.annotations.copy(), ts.classes).annotations  # dedups repeats as ingest does
    return curated_labels(clean, make_aggregator(p.aggregate.method, classes=ts.classes).fit(clean))


TUNED_CPU = [0.0]  # process CPU time when the last tuning ended


def tune_then_train(
    rows: TrainingRows, classes: list[str], p: Params
) -> tuple[optuna.Study, TrainResult, float]:
    """The tune and train_quality stages in memory: an Optuna study on ``rows``, then the quality model
    trained with its best parameters. Returns the study, the training result and when tuning ended."""
    import optuna

    from labelcycle.quality.model import train
    from labelcycle.quality.tuning import open_study, search_for

    search = search_for(rows, classes, p.tune, features=p.features)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(
        search.study, optuna.storages.InMemoryStorage(), seed=p.tune.seed, pruning=p.tune.pruning
    )
    study.optimize(search.objective, n_trials=p.tune.n_trials, timeout=p.tune.timeout)
    tuned_at = time.time()
    TUNED_CPU[0] = time.process_time()
    q = p.train_quality
    result = train(
        rows.items,
        rows.labels,
        classes,
        params=q.lgb_params(study.best_params),
        features=p.features,
        valid_fraction=q.valid_fraction,
        early_stopping_rounds=q.early_stopping_rounds,
        seed=q.seed,
    )
    return study, result, tuned_at


def run_labelcycle(ts: TextSet, text_columns: list[str] | None = None) -> dict:
    from labelcycle.curation import curated_dataset
    from labelcycle.evaluation.moderation import binary_metrics
    from labelcycle.features.roles import infer_roles
    from labelcycle.params import Params
    from labelcycle.quality.data import training_rows

    p = Params()
    if text_columns is not None:  # a per-data-set setting: these text columns only, the other ones ignored
        other = [c for c in ts.text_columns if c not in text_columns]
        p = dataclasses.replace(p, features=dataclasses.replace(p.features, text=text_columns, ignore=other))
    t0 = time.time()
    labels = aggregated(ts)
    dataset = curated_dataset(labels, ts.items)
    not_train = pd.DataFrame(
        {"item_id": ts.items.loc[~ts.items["item_id"].isin(set(ts.train_ids)), "item_id"]}
    )
    rows = training_rows(dataset, not_train)
    t_agg = time.time()
    study, result, t_tune = tune_then_train(rows, ts.classes, p)
    t_train = time.time()
    out = {
        "fit_s": t_train - t0,
        "aggregate_s": t_agg - t0,
        "tune_s": t_tune - t_agg,
        "train_s": t_train - t_tune,
        "n_trials": len(study.trials),
        "n_train": len(rows.rows),
        "roles": infer_roles(rows.items, p.features).describe().splitlines()[0],
        "n_features": len(result.model.pipeline.feature_names),
        "tuned_text": {k: v for k, v in study.best_params.items() if k.startswith("tfidf_")},
    }
    positive = np.isin(np.asarray(ts.classes), ts.positive)
    for name, (ids, is_pos) in ts.evals.items():
        eval_items = ts.items.set_index("item_id").loc[ids].reset_index()
        proba = result.model.predict_proba(eval_items).to_numpy()
        # the evaluate stage's binary metrics (evaluate.positive_labels, default flag threshold)
        gold = np.where(is_pos, ts.positive[0], next(c for c in ts.classes if c not in ts.positive))
        m = binary_metrics(
            gold, proba, ts.classes, ts.positive, p.evaluate.target_precision, p.evaluate.flag_threshold
        )
        out[name] = {
            "macro_f1": m["binary_macro_f1"],
            "accuracy": m["binary_accuracy"],
            "recall": m["binary_recall"],
            "pr_auc": m["binary_pr_auc"],
            "threshold": m["binary_threshold"],
            "macro_f1_at_half": binary_scores(is_pos, proba[:, positive].sum(axis=1))["macro_f1"],
            "gold": [bool(x) for x in is_pos],
            "flags": [bool(x) for x in proba[:, positive].sum(axis=1) >= m["binary_threshold"]],
        }
    return out


def _join(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return frame[columns].fillna("").astype(str).agg(" | ".join, axis=1).tolist()


def run_tfidf_lr(ts: TextSet, peer_recipe: bool = False) -> dict:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.time()
    if peer_recipe:
        y = ts.peer_labels.to_numpy()
        train_items = ts.items.set_index("item_id").loc[ts.peer_labels.index].reset_index()
        columns = ts.peer_text
    else:
        labels = aggregated(ts).set_index("item_id")["label"]
        train_items = ts.items[ts.items["item_id"].isin(set(ts.train_ids))]
        train_items = train_items[train_items["item_id"].isin(labels.index)].reset_index(drop=True)
        y = labels.loc[train_items["item_id"]].isin(ts.positive).to_numpy()
        columns = ts.text_columns
    texts = _join(train_items, columns)
    word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    X = sparse.hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()
    model = LogisticRegression(C=4, class_weight="balanced", max_iter=2000).fit(X, y)
    out = {"fit_s": time.time() - t0, "n_train": len(y), "n_features": X.shape[1]}
    for name, (ids, is_pos) in ts.evals.items():
        eval_texts = _join(ts.items.set_index("item_id").loc[ids].reset_index(), columns)
        Xe = sparse.hstack([word.transform(eval_texts), char.transform(eval_texts)]).tocsr()
        out[name] = binary_scores(is_pos, model.predict_proba(Xe)[:, 1])
    return out


def run_timing(n: int) -> dict:
    from labelcycle.params import Params
    from labelcycle.quality.data import TrainingRows

    items, y = synthetic_text(n)
    classes = ["ok", "misleading", "prohibited"]
    rows = TrainingRows(items.assign(label=y, confidence=1.0, n_annotations=3), 0)
    p = Params()
    load = os.getloadavg()[0]
    c0, t0 = time.process_time(), time.time()
    study, result, t1 = tune_then_train(rows, classes, p)
    t2 = time.time()
    c2 = time.process_time()
    states = [t.state.name for t in study.trials]
    return {
        "tune_s": t1 - t0,
        "train_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": c2 - c0,
        "tune_cpu_s": TUNED_CPU[0] - c0,
        "n_trials": len(states),
        "n_complete": states.count("COMPLETE"),
        "n_pruned": states.count("PRUNED"),
        "best_iteration": result.best_iteration,
        "n_features": len(result.model.pipeline.feature_names),
        "mean_words": float(items["message"].str.split().str.len().mean()),
        "load": (load, os.getloadavg()[0]),
    }


def _child(task: tuple, queue: mp.Queue) -> None:
    try:
        kind, arg = task
        root = datasets_root()
        start = _vm("VmRSS")
        if kind == "timing":
            out = run_timing(arg)
        else:
            ts = LOADERS[arg[0]](root)
            start = _vm("VmRSS")
            if arg[1] == "labelcycle":
                out = run_labelcycle(ts)
            elif arg[1] == "labelcycle_user":
                out = run_labelcycle(ts, text_columns=["user"])
            else:
                out = run_tfidf_lr(ts, peer_recipe=arg[1] == "peer")
        out.update(rss_start_mib=start, peak_rss_mib=_vm("VmHWM"))
        queue.put(out)
    except Exception as exc:  # reported in the results, not swallowed
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def in_fresh_process(task: tuple) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(task, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


# -- report --------------------------------------------------------------------------------------------


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def render(results: dict, timing: dict | None, command: str, skipped: list[str], loads: tuple) -> str:
    lines = [
        "# Text features: labelcycle's quality model vs TF-IDF + logistic regression",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPU cores visible ({platform.machine()}), shared with other jobs: load "
        f"average {loads[0]:.2f} before and {loads[1]:.2f} after the run, so wall times are upper bounds for "
        "a dedicated 2-core machine. LightGBM and Optuna use 2 threads (`tune.n_jobs`, "
        "`train_quality.n_jobs`).",
        "",
        "labelcycle: the library functions with the pipeline's default params and no per-data-set setting: "
        "aggregate (`aggregate.method`) -> tune (Optuna, `tune` defaults: 15 trials or 120 s) -> train the "
        "quality model with the tuned params -> predict; item column roles inferred (`features` empty). The "
        "quality model boosts from a linear text base (LightGBM `init_score`: a logistic regression stacking "
        "the cross-fitted TF-IDF logistic-regression scores of every text column), and once early stopping "
        "has settled the rounds it is refitted on every training item. The "
        "error model and curation are skipped. Binary decision: the evaluate stage's "
        "(`evaluate.positive_labels`; "
        "flagged at P(positive labels) >= the expected-macro-F1-optimal threshold of the model's own "
        "probabilities, label-free; the figure at 0.5 is in the details). TF-IDF + LR (decision 0.5): word "
        '1-2-grams + char_wb 2-5-grams (sublinear tf), `LogisticRegression(C=4, class_weight="balanced")`, '
        'trained on the same aggregated labels, binary ("peer recipe": the data set\'s SOURCE.md baseline, '
        "`user` text only, trained on the binary annotator majority). Each run in a fresh process; peak "
        "memory = that process's peak resident set after loading the data.",
        "",
    ]
    if skipped:
        lines += [f"Skipped: {', '.join(skipped)}.", ""]
    header = (
        "| data set | eval | method | macro-F1 [95% CI] | Δ vs labelcycle [95% CI] | accuracy "
        "| positive recall "
        "| PR-AUC | fit s | peak MiB |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines += [header]
    for (ds, method), out in results.items():
        if "error" in out:
            lines.append(f"| {ds} | | {method} | error: {out['error']} | | | | | | |")
            continue
        ours = results.get((ds, "labelcycle"), {})
        for name in [k for k in ("test", "valid", "eval") if k in out]:
            m = out[name]
            label = name + (
                " (dev: defaults chosen here)" if ds.startswith("convabuse") and name == "valid" else ""
            )
            gold = np.asarray(m["gold"], dtype=bool)
            flags = [np.asarray(m["flags"], dtype=bool)]
            if method != "labelcycle" and name in ours:
                flags.append(np.asarray(ours[name]["flags"], dtype=bool))
            boot = bootstrap_macro_f1(gold, flags)
            lo, hi = np.percentile(boot[:, 0], [2.5, 97.5])
            delta = "—"
            if len(flags) == 2:
                d = boot[:, 0] - boot[:, 1]
                dlo, dhi = np.percentile(d, [2.5, 97.5])
                delta = f"{m['macro_f1'] - ours[name]['macro_f1']:+.4f} [{dlo:+.4f}, {dhi:+.4f}]"
            lines.append(
                f"| {ds} | {label} | {method} | {_f(m['macro_f1'])} [{lo:.4f}, {hi:.4f}] | {delta} | "
                f"{_f(m['accuracy'])} | {_f(m['recall'], 3)} | {_f(m['pr_auc'])} | {out['fit_s']:.1f} | "
                f"{out['peak_rss_mib']:.0f} |"
            )
    lines += ["", "labelcycle runs in detail:", ""]
    for (ds, method), out in results.items():
        if method.startswith("labelcycle") and "error" not in out:
            at = ", ".join(
                f"{k}: flagged at {out[k]['threshold']:.3f}, macro-F1 at 0.5 {out[k]['macro_f1_at_half']:.4f}"
                for k in ("test", "valid", "eval")
                if k in out
            )
            lines.append(
                f"- {ds} ({method}): {out['n_train']} training items; aggregate {out['aggregate_s']:.1f} s, "
                "tune "
                f"{out['tune_s']:.1f} s ({out['n_trials']} trials), train {out['train_s']:.1f} s; "
                f"{out['n_features']} model features; tuned text settings {out['tuned_text']}; {at}; "
                f"{out['roles']}"
            )
    if timing is not None:
        lines += ["", "## Training time on a 10,000-item text set", ""]
        if "error" in timing:
            lines.append(f"error: {timing['error']}")
        else:
            verdict = "under" if timing["total_s"] < 180 else "OVER"
            load = timing["load"]
            lines += [
                f"Synthetic messages (mean {timing['mean_words']:.1f} words; 3 classes; a categorical and a "
                "numeric column), true labels, tune with the default `tune` params + train_quality with the "
                "tuned params "
                "(library functions, no MLflow):",
                "",
                f"- tune: {timing['tune_s']:.1f} s, {timing['n_trials']} trials "
                f"({timing['n_complete']} complete, "
                f"{timing['n_pruned']} pruned)",
                f"- train_quality: {timing['train_s']:.1f} s (best iteration {timing['best_iteration']}, "
                f"{timing['n_features']} features)",
                f"- total: **{timing['total_s']:.1f} s wall** ({verdict} the 3-minute target), "
                f"{timing['cpu_s']:.1f} s CPU (all threads); peak {timing['peak_rss_mib']:.0f} MiB; load "
                f"average {load[0]:.2f} at the start and {load[1]:.2f} at the end on {os.cpu_count()} cores",
                "",
                "The run waits on nothing but the CPU (data in memory, no MLflow), so on 2 dedicated cores its "
                "wall time is at most its CPU time; on a shared machine the wall time is longer. Optuna's "
                "120 s `tune.timeout` is wall time, so a loaded machine finishes fewer trials within it: "
                f"tune used {timing['tune_cpu_s']:.1f} s CPU for {timing['n_trials']} trials, "
                f"{cpu_bound(timing):.1f} s CPU in all with tune's CPU per trial scaled to "
                f"{TUNE_TRIALS} trials.",
            ]
    lines += ["", "## Targets", ""] + targets(results, timing)
    lines += [
        "",
        "## Settings chosen by looking at benchmark data",
        "",
        "- `features.tfidf` defaults (`max_features: 2000` chi-squared-selected n-grams over all text "
        "columns, `min_df: 2`, word 1-2-grams, char_wb 2-5-grams) and `tune.text_search_space` "
        "(`max_features` 300 to 5000) "
        "were chosen on the ConvAbuse **valid** split (macro-F1) and on the timing of the synthetic set "
        "(keeping 15 trials near the 120 s tune budget). They are checked here on sets they were not "
        "chosen on: the ConvAbuse test split, RTE and Product.",
        "- The role-inference thresholds (`labelcycle.features.roles`: text = on average >= 3 words or >= 30 "
        "characters, and >= 100 or half distinct values; id-like = >= 50 and half distinct values, <= 5% "
        "with a space) were set after looking at ConvAbuse's column statistics; RTE and Product were not "
        "looked at.",
        "- The linear text base the quality model boosts from (the stack of the columns' scores, "
        "`text_score.STACK_C = 1`), the refit on every training item after early stopping, and keeping the "
        "per-column score model as it was (`C = 4`, no class weights; compared with C 1 and 16 and with "
        "balanced class weights) were chosen on the ConvAbuse **valid** split (macro-F1 of the stack alone "
        "0.864 to 0.870 over C; balanced weights 0.69 to 0.79; the pipeline without the refit 0.859, with it "
        "0.870). Two early development runs (the columns' scores and their stack alone, then boosting "
        "from the stack with fixed LightGBM params) printed ConvAbuse test figures beside the valid ones "
        "(the stack: 0.851 to 0.854); no choice was made on them. The ConvAbuse test figure above is the "
        "final setting's (every run of this script with it gave the same figure). RTE and Product played no "
        "part in these choices.",
        "- The design itself was settled on ConvAbuse during development, and those runs printed the test "
        "split beside the valid one: the cross-fitted linear text score per text column (without it LightGBM "
        "on n-grams alone reached PR-AUC about 0.78 on both splits, below the peer's 0.82) and the "
        "expected-macro-F1 flag threshold (at 0.5 the model flags fewer items than the gold has). So the "
        "ConvAbuse test split is not a pristine hold-out for those two choices; RTE and Product are.",
        "- The ConvAbuse gold reading (at least half of the annotators, ties abusive) was chosen because it "
        "reproduces the SOURCE.md peer figure (0.856 here vs 0.855); with a strict majority the peer recipe "
        "scores 0.848 and labelcycle's test figure moves likewise.",
        "",
        "Δ = that method minus labelcycle, on the same bootstrap resamples of the eval items (1,000).",
        "",
    ]
    return "\n".join(lines)


TUNE_TRIALS = 15  # tune.n_trials by default


def cpu_bound(timing: dict) -> float:
    """CPU seconds the run would take with all default trials: tune's CPU per trial run times
    ``tune.n_trials`` (when the timeout cut the study short), plus train_quality's."""
    tune = timing["tune_cpu_s"] * max(1.0, TUNE_TRIALS / max(timing["n_trials"], 1))
    return tune + timing["cpu_s"] - timing["tune_cpu_s"]


def targets(results: dict, timing: dict | None) -> list[str]:
    """The issue's targets, met or not, from the figures above."""
    out = []
    conv = results.get(("convabuse_curry2021", "labelcycle"), {})
    if "test" in conv:
        f1 = conv["test"]["macro_f1"]
        out.append(
            f"- ConvAbuse binary macro-F1 on the test split >= 0.855 with the defaults: {f1:.4f}, "
            + ("**met**." if f1 >= 0.855 else "**not met** (see the peer recipe row for the difference).")
        )
    for ds in ("rte_snow2008", "product_zheng2017"):
        ours, peer = results.get((ds, "labelcycle"), {}), results.get((ds, "TF-IDF + LR"), {})
        if "eval" in ours and "eval" in peer:
            gold = np.asarray(ours["eval"]["gold"], dtype=bool)
            boot = bootstrap_macro_f1(
                gold, [np.asarray(ours["eval"]["flags"], bool), np.asarray(peer["eval"]["flags"], bool)]
            )
            lo, hi = np.percentile(boot[:, 0] - boot[:, 1], [2.5, 97.5])
            d = ours["eval"]["macro_f1"] - peer["eval"]["macro_f1"]
            verdict = "better" if lo > 0 else ("level (interval holds 0)" if hi >= 0 else "**below**")
            out.append(f"- {ds}: labelcycle - TF-IDF + LR = {d:+.4f} [{lo:+.4f}, {hi:+.4f}]: {verdict}.")
    if timing is not None and "error" not in timing:
        if timing["total_s"] < 180:
            verdict = f"{timing['total_s']:.0f} s wall, **met**."
        elif cpu_bound(timing) < 180:
            verdict = (
                f"{timing['total_s']:.0f} s wall on the shared machine (load average {timing['load'][0]:.1f} "
                f"to {timing['load'][1]:.1f} on {os.cpu_count()} cores), {timing['cpu_s']:.0f} s CPU "
                f"({cpu_bound(timing):.0f} s with all {TUNE_TRIALS} trials, see above): **met on CPU time** "
                "(the bound for 2 dedicated cores), not shown on wall time here."
            )
        else:
            verdict = f"{timing['total_s']:.0f} s wall, {timing['cpu_s']:.0f} s CPU, **not met**."
        out.append(f"- 10,000 text items, tune + train_quality under 3 minutes: {verdict}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="convabuse,rte,product,timing")
    ap.add_argument("--timing-items", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    wanted = args.only.split(",")
    command = "python benchmarks/text_quality.py" + (
        f" --only {args.only}" if args.only != ap.get_default("only") else ""
    )
    root = datasets_root()
    loads = [os.getloadavg()[0]]
    results, skipped = {}, []
    folders = {"convabuse": "convabuse_curry2021", "rte": "rte_snow2008", "product": "product_zheng2017"}
    for key in [k for k in ("convabuse", "rte", "product") if k in wanted]:
        if not (root / folders[key]).is_dir():
            skipped.append(f"{folders[key]} (not found under {root}; set LABELCYCLE_SHARED_DATASETS)")
            print(f"skip {folders[key]}: not found under {root}", flush=True)
            continue
        methods = ["labelcycle", "tfidf_lr"] + (["peer", "labelcycle_user"] if key == "convabuse" else [])
        for method in methods:
            out = in_fresh_process(("set", (key, method)))
            name = METHOD_NAMES[method]
            results[(folders[key], name)] = out
            print(
                folders[key],
                name,
                {k: v for k, v in out.items() if k in ("fit_s", "error")},
                {
                    k: {n: x for n, x in v.items() if n not in ("gold", "flags")}
                    for k, v in out.items()
                    if k in ("test", "valid", "eval")
                },
                flush=True,
            )
    timing = None
    if "timing" in wanted:
        timing = in_fresh_process(("timing", args.timing_items))
        print("timing", timing, flush=True)
    loads.append(os.getloadavg()[0])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, timing, command, skipped, tuple(loads)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
