"""Stand-in for ``labelcycle aggregate ANNOTATIONS --method NAME -o OUT`` until the CLI lands on main.

Reads a CSV or Parquet annotation table, fits one aggregator and writes its result frame. Used by
``aggregation_speed.py`` to time labelcycle as a whole command (start-up, reading, fitting, writing).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from labelcycle.aggregation import DEFAULT_METHOD, make_aggregator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("annotations", type=Path)
    parser.add_argument("--method", default=DEFAULT_METHOD)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    columns = ["item_id", "annotator_id", "label"]
    if args.annotations.suffix == ".parquet":
        frame = pd.read_parquet(args.annotations, columns=columns)
    else:
        frame = pd.read_csv(args.annotations, usecols=columns, dtype=str, engine="pyarrow")
    result = make_aggregator(args.method).fit(frame).result_frame()
    if args.output.suffix == ".parquet":
        result.to_parquet(args.output, index=False)
    else:
        result.to_csv(args.output, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
