"""Out-of-core ingest, step 1: spill every raw annotations file to parts by a hash of the item id.

Each raw batch (oldest first) is read file by file (a folder batch's Parquet files one at a time, in
:meth:`~labelcycle.versioning.raw.Batch.files` order, rows numbered across the folder as when it is read
whole), in ``workers`` processes at once, and each file's rows are written to one Arrow file per part, named
by the file's place in ingestion order (so a part's rows read back in ingestion order, whichever worker
wrote them). See :mod:`labelcycle.ingest_parts` for step 2.
"""

from __future__ import annotations

import math
import multiprocessing
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from labelcycle import schema
from labelcycle.cells import clean_str
from labelcycle.compressed import InputLimits
from labelcycle.errors import StateError
from labelcycle.readers import SOURCE_ROW, ColumnMap, read_table
from labelcycle.validation import SOURCE_FILE
from labelcycle.versioning import raw

#: bytes per row assumed for a text file whose row count the manifest does not record
_BYTES_PER_ROW = 32


def annotation_rows(batches: list[raw.Batch]) -> int:
    """Annotation rows of the batches (what decides the ingest's path): as the manifests record them,
    else from Parquet metadata, else estimated from a text file's size (on the high side)."""
    total = 0
    for b in batches:
        entry = b.manifest["files"].get("annotations")
        if not entry:
            continue
        rows = int(entry.get("rows") or 0)
        if not rows:
            for piece in b.files("annotations"):
                if piece.suffix in (".parquet", ".pq"):
                    rows += pq.ParquetFile(piece).metadata.num_rows
                else:
                    rows += piece.stat().st_size // _BYTES_PER_ROW
        total += rows
    return total


def _part_of(values: pd.Series, n: int) -> np.ndarray:
    """The part (0..n-1) of each row by its stripped item id: a hash of the id's UTF-8 bytes
    (:func:`text_hash`), so the same id lands in the same part in every file and in the items table."""
    ids = clean_str(values.astype(str) if values.dtype == object else values)
    arr = pa.array(ids, from_pandas=True)
    arr = (arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).cast(pa.large_string())
    return (text_hash(arr) % np.uint64(n)).astype(np.int64)


#: rows hashed at a time by :func:`text_hash` (bounds its scratch memory: ~32 bytes per byte of text)
_HASH_ROWS = 1 << 18
_PRIME = np.uint64(0x100000001B3)


