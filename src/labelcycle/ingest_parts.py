"""Out-of-core ingest: validate an annotation set larger than memory, one part of its items at a time.

Every check of :func:`labelcycle.validation.validate` on annotations is either about one row (missing
values, unknown label, bad duration or timestamp, an item without features) or about the rows of one
(item, annotator) pair (re-sent rows, repeated judgements). So the annotations can be split by item:

1. **spill**: each raw batch (oldest first) is read file by file (a folder batch's Parquet files one at a
   time, in :meth:`~labelcycle.versioning.raw.Batch.files` order) and every row goes to one of ``n``
   parts chosen by a hash of its stripped ``item_id``, in ingestion order; ``n`` keeps a part near
   ``ingest.part_rows`` rows;
2. **per part**: the part's rows (and the items of the same hash) go through the same validation as the
   in-memory ingest, and its clean rows are appended, as the next row groups, to
   ``data/interim/annotations.parquet`` and written as one coded part of ``data/interim/annotation_codes``
   (``items_per_part`` layout of :mod:`labelcycle.aggregation.parts`, with the ``batch`` column).

Step 1 is :mod:`labelcycle.ingest_spill`. Both steps run in ``ingest.workers`` processes at once (files,
then parts; results are taken in order, so the outputs do not depend on it); the parts then hold about
``part_rows / workers`` rows each. Memory is bounded by one raw file or one part per worker, plus the items
and gold tables (validated in memory: a fraction of the annotations) and the row hashes of the digest (8
bytes a row). The outputs equal the in-memory ingest's as tables: same rows (in part order), same
quarantine and repeats, same counts and the same full-content digest (:class:`PartedDigest`;
tests/unit/test_ingest_parts.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from labelcycle import schema
from labelcycle.aggregation.parts import BATCH_MAX, META
from labelcycle.ingest_spill import Spill, _part_of, in_order, keep_freed_memory
from labelcycle.validation import TableCounts, _Quarantine, _validate_annotations
from labelcycle.versioning.digest import Coded, digest_of_hashes, finest_unit, row_hashes, timestamp_unit

#: Arrow type of each clean annotation column (every other column is text)
_TYPES = {schema.CREATED_AT: pa.timestamp("us", tz="UTC"), schema.DURATION_S: pa.float64()}


@dataclass
class PartHashes:
    """A part's row hashes and the resolution its timestamp columns print at, alone (:class:`PartedDigest`)."""

    columns: list[str]
    units: dict[str, str | None]
    finest: dict[str, str | None]
    hashes: np.ndarray


def part_hashes(df: pd.DataFrame, coded: dict[str, Coded] | None = None) -> PartHashes:
    stamps = [c for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])]
    units = {c: timestamp_unit(df[c]) for c in stamps}
    return PartHashes(
        columns=sorted(map(str, df.columns)),
        units=units,
        finest={c: finest_unit(df[c]) for c in stamps},
        hashes=row_hashes(df, units, coded),  # hashed at the part's own resolution, found once
    )


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
        self.add_hashed(part_hashes(df))

    def add_hashed(self, hashed: PartHashes) -> None:
        if self.columns is None:
            self.columns = hashed.columns
        elif hashed.columns != self.columns:
            raise ValueError(f"parts with different columns: {hashed.columns} and {self.columns}")
        self.units.append(hashed.units)
        self.finest.append(hashed.finest)
        self.hashes.append(hashed.hashes)

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


@dataclass
class _PartJob:
    spill: Spill
    b: int
    labels: list[str]
    items: pd.DataFrame | None
    gold: pa.Array
    known: list[str]
    batches: list[str]


@dataclass
class _Coded:
    """A part's annotations as codes, rows in item order: items and annotators numbered in the part."""

    item: np.ndarray
    annotator: np.ndarray
    annotators: list[str]
    label: np.ndarray
    batch: np.ndarray | None
    ids: pa.Array


