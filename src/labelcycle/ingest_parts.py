"""Out-of-core ingest: validate an annotation set larger than memory, one part of its items at a time.

Every check of :func:`labelcycle.validation.validate` on annotations is either about one row (missing
values, unknown label, bad duration or timestamp, an item without features) or about the rows of one
(item, annotator) pair (re-sent rows, repeated judgements). So the annotations can be split by item:

1. **spill**: each raw batch (oldest first) is read file by file (a folder batch's Parquet files one at a
   time, in :meth:`~labelcycle.versioning.raw.Batch.files` order) and every row goes to one of ``n``
   parts chosen by a hash of its stripped ``item_id``, in ingestion order; ``n`` keeps a part near
   ``ingest.part_rows`` rows;
2. **per part**: the part's rows (and the items of the same hash) go through the same validation as the
   in-memory ingest, and its clean rows are appended, as one Parquet row group, to
   ``data/interim/annotations.parquet`` and written as one coded part of ``data/interim/annotation_codes``
   (``items_per_part`` layout of :mod:`labelcycle.aggregation.parts`, with the ``batch`` column).

Memory is bounded by one raw file or one part, plus the items and gold tables (validated in memory: a
fraction of the annotations). The outputs equal the in-memory ingest's as tables: same rows (in part
order), same quarantine and repeats, same counts and the same full-content digest
(:class:`PartedDigest`; tests/unit/test_ingest_parts.py).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from labelcycle import schema
from labelcycle.aggregation.parts import BATCH_MAX, META
from labelcycle.cells import clean_str
from labelcycle.compressed import InputLimits
from labelcycle.readers import SOURCE_ROW, read_table
from labelcycle.validation import (
    SOURCE_FILE,
    TableCounts,
    _Quarantine,
    _validate_annotations,
)
from labelcycle.versioning import raw
from labelcycle.versioning.digest import digest_of_hashes, finest_unit, row_hashes, timestamp_unit

#: Arrow type of each clean annotation column (every other column is text)
_TYPES = {schema.CREATED_AT: pa.timestamp("us", tz="UTC"), schema.DURATION_S: pa.float64()}


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
    """The part (0..n-1) of each row by its stripped item id: a fixed-key hash of the text, each distinct
    id hashed once (the same id lands in the same part in every file and in the items table)."""
    ids = clean_str(values.astype(str) if values.dtype == object else values)
    hashed = pd.util.hash_pandas_object(ids, index=False, categorize=True).to_numpy()
    return (hashed % np.uint64(n)).astype(np.int64)


@dataclass
class Spill:
    """The annotation rows spilled to ``n`` parts by item (``dir/<part>/<seq>.parquet``, seq in ingestion order)."""

    dir: Path
    n: int
    columns: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)

    def part_files(self, b: int) -> list[Path]:
        d = self.dir / f"{b:05d}"
        return sorted(d.glob("*.parquet")) if d.is_dir() else []

    def read_part(self, b: int) -> pd.DataFrame:
        frames = [pq.read_table(f).to_pandas() for f in self.part_files(b)]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=str) for c in self.columns})
        df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        for col in (schema.RAW_BATCH, SOURCE_FILE):
            df[col] = df[col].astype("category")
        return df


def spill(root: Path, batches: list[raw.Batch], work: Path, part_rows: int) -> Spill:
    """Read every batch's annotations piece by piece and spill the rows to parts by item hash."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    n = max(1, math.ceil(annotation_rows(batches) / max(int(part_rows), 1)))
    out = Spill(work, n, batches=[b.digest for b in batches])
    seq = 0
    for batch in batches:
        offset = 0
        source = batch.file("annotations")
        if source is None:
            continue
        for piece in batch.files("annotations"):
            df = read_table(piece, "annotations", batch.columns("annotations"), InputLimits.unlimited())
            df[SOURCE_ROW] += offset  # rows numbered across a directory's files, as when it is read whole
            offset += len(df)
            df[schema.RAW_BATCH] = batch.digest
            df[SOURCE_FILE] = str(source.relative_to(root))
            out.columns += [c for c in df.columns if c not in out.columns]
            part = _part_of(df[schema.ITEM_ID], n)
            order = np.argsort(part, kind="stable")
            bounds = np.searchsorted(part[order], np.arange(n + 1))
            table = pa.Table.from_pandas(df, preserve_index=False).take(order)
            del df
            for b in range(n):
                if bounds[b + 1] > bounds[b]:
                    d = work / f"{b:05d}"
                    d.mkdir(exist_ok=True)
                    pq.write_table(
                        table.slice(bounds[b], bounds[b + 1] - bounds[b]),
                        d / f"{seq:06d}.parquet",
                        compression="lz4",
                    )
            seq += 1
    return out


