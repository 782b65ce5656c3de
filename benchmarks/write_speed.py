"""Benchmark: writing a curated-label table as CSV/TSV, pandas' ``to_csv`` vs labelcycle's Arrow writer.

Builds the table `labelcycle aggregate` writes (string item ids, a label, a confidence, one probability per
class, an annotation count; default 2.5M rows, 3 classes) in memory, then in the same run times
``df.to_csv(path, index=False)`` and ``labelcycle.readers.write_table(df, path)`` (each ``--repeat`` times,
alternating), checks that both files hold the same bytes, and writes ``benchmarks/results/write_speed.md``
whole.

Reproduce (from the repo root)::

    PYTHONPATH=src python benchmarks/write_speed.py [--rows 2500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from labelcycle.readers import write_table

CLASSES = ["ok", "misleading", "prohibited"]
RESULTS = Path(__file__).resolve().parent / "results" / "write_speed.md"


def curated_labels(n: int, seed: int = 0) -> pd.DataFrame:
    """A table shaped like `labelcycle aggregate`'s output, with posterior-like probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 4, (n, len(CLASSES)))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # many tiny values, as EM gives
    df = pd.DataFrame(
        {
            "item_id": pd.array([f"item-{i:08d}" for i in range(n)], dtype="str"),
            "label": np.asarray(CLASSES)[proba.argmax(axis=1)],
            "confidence": proba.max(axis=1),
        }
    )
    for j, c in enumerate(CLASSES):
        df[f"proba_{c}"] = proba[:, j]
    df["n_annotations"] = rng.integers(1, 8, n)
    return df


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_500_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    df = curated_labels(args.rows)
    writers = {
        "pandas `df.to_csv(path, index=False)`": lambda p: df.to_csv(
            p, index=False, sep="\t" if p.suffix == ".tsv" else ","
        ),
        "labelcycle `write_table(df, path)` (Arrow)": lambda p: write_table(df, p),
    }
    times: dict[tuple[str, str], list[float]] = {}
    same = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ext in ("csv", "tsv"):
            files = {}
            for _ in range(args.repeat):
                for k, (name, write) in enumerate(writers.items()):
                    path = Path(tmp) / f"{k}.{ext}"
                    t0 = time.perf_counter()
                    write(path)
                    times.setdefault((ext, name), []).append(time.perf_counter() - t0)
                    files[name] = path
            a, b = (p.read_bytes() for p in files.values())
            same[ext] = a == b
            size = len(a)
    load = os.getloadavg()[0]
    lines = [
        f"# write speed: a curated-label table of {args.rows:,} rows as CSV and TSV",
        "",
        f"Command: `PYTHONPATH=src python benchmarks/write_speed.py --rows {args.rows} --repeat {args.repeat}`",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"load average {load:.1f} at the end of the run (other jobs share the machine when it is above ~0.5).",
        "",
        f"Table: string item ids, label, confidence, {len(CLASSES)} class probabilities (softmax of N(0, 4) "
        f"logits: many values below 1e-4), annotation count; {size / 2**20:.0f} MiB of CSV.",
        "",
        "| format | writer | min s | median s | max s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for (ext, name), ts in times.items():
        lines.append(f"| {ext} | {name} | {min(ts):.2f} | {float(np.median(ts)):.2f} | {max(ts):.2f} |")
    lines += [""]
    for ext in same:
        pandas_t, arrow_t = (float(np.median(times[(ext, name)])) for name in writers)
        lines.append(
            f"{ext.upper()}: Arrow writer {pandas_t / arrow_t:.1f}x faster than pandas (medians); files "
            f"{'byte-identical' if same[ext] else 'DIFFERENT'}."
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
