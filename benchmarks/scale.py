"""Scale benchmark: wall time and peak memory per pipeline stage, 100k to 100M annotations.

Generates a crowd-labelled data set with a vectorised generator, stores it as one raw batch of a fresh
project, and runs the real stage scripts (``stages/ingest.py``, ``split.py``, ``aggregate.py`` and, up to
``--train-max``, ``train_error_model.py``, ``curate.py``, ``train_quality.py``) one by one as child
processes, each measured by its resident memory sampled at 20 Hz (peak RSS of that process and its worker processes, summed). MLflow logs
to a SQLite store in the project, as on a laptop.

Two data layouts (``--layout``):

- ``csv`` (default): 3 annotations per item on average, realistic columns (created_at as ISO 8601
  text, duration_s), 6 item features, 1% gold, one CSV per table;
- ``parquet``: issue 17's shape (4 annotations per item, one annotator per 5,000 annotations, string
  ids, rows in arrival order), the annotations as a directory of Parquet files generated piece by piece
  (so 100M fits), 1% gold, no items table; ingest, split and aggregate only.

Reproduce (each writes its results file whole):

    PYTHONPATH=src python benchmarks/scale.py --sizes 1000000 10000000 --stages ingest split aggregate --weekly 0.02
    PYTHONPATH=src python benchmarks/scale.py --layout parquet --sizes 1000000 10000000 100000000 --weekly 0 \
        --out benchmarks/results/scale_parquet.md

After each size, ``--weekly F`` adds a batch of ``F * N`` annotations on new items by the same
annotators, reruns ingest, then the aggregate stage warm-started from its stored fit
(``aggregate.warm_start: true``) and cold (``false``), and compares their labels.

Options: ``--train-max N`` runs the model stages only up to N annotations (default 1M; LightGBM
single-threaded, 100 rounds; the tune stage is not run, train_quality uses params.yaml), ``--keep DIR``
keeps the generated projects, ``--stages ingest`` runs only the named stages.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
LABELS = ("ok", "misleading", "prohibited")
DEFAULT_OUT = REPO / "benchmarks" / "results" / "scale.md"
CATS = np.array(["electronics", "fashion", "crypto", "health", "finance", "gaming", "travel", "food"])
REGIONS = np.array(["NA", "EU", "LATAM", "APAC", "MEA"])


def _ids(prefix: str, codes: np.ndarray) -> pa.Array:
    return pa.array(np.char.add(prefix, codes.astype("U10")))


def generate(
    n_annotations: int, out: Path, seed: int = 0, prefix: str = "i", n_annotators: int | None = None
) -> dict[str, int]:
    """Write annotations.csv, items.csv and gold.csv with about ``n_annotations`` annotations.

    ``prefix`` starts every item id (a weekly batch uses its own); ``n_annotators`` defaults to one per
    2,000 annotations (annotator ids are shared across batches, their skills drawn from the same seed).
    """
    rng = np.random.default_rng(seed)
    n_items = max(10, n_annotations // 3)
    n_annotators = n_annotators or max(30, n_annotations // 2000)
    truth = rng.choice(3, size=n_items, p=[0.7, 0.2, 0.1])
    item = np.sort(rng.integers(0, n_items, n_annotations))
    annotator = rng.integers(0, n_annotators, n_annotations)
    skill = np.random.default_rng(12345).uniform(0.55, 0.95, n_annotators)  # same annotators every batch
    correct = rng.random(n_annotations) < skill[annotator]
    label = np.where(correct, truth[item], rng.integers(0, 3, n_annotations))
    seconds = np.datetime64("2026-09-07T00:00:00", "s") + rng.integers(0, 56 * 86400, n_annotations).astype(
        "timedelta64[s]"
    )
    out.mkdir(parents=True, exist_ok=True)
    ann = pa.table(
        {
            "item_id": _ids(prefix, item),
            "annotator_id": _ids("a", annotator),
            "label": pa.array(np.array(LABELS)[label]),
            "created_at": pa.array(np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")),
            "duration_s": pa.array(np.round(rng.lognormal(2.5, 0.6, n_annotations), 1)),
        }
    )
    pacsv.write_csv(ann, out / "annotations.csv")
    del ann
    items = pa.table(
        {
            "item_id": _ids(prefix, np.arange(n_items)),
            "category": pa.array(CATS[rng.integers(0, len(CATS), n_items)]),
            "region": pa.array(REGIONS[rng.integers(0, len(REGIONS), n_items)]),
            "price": pa.array(np.round(rng.lognormal(3.5, 1.0, n_items), 2) + truth),
            "text_length": pa.array(rng.poisson(120, n_items) + 40 * truth),
            "claims_score": pa.array(np.round(rng.beta(2, 5, n_items) + 0.2 * truth, 4)),
            "prior_flags": pa.array(rng.poisson(0.3 + truth, n_items)),
        }
    )
    pacsv.write_csv(items, out / "items.csv")
    gold_idx = rng.choice(n_items, size=max(10, n_items // 100), replace=False)
    pacsv.write_csv(
        pa.table({"item_id": _ids(prefix, gold_idx), "label": pa.array(np.array(LABELS)[truth[gold_idx]])}),
        out / "gold.csv",
    )
    return {"annotations": n_annotations, "items": n_items, "annotators": n_annotators, "gold": len(gold_idx)}


#: annotations per Parquet file of the ``parquet`` layout
PIECE_ROWS = 5_000_000


def generate_parquet(
    n_annotations: int, out: Path, seed: int = 0, prefix: str = "i", n_annotators: int | None = None
) -> dict[str, int]:
    """The ``parquet`` layout: ``annotations/`` (one data set of Parquet files of ``PIECE_ROWS`` rows) and
    gold.csv, in issue 17's shape: 4 annotations per item, one annotator per 5,000 annotations, string ids,
    rows in arrival order (not grouped by item), 1% gold; no items table. Generated piece by piece, so
    memory stays bounded by one piece whatever the size."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_items = max(10, n_annotations // 4)
    n_annotators = n_annotators or max(30, n_annotations // 5000)
    truth_of = np.random.default_rng(seed + 1).choice(3, size=n_items, p=[0.7, 0.2, 0.1]).astype(np.int8)
    skill = np.random.default_rng(12345).uniform(0.55, 0.95, n_annotators)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, n_annotations, PIECE_ROWS)):
        m = min(PIECE_ROWS, n_annotations - start)
        item = rng.integers(0, n_items, m)
        annotator = rng.integers(0, n_annotators, m)
        truth = truth_of[item]
        correct = rng.random(m) < skill[annotator]
        label = np.where(correct, truth, rng.integers(0, 3, m))
        seconds = np.datetime64("2026-09-07T00:00:00", "s") + rng.integers(0, 56 * 86400, m).astype(
            "timedelta64[s]"
        )
        pq.write_table(
            pa.table(
                {
                    "item_id": _ids(prefix, item),
                    "annotator_id": _ids("a", annotator),
                    "label": pa.array(np.array(LABELS)[label]),
                    "created_at": pa.array(np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")),
                    "duration_s": pa.array(np.round(rng.lognormal(2.5, 0.6, m), 1)),
                }
            ),
            out / "annotations" / f"part-{k:04d}.parquet",
        )
    gold_idx = rng.choice(n_items, size=max(10, n_items // 100), replace=False)
    pacsv.write_csv(
        pa.table(
            {"item_id": _ids(prefix, gold_idx), "label": pa.array(np.array(LABELS)[truth_of[gold_idx]])}
        ),
        out / "gold.csv",
    )
    return {"annotations": n_annotations, "items": n_items, "annotators": n_annotators, "gold": len(gold_idx)}


def make_project(path: Path, n_estimators: int) -> None:
    path.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, path / name)
    shutil.copytree(REPO / "stages", path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    params = (path / "params.yaml").read_text()
    params = params.replace("n_estimators: 400", f"n_estimators: {n_estimators}").replace(
        "n_jobs: 2", "n_jobs: 1"
    )
    (path / "params.yaml").write_text(params)
    (path / ".dvc").mkdir()  # the stages only need a project root; DVC itself is not run here


def add_batch(project: Path, data: Path, rows: int = 0) -> None:
    """Store ``data``'s files (or the ``annotations/`` Parquet directory) as one raw batch of ``project``."""
    sys.path.insert(0, str(REPO / "src"))
    from labelcycle.readers import ColumnMap
    from labelcycle.versioning import raw

    files = []
    for role in ("annotations", "items", "gold"):
        path = data / role if (data / role).is_dir() else data / f"{role}.csv"
        if path.exists():
            files.append(raw.BatchFile(role, path, ColumnMap()))
    raw.write_batch(project, files, {"annotations": rows})


def warm_store(project: Path, env: dict[str, str]) -> None:
    """Create the project's MLflow store once (a one-off ~10 s of schema migrations, not a stage cost)."""
    code = "from pathlib import Path; from labelcycle.tracking.runs import configure; configure(Path('.'))"
    subprocess.run([sys.executable, "-c", code], cwd=project, env=env, check=True, capture_output=True)


def run_measured(
    cmd: list[str], cwd: Path, env: dict[str, str], max_rss_mb: float, timeout_s: float = float("inf")
) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) of the child and its own children summed (the ingest's worker
    processes; pages they share count twice, so this errs high), exit status; the child is killed above
    ``max_rss_mb``."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watched = psutil.Process(proc.pid)
    peak = 0
    while True:  # sample RSS at 20 Hz (ru_maxrss would include the parent's pages before exec) and
        # kill above the limit, so a benchmark never starves a shared machine
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss = watched.memory_info().rss
            for child in watched.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += child.memory_info().rss
            peak = max(peak, rss)
            if rss > max_rss_mb * 2**20 or time.perf_counter() - start > timeout_s:
                proc.kill()
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        print(err[-3000:], file=sys.stderr)
    return wall, peak / 2**20, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    ap.add_argument("--train-max", type=int, default=1_000_000)
    ap.add_argument("--n-estimators", type=int, default=100)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--keep", type=Path, default=None)
    ap.add_argument("--stages", nargs="+", default=None, help="run only these stages (e.g. --stages ingest)")
    ap.add_argument(
        "--weekly",
        type=float,
        default=0.02,
        help="after each size, add a batch of this share of its annotations and time warm vs cold aggregate (0: off)",
    )
    ap.add_argument(
        "--layout",
        choices=("csv", "parquet"),
        default="csv",
        help="csv: one CSV per table with items (below); parquet: annotations as a directory of Parquet files "
        "in issue 17's shape, gold, no items (ingest, split and aggregate only)",
    )
    ap.add_argument("--max-rss-gb", type=float, default=12.0, help="kill a stage above this peak memory")
    ap.add_argument(
        "--stage-timeout", type=float, default=1800.0, help="kill a stage after this many seconds"
    )
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="labelcycle-scale-", dir=args.keep))
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src"),
        "DVC_NO_ANALYTICS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "OMP_NUM_THREADS": "1",
        "LABELCYCLE_PIPELINE_RUN": "scale-benchmark",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    rows: list = []
    incremental: list[dict] = []
    try:
        for n in args.sizes:
            proj = base / f"n{n}"
            t0 = time.perf_counter()
            # generate in a child process: this process stays small, so it never weighs on the stages
            shape = generate_in_child(n, base / f"data{n}", env, args.layout)
            make_project(proj, args.n_estimators)
            add_batch(proj, base / f"data{n}", n)
            warm_store(proj, env)
            shutil.rmtree(base / f"data{n}")
            raw_mb = sum(f.stat().st_size for f in proj.glob("data/raw/**/*") if f.is_file()) / 2**20
            print(
                f"{n:,} annotations: generated in {time.perf_counter() - t0:.1f}s ({raw_mb:.0f} MiB raw)",
                flush=True,
            )
            stages = ["ingest", "split", "aggregate"]
            if n <= args.train_max and args.layout == "csv":
                stages += ["train_error_model", "curate", "train_quality"]
            if args.stages:
                stages = [s for s in stages if s in args.stages]
            for stage in stages:
                wall, rss, rc = run_measured(
                    [sys.executable, f"stages/{stage}.py"],
                    proj,
                    env,
                    args.max_rss_gb * 1024,
                    args.stage_timeout,
                )
                print(f"  {stage:14s} {wall:7.1f} s  {rss:7.0f} MiB  rc={rc}", flush=True)
                rows.append((n, shape, stage, wall, rss, rc))
                if rc:
                    break
            else:
                if args.weekly and "aggregate" in stages:
                    incremental.append(weekly_run(proj, base, n, shape, env, args, rows))
            if args.keep is None:
                shutil.rmtree(proj)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    write_report(args, rows, incremental)


