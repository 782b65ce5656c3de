"""Run crowd-kit aggregators on one annotation file; executed inside ``benchmarks/.venv-peers``.

crowd-kit 1.4.2 pins library versions that clash with labelcycle's environment (its Wawa breaks with
scikit-learn >= 1.6), so it lives in its own virtualenv and the benchmarks call this script through
``subprocess``. It imports nothing from labelcycle.

Usage::

    benchmarks/.venv-peers/bin/python benchmarks/peers.py IN.(csv|parquet) OUT_DIR METHOD [METHOD ...]

``IN`` has columns ``item_id, annotator_id, label``. For each method it writes ``OUT_DIR/<METHOD>.csv``
(``item_id, label``) and ``OUT_DIR/timings.json`` (fit seconds per method, excluding file reading).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd


def make(name: str):
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote, OneCoinDawidSkene, Wawa

    return {
        "MajorityVote": lambda: MajorityVote(),
        "Wawa": lambda: Wawa(),
        "DawidSkene": lambda: DawidSkene(n_iter=100),
        "OneCoinDawidSkene": lambda: OneCoinDawidSkene(n_iter=100),
        "GLAD": lambda: GLAD(silent=True),
        "MACE": lambda: MACE(random_state=0, verbose=0),
    }[name]()


def read(path: Path) -> pd.DataFrame:
    if path.is_dir() or path.suffix == ".parquet":  # a directory: one Parquet data set
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.rename(columns={"item_id": "task", "annotator_id": "worker"})[["task", "worker", "label"]]


def main(argv: list[str]) -> int:
    src, out_dir, methods = Path(argv[0]), Path(argv[1]), argv[2:]
    out_dir.mkdir(parents=True, exist_ok=True)
    data = read(src)
    timings: dict[str, float] = {}
    for name in methods:
        start = time.perf_counter()
        labels = make(name).fit_predict(data)
        timings[name] = time.perf_counter() - start
        labels.rename("label").rename_axis("item_id").reset_index().to_csv(
            out_dir / f"{name}.csv", index=False
        )
    (out_dir / "timings.json").write_text(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
