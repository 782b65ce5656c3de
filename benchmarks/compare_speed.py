"""Benchmark: `labelcycle compare` on two versions of 100,000 items, timed as a whole command.

Writes two project folders laid out as compare reads them (data/curated/labels.parquet,
data/interim/annotations.parquet and items.parquet, reports/predictions.parquet and metrics.json,
params.yaml) with 100,000 curated items, 5 annotations per item and 100,000 gold eval items, then
times `labelcycle compare A B --json` (logged to a local MLflow SQLite store created beforehand, as
in a project that has run its pipeline), with `--html`, and with `--no-log`. Target (issue 17): the logged
command under 5 s (it took 7.9 s before the fast-edges work). The results file is written whole, with the
load average of the machine during the run (other jobs share it when that is above ~0.5) and the CPU
seconds each command used (user + system), which other jobs disturb less than the wall clock.

    python benchmarks/compare_speed.py [--items 100000] [--repeat 3] [--out benchmarks/results/compare_speed.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ["ok", "misleading", "prohibited"]
#: seconds the logged command should take (median), issue 17
TARGET_S = 5.0


def write_version(folder: Path, n: int, seed: int, skill: float, method: str, flip: float) -> None:
    rng = np.random.default_rng(seed)
    ids = np.array([f"ad-{i:07d}" for i in range(n)], dtype=object)
    truth = np.random.default_rng(0).integers(0, 3, n)
    ann_labels = np.where(rng.random((n, 5)) < 0.75, truth[:, None], rng.integers(0, 3, (n, 5)))
    votes = np.stack([(ann_labels == k).sum(axis=1) for k in range(3)], axis=1)
    label = votes.argmax(axis=1)
    label = np.where(rng.random(n) < flip, rng.integers(0, 3, n), label)
    proba = votes / 5
    labels = pd.DataFrame(
        {"item_id": ids, "label": np.asarray(CLASSES)[label], "confidence": proba.max(axis=1)}
    )
    for j, c in enumerate(CLASSES):
        labels[f"proba_{c}"] = proba[:, j]
    labels["n_annotations"] = 5
    keep = rng.random(n) > 0.002  # a few items dropped per version
    ann = pd.DataFrame(
        {
            "item_id": np.repeat(ids, 5),
            "annotator_id": [f"w{k:03d}" for k in rng.integers(0, 300, n * 5)],
            "label": np.asarray(CLASSES)[ann_labels.ravel()],
            "batch_id": [f"week-{w:02d}" for w in np.repeat(np.arange(n) % 12, 5)],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ids,
            "category": np.asarray(["a", "b", "c", "d", "e", "f"])[np.arange(n) % 6],
            "region": np.asarray(["EU", "NA", "LATAM", "APAC", "MEA"])[np.arange(n) % 5],
        }
    )
    logits = rng.normal(0, 1, (n, 3))
    hit = rng.random(n) < skill
    logits[np.arange(n), np.where(hit, truth, (truth + 1) % 3)] += 2.5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    preds = pd.DataFrame(
        {
            "item_id": ids,
            "gold_label": np.asarray(CLASSES)[truth],
            "label": np.asarray(CLASSES)[p.argmax(axis=1)],
        }
    )
    for j, c in enumerate(CLASSES):
        preds[f"proba_{c}"] = p[:, j]
    for sub in ("data/curated", "data/interim", "reports"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    labels[keep].to_parquet(folder / "data/curated/labels.parquet", index=False)
    ann[np.repeat(keep, 5)].to_parquet(folder / "data/interim/annotations.parquet", index=False)
    items.to_parquet(folder / "data/interim/items.parquet", index=False)
    preds.to_parquet(folder / "reports/predictions.parquet", index=False)
    (folder / "reports/metrics.json").write_text(json.dumps({"eval_digest": "bench-eval-split"}))
    (folder / "params.yaml").write_text(f"aggregate:\n  method: {method}\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """Wall clock and CPU seconds (user + system, all its threads) of one command, and its output."""
    c0, t0 = _children_cpu(), time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt, cpu = time.perf_counter() - t0, _children_cpu() - c0
    if res.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{res.stderr[-3000:]}")
    return dt, cpu, res.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "compare_speed.md")
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_version(work / "base", args.items, 1, 0.70, "majority_vote", 0.0)
        write_version(work / "cand", args.items, 2, 0.72, "dawid_skene", 0.03)
        src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's package, wherever we run
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
            "DVC_NO_ANALYTICS": "1",
            "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
        }
        lc = [sys.executable, "-m", "labelcycle.cli"]
        # create the store once (a project's store exists after its first pipeline run)
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from pathlib import Path; from labelcycle.tracking.runs import "
                f"configure; configure(Path({str(work)!r}))",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        cases = {
            "compare base cand --json": [*lc, "compare", "base", "cand", "--json"],
            "compare base cand --json --html report.html": [
                *lc,
                "compare",
                "base",
                "cand",
                "--json",
                "--html",
                "report.html",
            ],
            "compare base cand --json --no-log": [*lc, "compare", "base", "cand", "--json", "--no-log"],
        }
        results = {}
        cpu = {}
        out = ""
        for name, cmd in cases.items():
            times, cpus = [], []
            for _ in range(args.repeat):
                dt, cpu_s, out_ = timed(cmd, work, env)
                times.append(dt)
                cpus.append(cpu_s)
                out = out or out_
            results[name] = times
            cpu[name] = cpus
        summary = json.loads(out)
    lines = [
        f"# compare speed: two versions of {args.items:,} items",
        "",
        f"Command: `python benchmarks/compare_speed.py --items {args.items} --repeat {args.repeat}`",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"load average {load_before:.1f} before the runs and {os.getloadavg()[0]:.1f} after them.",
        "",
        f"Data: {args.items:,} curated items and {args.items * 5:,} annotations per version, {args.items:,} gold eval "
        "items with saved per-item predictions, 2 slice columns; 1000 paired bootstrap resamples (200 per slice).",
        "",
        "CPU: user + system seconds of the whole process (all its threads), the median run's; steadier than",
        "the wall clock where other jobs share the machine.",
        "",
        "| command (wall clock, whole process) | min s | median s | max s | CPU s (median) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, times in results.items():
        lines.append(
            f"| `labelcycle {name}` | {min(times):.2f} | {float(np.median(times)):.2f} | {max(times):.2f} "
            f"| {float(np.median(cpu[name])):.2f} |"
        )
    logged = float(np.median(results["compare base cand --json"]))
    d = summary["dataset_diff"]
    lines += [
        "",
        f"Result: {d['items_added']} added, {d['items_removed']} removed, {d['labels_changed']} labels "
        f"changed; accuracy delta {summary['metrics']['accuracy']['delta']:+.4f} "
        f"[{summary['metrics']['accuracy']['ci_low']:+.4f}, {summary['metrics']['accuracy']['ci_high']:+.4f}]; "
        f"verdict: {summary['verdict']}.",
        "",
        f"Target: `labelcycle compare base cand --json` under {TARGET_S:.0f} s (median): "
        f"**{'met' if logged < TARGET_S else 'not met'}** ({logged:.2f} s).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