class PartedDigest:
    """:func:`~labelcycle.versioning.digest.table_digest` of a table seen part by part.

    Equal to the digest of the parts' concatenation: rows hash the same in any part, except timestamp
    columns, which print at one resolution for the whole table; a part hashed at another resolution than
    the table's is hashed again (``reread``) at the end.
    """

    def __init__(self) -> None:
        self.columns: list[str] | None = None
        self.hashes: list[np.ndarray] = []
        self.units: list[dict[str, str | None]] = []
        self.finest: list[dict[str, str | None]] = []

    def add(self, df: pd.DataFrame) -> None:
        cols = sorted(map(str, df.columns))
        if self.columns is None:
            self.columns = cols
        elif cols != self.columns:
            raise ValueError(f"parts with different columns: {cols} and {self.columns}")
        stamps = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
        self.units.append({c: timestamp_unit(df[c]) for c in stamps})
        self.finest.append({c: finest_unit(df[c]) for c in stamps})
        self.hashes.append(row_hashes(df))

    def digest(self, reread: Callable[[int], pd.DataFrame]) -> str:
        table_units: dict[str, str | None] = {}
        for col in self.units[0] if self.units else {}:
            if any(u[col] is not None for u in self.units):
                order = ("s", "ms", "us", "ns")
                table_units[col] = max((f[col] for f in self.finest if f[col]), key=order.index)
            else:
                table_units[col] = None
        for i, units in enumerate(self.units):
            if units != table_units:
                self.hashes[i] = row_hashes(reread(i), table_units)
        hashes = np.empty(sum(len(h) for h in self.hashes), dtype=np.uint64)
        start = 0
        for i, part in enumerate(self.hashes):  # each part's hashes freed once copied (8 bytes a row)
            hashes[start : start + len(part)] = part
            start += len(part)
            self.hashes[i] = None
        return digest_of_hashes(self.columns or [], hashes)


@dataclass
class OutOfCore:
    """What the out-of-core ingest produced (the annotations themselves stay on disk)."""

    counts: TableCounts
    quarantine: list[pd.DataFrame]
    repeats: pd.DataFrame
    head: pd.DataFrame  # the first rows of the clean annotations (for run logging)
    rows: int
    digest: str
    judged_gold: pd.DataFrame  # clean annotations of the gold items (for the circular-gold check)
    parts: int


def _arrow_table(df: pd.DataFrame, columns: list[str]) -> pa.Table:
    """``df`` as the clean annotations' Arrow table: ``columns`` in order, typed, missing ones null."""
    arrays = []
    for col in columns:
        typ = _TYPES.get(col, pa.large_string())
        if col not in df.columns:
            arrays.append(pa.nulls(len(df), typ))
        elif isinstance(df[col].dtype, pd.DatetimeTZDtype):  # UTC ticks (no zone-dropping .values)
            ticks = df[col].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
            arrays.append(pa.array(ticks, mask=np.isnat(ticks)).cast(typ))
        else:
            arrays.append(pa.array(df[col].array, from_pandas=True).cast(typ))
    return pa.table(arrays, names=columns)


