"""``labelcycle ingest`` of a directory of Parquet files against the same rows as one Parquet file.

For each size N the script generates N annotations with string ids (``benchmarks/scale_command.py``'s
generator: N/4 items, N/5000 annotators, 3 classes) as ``--parts`` Parquet files (one data set), and the
same rows, in the same order, as one Parquet file. Each is ingested by the whole command, a fresh process
in a fresh git + DVC project (``dvc add data/raw`` included), timed and measured by its peak RSS:

* ``labelcycle ingest --annotations DIR``: schemas and footers read, each file passed over once by row
  groups (size limit and label counts), copied and hashed as a stream; rows validated later by the stage;
* ``labelcycle ingest --annotations FILE.parquet``: the file read whole and every row validated (what
  ingest does for one file); up to ``--single-max`` annotations (it needs ~170 bytes of memory per row).

Reproduce (writes benchmarks/results/ingest_dir.md):

    PYTHONPATH=src nice python benchmarks/ingest_dir.py --sizes 1000000 10000000 100000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_command  # noqa: E402
from scale import machine_line, run_measured  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "ingest_dir.md"


def make_data(n: int, parts: int, base: Path, single: bool) -> tuple[Path, Path | None]:
    """``base/dir`` with ``parts`` Parquet files and (when ``single``) ``base/one.parquet`` holding the
    same rows."""
    import pyarrow.parquet as pq

    folder = base / "dir"
    scale_command.CHUNK = -(-n // parts)  # rows per file
    scale_command.generate(n, folder)
    if not single:
        return folder, None
    files = sorted(folder.glob("*.parquet"))
    with pq.ParquetWriter(base / "one.parquet", pq.read_schema(files[0])) as writer:
        for f in files:  # file by file, in the order the directory is read
            writer.write_table(pq.read_table(f))
    return folder, base / "one.parquet"


def project(path: Path) -> Path:
    path.mkdir(parents=True)
    shutil.copy(REPO / "params.yaml", path / "params.yaml")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=path, check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--single-max", type=int, default=10_000_000)
    ap.add_argument("--max-rss-mb", type=float, default=16_000)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO / "src")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            base = Path(tmp) / str(n)
            folder, one = make_data(n, args.parts, base, n <= args.single_max)
            for name, source in (("directory", folder), ("one file", one)):
                if source is None:
                    continue
                root = project(base / name.replace(" ", "-"))
                cmd = [sys.executable, "-m", "labelcycle.cli", "ingest", "--annotations", str(source)]
                wall, rss, rc = run_measured(cmd, root, env, args.max_rss_mb)
                size = sum(
                    p.stat().st_size for p in ([source] if source.is_file() else source.glob("*.parquet"))
                )
                rows.append({"n": n, "input": name, "wall": wall, "rss": rss, "rc": rc, "bytes": size})
                print(f"{n:,} {name}: {wall:.1f} s, {rss:.0f} MiB (exit {rc})", flush=True)
            shutil.rmtree(base)
    write_report(args, rows)


def write_report(args, rows: list[dict]) -> None:

    cmd = "PYTHONPATH=src nice python benchmarks/ingest_dir.py --sizes " + " ".join(map(str, args.sizes))
    if args.parts != 10:
        cmd += f" --parts {args.parts}"
    if args.single_max != 10_000_000:
        cmd += f" --single-max {args.single_max}"
    lines = [
        "# Ingest: a directory of Parquet files vs the same rows as one file",
        "",
        machine_line(),
        "",
        f"Reproduce: `{cmd}`",
        "",
        f"`labelcycle ingest --annotations INPUT` as a fresh process in a fresh project (`dvc add` included); "
        f"wall time around it, peak RSS sampled at 20 Hz. String ids, N/4 items, N/5000 annotators; the "
        f"directory holds {args.parts} files, the single file the same rows in the same order (up to "
        f"{args.single_max:,} annotations).",
        "",
        "| annotations | input | Parquet bytes | wall (s) | peak RSS (MiB) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        mark = "" if r["rc"] == 0 else f" (failed, exit {r['rc']})"
        lines.append(
            f"| {r['n']:,} | {r['input']}{mark} | {r['bytes'] / 2**20:.0f} MiB | {r['wall']:.1f} | {r['rss']:.0f} |"
        )
    lines += ["", "Directory / one file, same run:", ""]
    for n in (n for n in args.sizes if n <= args.single_max):
        d, f = (next(r for r in rows if r["n"] == n and r["input"] == k) for k in ("directory", "one file"))
        lines.append(f"- {n:,}: wall {d['wall'] / f['wall']:.2f}x, peak RSS {d['rss'] / f['rss']:.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
