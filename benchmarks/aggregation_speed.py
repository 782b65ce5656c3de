"""Speed and memory: labelcycle's aggregation command vs crowd-kit's DawidSkene on one big file.

Generates a synthetic annotation CSV (default 10 million rows: 2M items x 5 labels, 50k annotators
with Zipf activity and spammers, 4 classes) under ``benchmarks/.cache/`` (gitignored), then times
whole commands on the same file, each in a fresh process:

* ``labelcycle aggregate FILE --method M -o OUT`` (the CLI; ``python -m labelcycle.cli``),
* ``benchmarks/aggregate_cmd.py`` (read with pyarrow, fit, write: the aggregation core alone),
* crowd-kit ``DawidSkene`` via ``benchmarks/peers.py`` in ``benchmarks/.venv-peers`` (capped by
  ``--peer-timeout``).

Wall time is measured around the process; peak memory is the highest RSS of the process tree,
polled every 50 ms with psutil. Results go to ``benchmarks/results/aggregation_speed.md``.

Reproduce (from the repo root)::

    PYTHONPATH=src nice python benchmarks/aggregation_speed.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import REPO_ROOT  # noqa: E402
from labelcycle.aggregation import DEFAULT_METHOD  # noqa: E402

CACHE = REPO_ROOT / "benchmarks" / ".cache"
PEERS_PYTHON = REPO_ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"
RESULTS = REPO_ROOT / "benchmarks" / "results" / "aggregation_speed.md"
COMMAND = "PYTHONPATH=src nice python benchmarks/aggregation_speed.py"


@dataclass
class Run:
    name: str
    command: list[str]
    wall_s: float | None = None
    peak_rss_gb: float | None = None
    status: str = "ok"


def make_file(rows: int) -> Path:
    """The synthetic annotation CSV with ``rows`` rows (made once, then reused)."""
    path = (
        CACHE / f"annotations_{rows // 1_000_000}m.csv"
        if rows >= 1_000_000
        else CACHE / f"annotations_{rows}.csv"
    )
    if path.exists():
        return path
    from synthetic import generate

    CACHE.mkdir(parents=True, exist_ok=True)
    annotations, _ = generate(
        n_items=rows // 5, labels_per_item=5, n_annotators=max(rows // 200, 100), n_classes=4, seed=0
    )
    tmp = path.with_suffix(".tmp")
    annotations.to_csv(tmp, index=False)
    tmp.rename(path)
    return path


def measure(run: Run, timeout: float) -> Run:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    start = time.perf_counter()
    proc = psutil.Popen(run.command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        if time.perf_counter() - start > timeout:
            for p in [*proc.children(recursive=True), proc]:
                p.kill()
            proc.wait()
            run.status = f"killed after {timeout:.0f} s timeout"
            break
        time.sleep(0.05)
    run.wall_s = time.perf_counter() - start
    run.peak_rss_gb = peak / 1e9
    if run.status == "ok" and proc.returncode != 0:
        run.status = f"failed (exit {proc.returncode}): {proc.stderr.read().decode()[-300:]}"
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--method", default=DEFAULT_METHOD)
    parser.add_argument("--peer-timeout", type=float, default=1200.0, help="cap on crowd-kit's run (s)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    results: list[tuple[int, list[Run]]] = []
    for rows in args.rows:
        path = make_file(rows)
        out = CACHE / "out"
        out.mkdir(parents=True, exist_ok=True)
        runs = [
            Run(
                f"labelcycle aggregate --method {args.method} (CLI)",
                [
                    sys.executable,
                    "-m",
                    "labelcycle.cli",
                    "aggregate",
                    str(path),
                    "--method",
                    args.method,
                    "-o",
                    str(out / "cli.parquet"),
                ],
            ),
            Run(
                f"benchmarks/aggregate_cmd.py --method {args.method} (core + pyarrow CSV read)",
                [
                    sys.executable,
                    str(REPO_ROOT / "benchmarks" / "aggregate_cmd.py"),
                    str(path),
                    "--method",
                    args.method,
                    "-o",
                    str(out / "core.parquet"),
                ],
            ),
            Run(
                "benchmarks/aggregate_cmd.py --method dawid_skene (core + pyarrow CSV read)",
                [
                    sys.executable,
                    str(REPO_ROOT / "benchmarks" / "aggregate_cmd.py"),
                    str(path),
                    "--method",
                    "dawid_skene",
                    "-o",
                    str(out / "core_ds.parquet"),
                ],
            ),
        ]
        if PEERS_PYTHON.exists():
            runs.append(
                Run(
                    "crowd-kit 1.4.2 DawidSkene (benchmarks/peers.py: pandas read_csv + fit + write)",
                    [
                        str(PEERS_PYTHON),
                        str(REPO_ROOT / "benchmarks" / "peers.py"),
                        str(path),
                        str(out / "peers"),
                        "DawidSkene",
                    ],
                )
            )
        for run in runs:
            measure(run, args.peer_timeout)
            print(
                f"{rows:>11,} rows  {run.name}: {run.wall_s:.1f} s, peak {run.peak_rss_gb:.2f} GB, {run.status}",
                flush=True,
            )
        results.append((rows, runs))
    write_report(results, args.out)
    print(f"wrote {args.out}")
    return 0


def write_report(results: list[tuple[int, list[Run]]], out: Path) -> None:
    lines = [
        "# Aggregation speed: whole commands on one synthetic file",
        "",
        f"Reproduce: `{COMMAND}` (crowd-kit in `benchmarks/.venv-peers`; see `benchmarks/aggregation.py`).",
        "",
        f"Machine: {os.cpu_count()} CPU cores shared with other work, runs under `nice`, one command at a time.",
        "Files: synthetic CSV from `benchmarks/synthetic.py` (rows/5 items x 5 labels, rows/200 annotators with",
        "Zipf activity, 20% spammers, 4 classes). Wall = the whole process (start-up, read, fit, write);",
        "peak = highest RSS of the process tree (psutil, 50 ms polling).",
        "",
        "| rows | command | wall (s) | peak RSS (GB) | status |",
        "|---:|---|---:|---:|---|",
    ]
    for rows, runs in results:
        for run in runs:
            lines.append(
                f"| {rows:,} | {run.name} | {run.wall_s:.1f} | {run.peak_rss_gb:.2f} | {run.status} |"
            )
    lines += ["", "## Ratios (crowd-kit DawidSkene wall / ours)", ""]
    for rows, runs in results:
        peer = next((r for r in runs if r.name.startswith("crowd-kit")), None)
        if peer is None:
            continue
        for run in runs:
            if run is peer:
                continue
            bound = "at least " if peer.status != "ok" else ""
            lines.append(f"- {rows:,} rows, {run.name}: {bound}{peer.wall_s / run.wall_s:.1f}x")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
