"""The coded annotation parts that :mod:`labelcycle.aggregation.streaming` fits over.

A part holds every annotation row of a contiguous range of item codes, sorted by item, as two int32
columns: the item code and the *pair* code ``annotator * K + label``; where the raw batch of each row is
known, a third column ``batch`` (int16) indexes ``meta["batches"]``, the raw batch digests in ingest
order, oldest first (what lets :mod:`labelcycle.aggregation.incremental` re-fit only a new batch). :class:`Parts` keeps them in
memory, :class:`ParquetParts` reads a directory of ``part-NNNNN.parquet`` files (with ``meta.json`` and
the code tables) written by :func:`write_parts` (from an encoded table, the ingest stage) or by
:func:`labelcycle.aggregation.encode_parts.encode_dataset` (any size, out of core).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from labelcycle import schema
from labelcycle.aggregation.base import Encoded

#: rows per part when parts are written (about 32 MiB of codes per part)
ROWS_PER_PART = 4_000_000
META = "meta.json"
#: most raw batches the int16 ``batch`` column can name
BATCH_MAX = 2**15 - 1


@dataclass(frozen=True)
class Part:
    """Every annotation of the items ``lo <= code < hi``, sorted by item."""

    lo: int
    hi: int
    item: np.ndarray  # int32, item code - lo, ascending
    pair: np.ndarray  # int32, annotator code * K + label code
    batch: np.ndarray | None = None  # int16 index into meta["batches"], where known

    def matrix(self, n_pairs: int) -> sp.csr_matrix:
        """``items x pairs`` counts (duplicate rows count twice, as in :class:`_em.Codes`)."""
        indptr = np.zeros(self.hi - self.lo + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.item, minlength=self.hi - self.lo), out=indptr[1:])
        data = np.ones(len(self.pair), dtype=np.float64)
        return sp.csr_matrix((data, self.pair, indptr), shape=(self.hi - self.lo, n_pairs))


@dataclass(frozen=True)
class Layout:
    """What every part shares: the code tables."""

    items: pd.Index | None  # None: each part has its own (ParquetParts from encode_parts)
    annotators: pd.Index
    classes: tuple[str, ...]
    n_rows: int

    @property
    def n_pairs(self) -> int:
        return len(self.annotators) * len(self.classes)


class Parts:
    """Parts held in memory (from an :class:`Encoded` table)."""

    def __init__(self, layout: Layout, parts: list[Part]) -> None:
        self.layout, self._parts = layout, parts

    @classmethod
    def from_encoded(
        cls, enc: Encoded, rows_per_part: int = ROWS_PER_PART, batch: np.ndarray | None = None
    ) -> Parts:
        """Parts of ``enc`` (``batch``: each row's raw batch index, kept beside its row)."""
        order = np.argsort(enc.item, kind="stable")
        item = enc.item[order].astype(np.int32)
        pair = (enc.annotator[order] * enc.n_classes + enc.label[order]).astype(np.int32)
        batch = np.asarray(batch)[order].astype(np.int16) if batch is not None else None
        layout = Layout(enc.items, enc.annotators, enc.classes, len(item))
        parts = []
        for lo, hi, start, stop in _cuts(item, enc.n_items, rows_per_part):
            rows = slice(start, stop)
            parts.append(
                Part(lo, hi, item[rows] - lo, pair[rows], batch[rows] if batch is not None else None)
            )
        return cls(layout, parts)

    def refs(self) -> list:
        return list(self._parts)

    @staticmethod
    def load(ref: Part) -> Part:
        return ref


class ParquetParts:
    """Parts in a directory: ``part-NNNNN.parquet`` (columns ``item``, ``pair``), code tables, ``meta.json``."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        meta = json.loads((self.path / META).read_text())
        self.meta = meta
        items = None  # parts from encode_parts keep their own item ids beside them
        if not meta.get("items_per_part"):
            ids = pq.read_table(self.path / "items.parquet").column(0).to_pandas()
            items = pd.Index(ids.astype(object), name=schema.ITEM_ID)
        annotators = pq.read_table(self.path / "annotators.parquet").column(0).to_pandas()
        self.layout = Layout(
            items,
            pd.Index(annotators.astype(object), name=schema.ANNOTATOR_ID),
            tuple(meta["classes"]),
            int(meta["n_rows"]),
        )

    def refs(self) -> list:
        return [
            (str(self.path / p["file"]), p["lo"], p["hi"], str(self.path / p.get("items", "")))
            for p in self.meta["parts"]
        ]

    @property
    def batches(self) -> list[str] | None:
        """The raw batches (oldest first) that the parts' ``batch`` column indexes; None: rows carry none."""
        return self.meta.get("batches")

    @staticmethod
    def load(ref: tuple[str, int, int, str], batch: bool = False) -> Part:
        """One part (with its ``batch`` column when ``batch``)."""
        import pyarrow.parquet as pq

        path, lo, hi, _ = ref
        table = pq.read_table(path, columns=["item", "pair", *(["batch"] if batch else [])])
        item = table.column("item").to_numpy()
        rows = table.column("batch").to_numpy() if batch else None
        return Part(lo, hi, item - np.int32(lo), table.column("pair").to_numpy(), rows)


def write_parts(
    enc: Encoded,
    out: Path,
    rows_per_part: int = ROWS_PER_PART,
    extra: dict | None = None,
    batch: np.ndarray | None = None,
    batches: list[str] | None = None,
) -> dict:
    """Write ``enc`` as a Parquet part directory (replacing ``out``); returns its ``meta.json`` content.

    ``batch`` (each row's index into ``batches``, the raw batch digests oldest first) adds the ``batch``
    column and ``meta["batches"]``.
    """
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if batch is not None and len(batches or ()) > BATCH_MAX:
        batch = None  # more raw batches than the int16 column holds: no incremental runs
    mem = Parts.from_encoded(enc, rows_per_part, batch)
    files = []
    for n, part in enumerate(mem.refs()):
        name = f"part-{n:05d}.parquet"
        columns = {"item": part.item + np.int32(part.lo), "pair": part.pair}
        if part.batch is not None:
            columns["batch"] = part.batch
        table = pa.table(columns)
        pq.write_table(table, out / name, compression="lz4")
        files.append({"file": name, "lo": int(part.lo), "hi": int(part.hi), "rows": len(part.item)})
    pq.write_table(pa.table({schema.ITEM_ID: pa.array(enc.items.astype(str))}), out / "items.parquet")
    pq.write_table(
        pa.table({schema.ANNOTATOR_ID: pa.array(enc.annotators.astype(str))}), out / "annotators.parquet"
    )
    meta = {
        "classes": list(enc.classes),
        "n_rows": len(enc.item),
        "n_items": enc.n_items,
        "n_annotators": enc.n_annotators,
        "parts": files,
        **({"batches": list(batches or ())} if batch is not None else {}),
        **(extra or {}),
    }
    (out / META).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _cuts(item: np.ndarray, n_items: int, rows_per_part: int) -> Iterator[tuple[int, int, int, int]]:
    """``(lo, hi, start, stop)``: item code ranges of about ``rows_per_part`` rows, rows ``start:stop``."""
    ends = np.cumsum(np.bincount(item, minlength=n_items))
    lo, start = 0, 0
    while lo < n_items:
        hi = int(np.searchsorted(ends, start + max(int(rows_per_part), 1), side="left")) + 1
        hi = min(max(hi, lo + 1), n_items)
        stop = int(ends[hi - 1])
        yield lo, hi, start, stop
        lo, start = hi, stop


def write_codes(
    annotations: pd.DataFrame, classes, out: Path, digest: str, batches: list[str] | None = None
) -> dict:
    """Encode the validated annotations and write them as parts (the ingest stage's coded output).

    ``digest`` (the annotations' full-content digest) is kept in ``meta.json`` so a stage that streams
    the parts can name the table it read without loading it. ``batches``: every raw batch, oldest first
    (also those whose rows were all merged or quarantined), which the ``batch`` column indexes; default:
    the batches of the rows, in order of first appearance.
    """
    from labelcycle.aggregation.base import encode

    enc = encode(annotations[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]], classes)
    batch = None
    if schema.RAW_BATCH in annotations.columns:  # batches arrive oldest first: codes by first appearance
        if batches is None:
            batch, names = pd.factorize(annotations[schema.RAW_BATCH].astype(str), sort=False)
            batches = [str(b) for b in names]
        else:
            batch = pd.Index(batches).get_indexer(annotations[schema.RAW_BATCH].astype(str))
    return write_parts(enc, out, extra={"digest": digest}, batch=batch, batches=batches)


def head_rows(source, n: int = 1000) -> pd.DataFrame:
    """The first ``n`` annotation rows decoded to ``item_id, annotator_id, label`` (for run logging)."""
    lay = source.layout
    k = len(lay.classes)
    refs = source.refs()
    part = source.load(refs[0]) if refs else Part(0, 0, np.zeros(0, np.int32), np.zeros(0, np.int32))
    item, pair = part.item[:n].astype(np.int64), part.pair[:n]
    if lay.items is None:  # each part has its own item ids (codes local to the part)
        from labelcycle.aggregation.encode_parts import items_of

        ids = items_of(refs[0][3]) if refs else pd.Index([], dtype=object)
    else:
        ids, item = lay.items, item + part.lo
    return pd.DataFrame(
        {
            schema.ITEM_ID: np.asarray(ids, dtype=object)[item],
            schema.ANNOTATOR_ID: np.asarray(lay.annotators, dtype=object)[pair // k],
            schema.LABEL: np.asarray(lay.classes, dtype=object)[pair % k],
        }
    )
