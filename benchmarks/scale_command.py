"""Scale of the aggregation as a whole command: partitioned Parquet with string ids, up to 100M annotations.

For each size N the script generates, on the fly and in 5M-row files, a Parquet data set with string
ids (``N / 4`` items, ``N / 5000`` annotators of random skill, 3 classes) and times whole commands on it,
each a fresh process measured by its peak RSS (sampled at 20 Hz):

* ``labelcycle aggregate DIR -o OUT.csv --save-fit FIT`` (default method, out of core: Arrow batches
  hash-bucketed into coded parts, streaming EM, CSV written part by part with Arrow);
* crowd-kit 1.4.2 ``DawidSkene`` as a whole command on the same files (``benchmarks/peers.py`` in
  ``benchmarks/.venv-peers``: pandas ``read_parquet``, fit, CSV), up to ``--peer-max`` annotations,
  killed after ``--peer-timeout`` seconds; also on ``benchmarks/synthetic.py``'s 10M table
  (2M items x 5 labels, 2,000 annotators with Zipf activity and spammers, 4 classes).

Incremental: on the ``--weekly-base`` size, the base is fitted cold once and leaves its state
(:mod:`labelcycle.aggregation.incremental`); a weekly file of 1M annotations (new items, the same
annotators) is added, and on the same coded parts (what the pipeline's aggregate stage reads: ingest
writes the parts) the fit + labels are timed incremental (only the week's rows, from the state; the old
items' labels are the state's file bytes, the new items' row groups appended), warm
(every row, from the base's saved fit) and cold, each in its own process (``--fit-only``), plus each
one's label agreement with the cold fit.

Reproduce (writes benchmarks/results/scale_command.md; needs ~4 GiB of disk per 100M):

    PYTHONPATH=src nice python benchmarks/scale_command.py --sizes 1000000 10000000 100000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import machine_line, run_measured  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PEERS_PYTHON = REPO / "benchmarks" / ".venv-peers" / "bin" / "python"
OUT = REPO / "benchmarks" / "results" / "scale_command.md"
LABELS = ("ok", "misleading", "prohibited")
CHUNK = 5_000_000


def generate(n: int, out: Path, seed: int = 0, prefix: str = "i", n_annotators: int | None = None) -> dict:
    """``n`` annotations in 5M-row Parquet files under ``out`` (4 per item on average)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_items = max(10, n // 4)
    n_annotators = n_annotators or max(30, n // 5000)
    truth = rng.choice(3, size=n_items, p=[0.7, 0.2, 0.1])
    skill = np.random.default_rng(12345).uniform(0.55, 0.95, n_annotators)
    for k, start in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - start)
        item = rng.integers(0, n_items, m)
        annotator = rng.integers(0, n_annotators, m)
        correct = rng.random(m) < skill[annotator]
        label = np.where(correct, truth[item], rng.integers(0, 3, m))
        table = pa.table(
            {
                "item_id": pa.array(np.char.add(prefix, item.astype("U10"))),
                "annotator_id": pa.array(np.char.add("a", annotator.astype("U10"))),
                "label": pa.array(np.array(LABELS)[label]),
            }
        )
        pq.write_table(table, out / f"{prefix}-{k:04d}.parquet")
    return {"annotations": n, "items": n_items, "annotators": n_annotators}


def synthetic_10m(out: Path) -> dict:
    from synthetic import generate as synth

    ann, _ = synth(n_items=2_000_000, labels_per_item=5, n_annotators=2_000, n_classes=4, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    ann.to_parquet(out / "synthetic.parquet", index=False)
    return {"annotations": len(ann), "items": 2_000_000, "annotators": 2_000}


def fit_only(parts_dir: Path, mode: str, out: Path) -> None:
    """Fit the default method on existing coded parts and write the labels; timings as JSON.

    ``mode``: ``cold``; ``warm:FIT`` (from a saved fit); ``base:STATE`` (cold, then the state saved to
    STATE for the next run); ``incremental:STATE`` (the aggregate stage's choice from STATE: the new raw
    batches alone when they hold only new items).
    """
    from labelcycle.aggregation import DEFAULT_METHOD, fitted, incremental, make_aggregator, streaming

    kind, _, where = mode.partition(":")
    t0 = time.perf_counter()
    source = streaming.ParquetParts(parts_dir)
    model = make_aggregator(DEFAULT_METHOD, classes=source.layout.classes)
    path = kind
    if kind == "incremental":
        state = incremental.load_state(Path(where))
        choice = incremental.choose(source, model, state, state.fit if state else None, enabled=True)
        path = choice.path
    if path == "incremental":
        fit = incremental.fit(model, state, choice.found.new)
        t1 = time.perf_counter()
        incremental.write_labels(state, choice.found.new, fit, out)
    else:
        init = fitted.load(Path(where)) if kind == "warm" else None
        if path == "warm" and kind == "incremental":  # the stage's fallback: warm from the stored fit
            init = state.fit
        fit = streaming.fit(source, model, init)
        t1 = time.perf_counter()
        streaming.write_result(source, fit, out)
        if kind == "base":
            incremental.save_state(Path(where), fit, model, source, incremental.scan(source), out)
    timings = {"fit_s": t1 - t0, "write_s": time.perf_counter() - t1, "n_iter": fit.n_iter, "path": path}
    print(json.dumps(timings))


def cli(data: Path, out: Path, extra: list[str] = ()) -> list[str]:
    """The command; the label set is the data's own (sorted), so no ``--labels``."""
    return [sys.executable, "-m", "labelcycle.cli", "aggregate", str(data), "-o", str(out), *extra]


def peers(data: Path, out: Path) -> list[str]:
    return [str(PEERS_PYTHON), str(REPO / "benchmarks" / "peers.py"), str(data), str(out), "DawidSkene"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="*",
        default=[1_000_000, 10_000_000, 100_000_000],
        help="string-id sizes (may be none)",
    )
    ap.add_argument("--peer-max", type=int, default=10_000_000)
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--weekly-base", type=int, default=50_000_000, help="0: no incremental run")
    ap.add_argument("--no-synthetic", action="store_true", help="skip synthetic.py's 10M table")
    ap.add_argument("--max-rss-gb", type=float, default=16.0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--fit-only", nargs=3, metavar=("PARTS", "MODE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fit_only:
        parts, mode, out = args.fit_only
        fit_only(Path(parts), mode, Path(out))
        return
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    base = Path(tempfile.mkdtemp(prefix="labelcycle-scale-cmd-"))
    rows: list[dict] = []
    weekly: dict = {}
    limit = args.max_rss_gb * 1024

    def measure(name: str, n: int, shape: dict, cmd: list[str], timeout: float = 3600.0) -> tuple:
        wall, rss, rc = run_measured(cmd, base, env, limit, timeout)
        print(f"{n:>12,} {name:40s} {wall:8.1f} s {rss:8.0f} MiB rc={rc}", flush=True)
        rows.append({"n": n, "shape": shape, "name": name, "wall": wall, "rss": rss, "rc": rc})
        return wall, rss, rc

    try:
        sizes = sorted(set(args.sizes) | ({args.weekly_base} if args.weekly_base else set()))
        sets = [(n, "string ids", lambda d, n=n: generate(n, d)) for n in sizes]
        if not args.no_synthetic:
            sets.append((10_000_000, "synthetic.py", synthetic_10m))
        for n, kind, make in sets:
            data = base / f"data{n}-{kind[:3]}"
            t0 = time.perf_counter()
            shape = {**make(data), "kind": kind}
            print(f"{n:,} ({kind}): generated in {time.perf_counter() - t0:.0f} s", flush=True)
            measure(
                "labelcycle aggregate (whole command)",
                n,
                shape,
                cli(data, base / "out.csv", ["--save-fit", str(base / "fit.parquet")]),
            )
            if n <= args.peer_max and PEERS_PYTHON.exists():
                measure(
                    "crowd-kit DawidSkene (whole command)",
                    n,
                    shape,
                    peers(data, base / "peers"),
                    args.peer_timeout,
                )
            if n == args.weekly_base and kind == "string ids":
                weekly = incremental(base, data, shape, env, measure)
            shutil.rmtree(data, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "weekly": weekly}, indent=1) + "\n")
    write_report(args, rows, weekly)


def incremental(base: Path, data: Path, shape: dict, env: dict, measure) -> dict:
    """Fit the base (its state saved), add a weekly 1M file of new items, then fit incremental, warm, cold."""
    import subprocess

    import pandas as pd

    from labelcycle.aggregation.encode_parts import encode_dataset
    from labelcycle.readers import parquet_files

    def fit(parts: Path, mode: str, out: Path) -> dict:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--fit-only", str(parts), mode, str(out)]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return {**json.loads(done.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - t0}

    # the base version: its parts (one raw batch per file) and a cold fit that leaves its state
    encode_dataset(parquet_files(data), base / "base-parts")
    result = {"base": shape["annotations"], "week": 1_000_000}
    result["base_fit"] = fit(base / "base-parts", f"base:{base / 'state'}", base / "base.parquet")
    shutil.rmtree(base / "base-parts")
    generate(1_000_000, data, seed=7, prefix="w", n_annotators=shape["annotators"])
    t0 = time.perf_counter()
    encode_dataset(parquet_files(data), base / "parts")  # the label set inferred, as the command does
    result["encode_s"] = time.perf_counter() - t0
    modes = {
        "incremental": f"incremental:{base / 'state'}",
        "warm": f"warm:{base / 'state' / 'fit.parquet'}",
        "cold": "cold",
    }
    for name, mode in modes.items():
        result[name] = fit(base / "parts", mode, base / f"{name}.parquet")
        print(
            f"  weekly: {name} ({result[name]['path']}) fit {result[name]['fit_s']:.1f} s "
            f"({result[name]['n_iter']} EM steps), process {result[name]['process_s']:.1f} s",
            flush=True,
        )
    cold = pd.read_parquet(base / "cold.parquet", columns=["item_id", "label"]).set_index("item_id")["label"]
    for name in ("incremental", "warm"):
        got = pd.read_parquet(base / f"{name}.parquet", columns=["item_id", "label"]).set_index("item_id")
        result[name]["items"] = len(got)
        result[name]["agreement"] = float((got["label"].reindex(cold.index) == cold).mean())
    shutil.rmtree(base / "parts")
    return result


def write_report(args, rows: list[dict], weekly: dict) -> None:

    cmd = "PYTHONPATH=src nice python benchmarks/scale_command.py --sizes " + " ".join(map(str, args.sizes))
    cmd += f" --peer-max {args.peer_max} --weekly-base {args.weekly_base}" + (
        " --no-synthetic" if args.no_synthetic else ""
    )
    if args.peer_timeout != 900.0:
        cmd += f" --peer-timeout {args.peer_timeout:g}"
    if args.out != OUT:
        cmd += f" --out {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}"
    lines = [
        "# Scale: the aggregation as a whole command, out of core",
        "",
        machine_line(),
        "",
        f"Reproduce: `{cmd}`",
        "",
        "Each command is a fresh process; wall time around it; peak RSS of that process sampled at 20 Hz. "
        "String-id data: N/4 items, N/5000 annotators, 3 classes, written in 5M-row Parquet files "
        "(one data set). labelcycle: `labelcycle aggregate DIR -o out.csv --save-fit fit.parquet` "
        "(default method, hierarchical Dawid-Skene, voted support): Arrow reads bounded batches, rows are "
        "spilled to hash buckets of items, each bucket becomes a coded part, EM streams the parts, the CSV "
        "is written part by part with Arrow. crowd-kit: `benchmarks/peers.py` (pandas read, DawidSkene "
        "n_iter=100, CSV).",
        "",
        "| annotations | data | items | annotators | command | wall (s) | peak RSS (MiB) | s per 1M |",
        "|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        mark = "" if r["rc"] == 0 else f" (stopped, exit {r['rc']})"
        s = r["shape"]
        lines.append(
            f"| {r['n']:,} | {s['kind']} | {s['items']:,} | {s['annotators']:,} | {r['name']}{mark} | "
            f"{r['wall']:.1f} | {r['rss']:.0f} | {r['wall'] / (r['n'] / 1e6):.2f} |"
        )
    lines += ["", "Speed-up (crowd-kit wall / labelcycle wall, same files, same run):", ""]
    for r in rows:
        if r["name"].startswith("crowd-kit"):
            ours = next(
                x
                for x in rows
                if x["n"] == r["n"] and x["shape"] == r["shape"] and x["name"].startswith("labelcycle")
            )
            if ours["rc"] != 0:  # no ratio against a command that failed
                lines.append(
                    f"- {r['n']:,} {r['shape']['kind']}: none (labelcycle aggregate failed, exit {ours['rc']})"
                )
                continue
            done = "" if r["rc"] == 0 else " (at least: crowd-kit did not finish)"
            lines.append(f"- {r['n']:,} {r['shape']['kind']}: {r['wall'] / ours['wall']:.1f}x{done}")
    if weekly:
        i, w, c = weekly["incremental"], weekly["warm"], weekly["cold"]
        lines += [
            "",
            f"Incremental: a weekly batch of {weekly['week']:,} annotations (new items, same annotators) on top "
            f"of {weekly['base']:,}; the base fitted cold once, leaving its state (E-step statistics, covered "
            "raw batches, labels); the parts of base + week encoded once, one raw batch per file "
            f"({weekly['encode_s']:.0f} s; in the pipeline the ingest stage writes them), then each fit + labels "
            "written in its own process: incremental (the aggregate stage's choice: only the week's rows, "
            "from the stored state; the labels file is the stored one's bytes with the new items' row groups "
            "appended), warm (every row, from the base's saved fit), cold:",
            "",
            "| fit | path taken | EM steps | fit (s) | write (s) | process (s) | labels equal to cold |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, r in (("incremental", i), ("warm", w), ("cold", c)):
            agree = f"{r['agreement']:.4%}" if "agreement" in r else ""
            lines.append(
                f"| {name} | {r['path']} | {r['n_iter']} | {r['fit_s']:.1f} | {r['write_s']:.1f} | "
                f"{r['process_s']:.1f} | {agree} |"
            )
        lines += [
            "",
            f"Incremental / cold: fit {i['fit_s'] / c['fit_s']:.0%}, fit + write {(i['fit_s'] + i['write_s']) / (c['fit_s'] + c['write_s']):.0%}, "
            f"process {i['process_s'] / c['process_s']:.0%} (target: under 20%); warm / cold fit "
            f"{w['fit_s'] / c['fit_s']:.0%}. Labels equal to the cold fit's on {i['agreement']:.4%} of the "
            f"{i['items']:,} items (incremental), {w['agreement']:.4%} (warm).",
        ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