def generate_in_child(
    n: int, out: Path, env: dict[str, str], layout: str = "csv", **kwargs: object
) -> dict[str, int]:
    """:func:`generate` (or :func:`generate_parquet`) in a child process: this process stays small, so it
    never weighs on the stages."""
    import json

    fn = "generate" if layout == "csv" else "generate_parquet"
    code = (
        f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import scale; "
        f"from pathlib import Path; print(json.dumps(scale.{fn}({n}, Path({str(out)!r}), **{kwargs!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def weekly_run(proj: Path, base: Path, n: int, shape: dict, env: dict, args, rows: list) -> dict:
    """A weekly batch of ``n * weekly`` annotations on new items by the same annotators: ingest, then
    aggregate warm-started from the stored fit, then the same aggregate cold; labels compared."""
    import pandas as pd

    week = int(n * args.weekly)
    generate_in_child(
        week, base / f"week{n}", env, args.layout, seed=1, prefix="w", n_annotators=shape["annotators"]
    )
    add_batch(proj, base / f"week{n}", week)
    shutil.rmtree(base / f"week{n}")
    result: dict = {"n": n, "week": week}
    labels = {}
    for stage, warm in (("ingest", None), ("aggregate", True), ("aggregate", False)):
        if warm is not None:
            text = (proj / "params.yaml").read_text()
            text = text.replace(f"warm_start: {str(not warm).lower()}", f"warm_start: {str(warm).lower()}")
            (proj / "params.yaml").write_text(text)
        wall, rss, rc = run_measured(
            [sys.executable, f"stages/{stage}.py"], proj, env, args.max_rss_gb * 1024, args.stage_timeout
        )
        name = stage if warm is None else f"aggregate ({'warm' if warm else 'cold'})"
        print(f"  + weekly {week:,}: {name:18s} {wall:7.1f} s  {rss:7.0f} MiB  rc={rc}", flush=True)
        rows.append(
            (
                n + week,
                {**shape, "items": shape["items"] + week // 3},
                f"{name} after weekly batch",
                wall,
                rss,
                rc,
            )
        )
        result[name] = wall
        if rc:
            return result
        if warm is not None:
            report = __import__("json").loads((proj / "reports" / "aggregate.json").read_text())
            result[f"{name} EM steps"] = report.get("em_iterations")
            result[f"{name} fit"] = report.get("fit", "warm" if warm else "cold")
            table = pd.read_parquet(proj / "data/curated/labels_raw.parquet", columns=["item_id", "label"])
            labels[warm] = table.set_index("item_id")["label"]
    # by item: the incremental fit keeps the old items' rows in their stored order, a full fit in code order
    cold = labels[False].reindex(labels[True].index)
    result["agreement"] = float((labels[True] == cold).mean())
    return result


def _shown(path: Path) -> str:
    """``path`` as the quoted command names it (relative to the repository where it is inside it)."""
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def machine_line() -> str:
    """The results files' machine line, with the load averages when it is written (the run's own
    processes count in them: other work shared the cores where they are well above the run's own)."""
    import psutil

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Machine: {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
        f"{platform.platform()}, Python {platform.python_version()}; load average (1, 5, 15 min) at the "
        f"end of the run: {load}, this run's own processes included."
    )


def write_report(args: argparse.Namespace, rows: list, incremental: list[dict] | None = None) -> None:

    lines = [
        "# Scale benchmark",
        "",
        machine_line(),
        "",
        "Reproduce: `PYTHONPATH=src python benchmarks/scale.py --sizes "
        + " ".join(str(s) for s in args.sizes)
        + f" --train-max {args.train_max}"
        + (f" --stages {' '.join(args.stages)}" if args.stages else "")
        + f" --weekly {args.weekly}"
        + (f" --layout {args.layout}" if args.layout != "csv" else "")
        + (f" --out {_shown(args.out)}" if args.out.resolve() != DEFAULT_OUT else "")
        + "`",
        "",
        "Each stage runs as its own process (`python stages/<stage>.py`, MLflow logging to the project's SQLite "
        "store included; the store is created before timing); peak memory is the RSS of that process and its worker processes (the ingest validates in `ingest.workers` processes), summed, sampled at 20 Hz. "
        + (
            "Data: ~3 annotations per item, one annotator per 2,000 annotations, CSV with `created_at` (ISO 8601) "
            "and `duration_s`, 6 item features, 1% gold. train_quality: LightGBM, 1 thread, "
            f"{args.n_estimators} rounds with early stopping."
            if args.layout == "csv"
            else "Data: the annotations as one raw batch holding a directory of Parquet files of "
            f"{PIECE_ROWS:,} rows (string ids, `created_at` as ISO 8601 text, `duration_s`; 4 annotations per "
            "item, one annotator per 5,000 annotations, rows in arrival order), 1% gold, no items table. "
            "Above `ingest.part_rows` (10M) the ingest stage validates out of core, in parts by item."
        ),
        "",
        "| annotations | items | stage | wall (s) | peak RSS (MiB) | s per 1M annotations |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    totals: dict[int, tuple[float, float]] = {}
    for n, shape, stage, wall, rss, rc in rows:
        mark = "" if rc == 0 else f" (failed, exit {rc})"
        lines.append(
            f"| {n:,} | {shape['items']:,} | {stage}{mark} | {wall:.1f} | {rss:.0f} | {wall / (n / 1e6):.1f} |"
        )
        if stage in ("ingest", "aggregate"):
            w, r = totals.get(n, (0.0, 0.0))
            totals[n] = (w + wall, max(r, rss))
    lines += [
        "",
        "ingest + aggregate (issue 17's targets: 10M annotations in < 60 s; 100M in < 240 s, aggregate alone "
        "< 150 s, peak RSS < 6 GiB):",
        "",
    ]
    lines += ["| annotations | wall (s) | peak RSS (MiB) |", "|---:|---:|---:|"]
    lines += [f"| {n:,} | {w:.1f} | {r:.0f} |" for n, (w, r) in totals.items()]
    if incremental:
        lines += [
            "",
            "Incremental runs: a weekly batch (new items, same annotators) on top of each size; the aggregate "
            "stage with `aggregate.warm_start: true` (from its stored state: the incremental fit of the new "
            "batch alone when it holds only new items, else a warm-started full fit; the fit column says which "
            "ran) against the same stage cold (`false`), same data; agreement = share of items (matched by "
            "id) with the same label.",
            "",
            "| base | weekly batch | ingest (s) | aggregate warm_start (s) | fit | EM steps | aggregate cold (s) "
            "| EM steps | warm_start / cold | labels agree |",
            "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in incremental:
            warm, cold = r.get("aggregate (warm)"), r.get("aggregate (cold)")
            if warm is None or cold is None:
                lines.append(f"| {r['n']:,} | {r['week']:,} | failed |  |  |  |  |  |  |  |")
                continue
            lines.append(
                f"| {r['n']:,} | {r['week']:,} | {r['ingest']:.1f} | {warm:.1f} | {r['aggregate (warm) fit']} "
                f"| {r['aggregate (warm) EM steps']} | {cold:.1f} | {r['aggregate (cold) EM steps']} "
                f"| {warm / cold:.0%} | {r['agreement']:.4%} |"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