@dataclass
class _PartResult:
    counts: TableCounts
    quarantine: list[pd.DataFrame]
    repeats: pd.DataFrame
    clean: Path | None = None  # the clean rows, as an Arrow file
    rows: int = 0
    hashed: PartHashes | None = None
    judged: pd.DataFrame | None = None
    head: pd.DataFrame | None = None
    coded: _Coded | None = None


def _codes_of(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Codes of the values in order of first appearance (as ``pd.factorize(sort=False)``) and the values."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    return encoded.indices.to_numpy(), encoded.dictionary


def _given(table: pa.Table, col: str, given: dict) -> tuple[np.ndarray, pa.Array]:
    """The codes of ``col`` from validation (``given``) where they cover the table, else encoded here."""
    if col in given:
        codes, distinct = given[col]
        if len(codes) == table.num_rows and np.bincount(codes, minlength=len(distinct)).all():
            return codes, pa.array(distinct, pa.large_string())
    return _codes_of(table.column(col))


def _code(
    table: pa.Table, labels: list[str], batches: list[str], given: dict
) -> tuple[_Coded, dict[str, Coded]]:
    """The part's codes (ids and annotators numbered as validation did, ``given``), and its id and label
    columns as row codes into their values (for the digest)."""
    item, ids = _given(table, schema.ITEM_ID, given)
    annotator, names = _given(table, schema.ANNOTATOR_ID, given)
    label_set = pa.array(labels, pa.large_string())
    label = pc.index_in(table.column(schema.LABEL), value_set=label_set).to_numpy()
    by_row = {
        schema.ITEM_ID: (item, ids),
        schema.ANNOTATOR_ID: (annotator, names),
        schema.LABEL: (label, label_set),
    }
    order = np.argsort(item, kind="stable")
    batch = None
    if len(batches) <= BATCH_MAX:  # else no incremental runs (as write_parts)
        found = pc.index_in(table.column(schema.RAW_BATCH), value_set=pa.array(batches, pa.large_string()))
        batch = found.to_numpy()[order].astype(np.int16)
    coded = _Coded(
        item=item[order].astype(np.int32),
        annotator=annotator[order].astype(np.int32),
        annotators=names.to_pylist(),
        label=label[order].astype(np.int32),
        batch=batch,
        ids=ids.cast(pa.string()),
    )
    return coded, by_row


def _validate_part(job: _PartJob) -> _PartResult:
    """Validate one spilled part (in a worker process): its clean rows go to an Arrow file, the rest is returned."""
    keep_freed_memory()
    df = job.spill.read_part(job.b)
    q = _Quarantine()
    given: dict = {}
    clean, rep, counts = _validate_annotations(df, job.labels, job.items, q, given)
    del df
    result = _PartResult(counts, q.frames, rep)
    if clean.empty:
        return result
    table = _arrow_table(clean, job.known)
    del clean
    result.clean = job.spill.dir / f"clean-{job.b:05d}.arrow"
    with pa.ipc.new_file(str(result.clean), table.schema) as writer:
        writer.write_table(table)
    clean = table.to_pandas()  # the types as written (what the stages read back)
    result.rows = len(clean)
    result.coded, by_row = _code(table, job.labels, job.batches, given)
    del given
    result.hashed = part_hashes(clean.drop(columns=[schema.RAW_BATCH]), by_row)
    in_gold = pc.is_in(table.column(schema.ITEM_ID), value_set=job.gold).to_numpy(zero_copy_only=False)
    if in_gold.any():
        result.judged = clean[in_gold]
    result.head = clean.head(1000)
    return result


def validate_parts(
    sp: Spill,
    labels: list[str],
    items: pd.DataFrame | None,
    gold_ids: pd.Series,
    annotations_out: Path,
    codes_out: Path,
    workers: int = 1,
) -> OutOfCore:
    """Validate each spilled part (``workers`` at once), append its clean rows to ``annotations_out`` and
    code them into ``codes_out``, in part order."""
    known = [c for c in schema.ANNOTATIONS.known if c in sp.columns] + [schema.RAW_BATCH]
    out_schema = pa.schema([(c, _TYPES.get(c, pa.large_string())) for c in known])
    item_part = _part_of(items[schema.ITEM_ID], sp.n) if items is not None else None
    gold_set = pa.array(gold_ids.astype(str).unique(), pa.large_string())
    jobs = [
        _PartJob(
            sp, b, labels, items[item_part == b] if items is not None else None, gold_set, known, sp.batches
        )
        for b in range(sp.n)
    ]
    counts = TableCounts()
    quarantine: list[pd.DataFrame] = []
    repeats: list[pd.DataFrame] = []
    judged: list[pd.DataFrame] = []
    digest = PartedDigest()
    codes = _CodesWriter(codes_out, labels, sp.batches)
    head = None
    spans: list[int] = []  # rows of each part written
    with pq.ParquetWriter(annotations_out, out_schema) as writer:
        for r in in_order(_validate_part, jobs, workers):
            counts += r.counts
            quarantine += r.quarantine
            if len(r.repeats):
                repeats.append(r.repeats)
            if r.clean is None:
                continue
            with pa.memory_map(str(r.clean)) as source:
                writer.write_table(pa.ipc.open_file(source).read_all())
            r.clean.unlink()
            spans.append(r.rows)
            digest.add_hashed(r.hashed)
            if r.judged is not None:
                judged.append(r.judged)
            codes.add(r.coded)
            head = r.head if head is None else head
    groups = _row_groups(annotations_out, spans)
    ann_digest = digest.digest(
        lambda i: (
            pq.ParquetFile(annotations_out)
            .read_row_groups(groups[i])
            .to_pandas()
            .drop(columns=[schema.RAW_BATCH])
        )
    )
    codes.close({"digest": ann_digest})
    empty = pd.DataFrame({c: pd.Series(dtype=str) for c in known})
    return OutOfCore(
        counts=counts,
        quarantine=quarantine,
        repeats=pd.concat(repeats, ignore_index=True) if repeats else empty,
        head=head if head is not None else empty,
        rows=sum(spans),
        digest=ann_digest,
        judged_gold=pd.concat(judged, ignore_index=True) if judged else empty,
        parts=sp.n,
    )


def _row_groups(path: Path, spans: list[int]) -> list[list[int]]:
    """The row groups of ``path`` that hold each written part (a part of ``spans[i]`` rows; a Parquet
    writer splits a large table into several row groups, never joins two tables in one)."""
    if not spans:
        return []
    meta = pq.ParquetFile(path).metadata
    groups: list[list[int]] = [[] for _ in spans]
    part, left = 0, spans[0]
    for g in range(meta.num_row_groups):
        while left == 0:
            part += 1
            left = spans[part]
        groups[part].append(g)
        left -= meta.row_group(g).num_rows
    return groups


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

    def add(self, coded: _Coded) -> None:
        k = len(self.labels)
        ann_code = np.array([self.annotators.setdefault(a, len(self.annotators)) for a in coded.annotators])
        columns = {
            "item": coded.item + np.int32(self.offset),
            "pair": (ann_code[coded.annotator] * k + coded.label).astype(np.int32),
        }
        if coded.batch is not None:
            columns["batch"] = coded.batch
        n = len(self.parts)
        name = f"part-{n:05d}.parquet"
        pq.write_table(pa.table(columns), self.out / name, compression="lz4")
        pq.write_table(pa.table({schema.ITEM_ID: coded.ids}), self.out / f"items-{n:05d}.parquet")
        self.parts.append(
            {
                "file": name,
                "items": f"items-{n:05d}.parquet",
                "lo": self.offset,
                "hi": self.offset + len(coded.ids),
                "rows": len(coded.item),
            }
        )
        self.offset += len(coded.ids)
        self.rows += len(coded.item)

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