def text_hash(arr: pa.LargeStringArray) -> np.ndarray:
    """A 64-bit hash of each string (missing: as empty): a polynomial over its UTF-8 bytes, then mixed
    (splitmix64's finaliser). Vectorised over the Arrow buffers, with no Python object and no hash table:
    several times faster than hashing distinct values for ids that are mostly distinct. Fixed: parts
    depend on it."""
    out = np.empty(len(arr), dtype=np.uint64)
    if not len(arr):
        return out
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths = np.where(arr.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    powers = np.cumprod(np.full(max(int(lengths.max()), 1), _PRIME, dtype=np.uint64))
    for lo in range(0, len(arr), _HASH_ROWS):
        starts, width = offsets[lo : lo + _HASH_ROWS], lengths[lo : lo + _HASH_ROWS]
        first = np.concatenate(([0], np.cumsum(width[:-1]))).astype(np.int64)  # in the chunk's bytes
        row = np.repeat(np.arange(len(width)), width)  # the string of each byte
        pos = np.arange(len(row), dtype=np.int64) - first[row]  # the byte's place in its string
        terms = (data[starts[row] + pos].astype(np.uint64) + np.uint64(1)) * powers[pos]
        h = np.zeros(len(width), dtype=np.uint64)
        has = width > 0
        if has.any():
            h[has] = np.add.reduceat(terms, first[has])
        h ^= width.astype(np.uint64)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        out[lo : lo + len(width)] = h
    return out


def keep_freed_memory() -> None:
    """Arrow's buffers from jemalloc, freed pages kept for a second before they go back to the system.

    Arrow's default allocator here returns freed pages at once, so each of the many large buffers of a
    part is faulted in (zeroed by the kernel) again: that was a third of the out-of-core ingest's CPU
    time. Called by the out-of-core ingest in its process and in each worker (where Arrow has no
    jemalloc, nothing changes).
    """
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(1000)
    except NotImplementedError:
        pass


def in_order(fn: Callable, jobs: Iterable, workers: int) -> Iterator:
    """``fn(job)`` for each job, in job order, run in ``workers`` processes at once (spawned: no state
    forked from this process); at most ``workers + 1`` results wait to be taken. ``workers <= 1``: here."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        todo = iter(jobs)
        pending = deque(pool.submit(fn, job) for job in islice(todo, workers + 1))
        while pending:
            try:
                result = pending.popleft().result()  # a worker's exception is raised here, as itself
            except BrokenProcessPool as exc:
                raise StateError(
                    f"a worker process of the out-of-core ingest ended abruptly ({exc}); the usual cause is "
                    "memory: lower ingest.workers or ingest.part_rows in params.yaml and run it again"
                ) from exc
            pending.extend(pool.submit(fn, job) for job in islice(todo, 1))
            yield result


@dataclass(frozen=True)
class _Piece:
    """One raw annotations file to spill: the ``seq``-th in ingestion order."""

    seq: int
    path: Path
    columns: ColumnMap
    offset: int  # data rows of the batch's earlier files (rows are numbered across a directory's files)
    batch: str
    source: str


@dataclass
class Spill:
    """The annotation rows spilled to ``n`` parts by item (``dir/<part>/<seq>.arrow``, seq in ingestion order)."""

    dir: Path
    n: int
    columns: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)

    def part_files(self, b: int) -> list[Path]:
        d = self.dir / f"{b:05d}"
        return sorted(d.glob("*.arrow")) if d.is_dir() else []

    def read_part(self, b: int) -> pd.DataFrame:
        frames = []
        for f in self.part_files(b):
            with pa.memory_map(str(f)) as source:
                frames.append(pa.ipc.open_file(source).read_all().to_pandas())
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=str) for c in self.columns})
        df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        for col in (schema.RAW_BATCH, SOURCE_FILE):
            if not isinstance(df[col].dtype, pd.CategoricalDtype):  # parts of several files (categories)
                df[col] = df[col].astype(str).astype("category")
        return df


def _pieces(root: Path, batches: list[raw.Batch]) -> list[_Piece]:
    pieces: list[_Piece] = []
    for batch in batches:
        source = batch.file("annotations")
        if source is None:
            continue
        files = batch.files("annotations")
        offset = 0
        for path in files:
            rel = str(source.relative_to(root))
            pieces.append(_Piece(len(pieces), path, batch.columns("annotations"), offset, batch.digest, rel))
            if len(files) > 1:  # a directory: Parquet files, whose footers count their rows
                offset += pq.ParquetFile(path).metadata.num_rows
    return pieces


def _spill_piece(job: tuple[_Piece, Path, int]) -> list[str]:
    """Read one raw file and write its rows to the parts (one uncompressed Arrow file per part); its columns."""
    piece, work, n = job
    keep_freed_memory()
    df = read_table(piece.path, "annotations", piece.columns, InputLimits.unlimited())
    df[SOURCE_ROW] += piece.offset
    one = np.zeros(len(df), dtype=np.int8)
    df[schema.RAW_BATCH] = pd.Categorical.from_codes(one, [piece.batch])
    df[SOURCE_FILE] = pd.Categorical.from_codes(one, [piece.source])
    columns = list(df.columns)
    part = _part_of(df[schema.ITEM_ID], n)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(n + 1))
    table = pa.Table.from_pandas(df, preserve_index=False).combine_chunks().take(order)
    del df, order
    for b in range(n):
        if bounds[b + 1] > bounds[b]:
            d = work / f"{b:05d}"
            d.mkdir(exist_ok=True)
            with pa.ipc.new_file(str(d / f"{piece.seq:06d}.arrow"), table.schema) as writer:
                writer.write_table(table.slice(bounds[b], bounds[b + 1] - bounds[b]))
    return columns


def spill(root: Path, batches: list[raw.Batch], work: Path, part_rows: int, workers: int = 1) -> Spill:
    """Read every batch's annotations file by file and spill the rows to parts by item hash."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    workers = max(1, int(workers))
    n = max(1, math.ceil(annotation_rows(batches) * workers / max(int(part_rows), 1)))
    out = Spill(work, n, batches=[b.digest for b in batches])
    jobs = [(piece, work, n) for piece in _pieces(root, batches)]
    for columns in in_order(_spill_piece, jobs, workers):
        out.columns += [c for c in columns if c not in out.columns]
    return out