def validate_parts(
    sp: Spill,
    labels: list[str],
    items: pd.DataFrame | None,
    gold_ids: pd.Series,
    annotations_out: Path,
    codes_out: Path,
) -> OutOfCore:
    """Validate each spilled part, append its clean rows to ``annotations_out`` and code them into ``codes_out``."""
    known = [c for c in schema.ANNOTATIONS.known if c in sp.columns] + [schema.RAW_BATCH]
    out_schema = pa.schema([(c, _TYPES.get(c, pa.large_string())) for c in known])
    item_part = None
    if items is not None:
        item_part = _part_of(items[schema.ITEM_ID], sp.n)
    counts = TableCounts()
    quarantine: list[pd.DataFrame] = []
    repeats: list[pd.DataFrame] = []
    judged: list[pd.DataFrame] = []
    digest = PartedDigest()
    codes = _CodesWriter(codes_out, labels, sp.batches)
    head = None
    rows = 0
    gold_set = pa.array(gold_ids.astype(str).unique(), pa.large_string())
    with pq.ParquetWriter(annotations_out, out_schema) as writer:
        for b in range(sp.n):
            df = sp.read_part(b)
            part_items = items[item_part == b] if items is not None else None
            q = _Quarantine()
            clean, rep, c = _validate_annotations(df, labels, part_items, q)
            del df
            counts += c
            quarantine += q.frames
            if len(rep):
                repeats.append(rep)
            if clean.empty:
                continue
            table = _arrow_table(clean, known)
            writer.write_table(table)  # one row group per part (the digest may read it back)
            clean = table.to_pandas()  # the types as written (what the stages read back)
            digest.add(clean.drop(columns=[schema.RAW_BATCH]))
            in_gold = pc.is_in(table.column(schema.ITEM_ID), value_set=gold_set).to_numpy(
                zero_copy_only=False
            )
            if in_gold.any():
                judged.append(clean[in_gold])
            codes.add(clean)
            if head is None:
                head = clean.head(1000)
            rows += len(clean)
    ann_digest = digest.digest(
        lambda i: (
            pq.ParquetFile(annotations_out).read_row_group(i).to_pandas().drop(columns=[schema.RAW_BATCH])
        )
    )
    codes.close({"digest": ann_digest})
    empty = pd.DataFrame({c: pd.Series(dtype=str) for c in known})
    return OutOfCore(
        counts=counts,
        quarantine=quarantine,
        repeats=pd.concat(repeats, ignore_index=True) if repeats else empty,
        head=head if head is not None else empty,
        rows=rows,
        digest=ann_digest,
        judged_gold=pd.concat(judged, ignore_index=True) if judged else empty,
        parts=sp.n,
    )


class _CodesWriter:
    """Coded parts (``items_per_part`` layout) written one validated part at a time."""

    def __init__(self, out: Path, labels: list[str], batches: list[str]) -> None:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        self.out, self.labels, self.batches = out, list(labels), list(batches)
        self.annotators: dict[str, int] = {}
        self.parts: list[dict] = []
        self.offset = 0
        self.rows = 0

    def add(self, clean: pd.DataFrame) -> None:
        if clean.empty:
            return
        k = len(self.labels)
        item, ids = pd.factorize(clean[schema.ITEM_ID], sort=False)
        ann_local, ann_names = pd.factorize(clean[schema.ANNOTATOR_ID], sort=False)
        ann_code = np.array(
            [self.annotators.setdefault(a, len(self.annotators)) for a in ann_names], np.int64
        )
        lab = pd.Index(self.labels).get_indexer(clean[schema.LABEL])
        order = np.argsort(item, kind="stable")
        columns = {
            "item": (item[order] + self.offset).astype(np.int32),
            "pair": (ann_code[ann_local[order]] * k + lab[order]).astype(np.int32),
        }
        if len(self.batches) <= BATCH_MAX:  # else no incremental runs (as write_parts)
            batch = pd.Index(self.batches).get_indexer(clean[schema.RAW_BATCH].astype(str))
            columns["batch"] = batch[order].astype(np.int16)
        n = len(self.parts)
        name = f"part-{n:05d}.parquet"
        pq.write_table(pa.table(columns), self.out / name, compression="lz4")
        pq.write_table(
            pa.table({schema.ITEM_ID: pa.array(np.asarray(ids, dtype=object), pa.string())}),
            self.out / f"items-{n:05d}.parquet",
        )
        self.parts.append(
            {
                "file": name,
                "items": f"items-{n:05d}.parquet",
                "lo": self.offset,
                "hi": self.offset + len(ids),
                "rows": len(clean),
            }
        )
        self.offset += len(ids)
        self.rows += len(clean)

    def close(self, extra: dict | None = None) -> dict:
        names = sorted(self.annotators, key=self.annotators.get)
        pq.write_table(
            pa.table({schema.ANNOTATOR_ID: pa.array(names, pa.string())}), self.out / "annotators.parquet"
        )
        meta = {
            "classes": self.labels,
            "n_rows": self.rows,
            "n_items": self.offset,
            "n_annotators": len(names),
            "parts": self.parts,
            "items_per_part": True,
            **({"batches": self.batches} if len(self.batches) <= BATCH_MAX else {}),
            **(extra or {}),
        }
        (self.out / META).write_text(json.dumps(meta, indent=1) + "\n")
        return meta
