"""Encode a Parquet annotation data set of any size into the coded parts of :mod:`.streaming`.

Two passes over bounded batches, never the whole table:

1. read the data set in record batches (Arrow), give every annotator and label a code (few, kept in
   a dictionary), and spill each row to one of ``n`` *buckets* chosen by a hash of its ``item_id``, so
   all rows of an item land in the same bucket;
2. per bucket: code its items (in order of first appearance), sort its rows by item and write one
   part (``item``, ``pair`` as int32) with its item ids beside it.

Memory is bounded by one batch or one bucket (about ``rows_per_part`` rows) plus the annotator table;
the parts come out in bucket order with items in order of first appearance within each part. Which
bucket an item lands in depends only on its id, so an item's result does not depend on the order of
the input rows (only the order of the output rows does).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation.parts import BATCH_MAX, META, ROWS_PER_PART

#: rows per record batch of the first pass (bounds the hash's byte arrays to a few hundred MiB)
BATCH_ROWS = 1_000_000
_MULT = np.random.default_rng(20261129).integers(1, 2**31 - 1, size=64, dtype=np.int64).astype(np.uint32) | 1


def string_hash(arr) -> np.ndarray:
    """A 32-bit hash of every string of an Arrow string array (vectorised over its bytes; nulls as "").

    Only the spread of items over buckets depends on it, never a result.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pc.fill_null(arr, "").cast(pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    buf = arr.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
    first, last = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets).astype(np.int32)
    starts = (offsets[:-1] - first).astype(np.int32)
    pos = np.arange(last - first, dtype=np.int32)
    pos -= np.repeat(starts, lengths)
    np.minimum(pos, 63, out=pos)
    weighted = _MULT[pos]
    weighted *= data[first:last]
    h = np.zeros(n, dtype=np.uint32)
    nonempty = lengths > 0
    if nonempty.any():
        h[nonempty] = np.add.reduceat(weighted, starts[nonempty])
    h ^= lengths.astype(np.uint32) * np.uint32(0x9E3779B1)
    h ^= h >> np.uint32(16)  # finaliser (murmur3 fmix32)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def _batches(files: list[Path], renames: dict[str, str]) -> Iterator:
    """``(file index, record batch)`` over the files in order."""
    import pyarrow.dataset as pads

    source = {v: k for k, v in renames.items()}  # contract name -> file column
    cols = [source.get(c, c) for c in (schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL)]
    dataset = pads.dataset([str(f) for f in files], format="parquet")
    missing = [c for c in cols if c not in dataset.schema.names]
    if missing:
        from labelcycle.errors import SchemaError

        raise SchemaError(
            f"{files[0].parent}: missing required column(s) {missing} for the annotations table; found "
            f"{dataset.schema.names}. Map them with --item-col/--annotator-col/--label-col"
        )
    for n, fragment in enumerate(dataset.get_fragments()):
        for batch in fragment.to_batches(columns=cols, batch_size=BATCH_ROWS, schema=dataset.schema):
            yield n, batch


class _Codebook:
    """Codes by first appearance for a small set of strings (annotators, labels)."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, arr) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.compute as pc

        enc = pc.dictionary_encode(pc.fill_null(arr.cast(pa.string()), ""))
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        local = np.array([self.codes.setdefault(s, len(self.codes)) for s in enc.dictionary.to_pylist()])
        return local[enc.indices.to_numpy(zero_copy_only=False)].astype(np.int32)

    def sorted(self) -> tuple[list[str], np.ndarray]:
        """The strings sorted, and the sorted code of each first-appearance code."""
        names = sorted(self.codes)
        remap = np.empty(len(names), dtype=np.int64)
        for new, name in enumerate(names):
            remap[self.codes[name]] = new
        return names, remap


def encode_dataset(
    files: list[Path],
    out: Path,
    classes: tuple[str, ...] | list[str] | None = None,
    renames: dict[str, str] | None = None,
    rows_per_part: int = ROWS_PER_PART,
    batches: list[str] | None = None,
) -> dict:
    """Write the coded parts of the annotation data set ``files`` to ``out``; returns ``meta.json``.

    Each file is a raw batch: the parts' ``batch`` column holds the index of a row's file and
    ``meta["batches"]`` names them (``batches``, one per file, oldest first; default: the file paths), so
    a new file of new items can be aggregated incrementally (:mod:`labelcycle.aggregation.incremental`).

    Raises:
        SchemaError: a required column is missing, or a label is outside ``classes``.
        ValidationError: the data set has no rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    spill = out / "_spill"
    spill.mkdir(parents=True)
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    n_buckets = min(max(1, -(-total // max(int(rows_per_part), 1))), 2**16 - 1)
    annotators, labels = _Codebook(), _Codebook()
    writers: dict[int, pq.ParquetWriter] = {}
    spill_schema = pa.schema(
        [("item_id", pa.large_string()), ("ann", pa.int32()), ("lab", pa.int32()), ("batch", pa.int16())]
    )
    names = [str(b) for b in batches] if batches is not None else [Path(f).as_posix() for f in files]
    if len(names) != len(files):
        raise ValueError(f"{len(names)} batch names for {len(files)} files")
    for origin, batch in _batches(files, renames or {}):
        item_col, ann_col, lab_col = batch.columns
        bucket = (string_hash(item_col) % np.uint32(n_buckets)).astype(np.uint16)  # radix-sorted
        order = np.argsort(bucket, kind="stable")
        table = pa.table(
            {
                "item_id": pa.compute.fill_null(item_col, "").cast(pa.large_string()),
                "ann": annotators.encode(ann_col),
                "lab": labels.encode(lab_col),
                "batch": np.full(len(bucket), min(origin, BATCH_MAX), dtype=np.int16),
            },
            schema=spill_schema,
        ).take(order)
        bounds = np.searchsorted(bucket[order], np.arange(n_buckets + 1))
        for b in range(n_buckets):
            if bounds[b + 1] > bounds[b]:
                if b not in writers:
                    writers[b] = pq.ParquetWriter(spill / f"{b:05d}.parquet", spill_schema, compression="lz4")
                writers[b].write_table(table.slice(bounds[b], bounds[b + 1] - bounds[b]))
    for w in writers.values():
        w.close()
    if not writers:
        from labelcycle.errors import ValidationError

        shutil.rmtree(out)
        raise ValidationError("no annotations to aggregate: the data set has no rows")
    ann_names, ann_remap = annotators.sorted()
    lab_remap, classes = _label_codes(labels, classes)
    k = len(classes)
    pair_of = (ann_remap[:, None] * k + lab_remap[None, :]).astype(np.int32)
    parts, offset, n_rows = [], 0, 0
    for b in sorted(writers):
        parts.append(_write_part(spill / f"{b:05d}.parquet", out, len(parts), offset, pair_of))
        offset, n_rows = parts[-1]["hi"], n_rows + parts[-1]["rows"]
    shutil.rmtree(spill)
    pq.write_table(
        pa.table({schema.ANNOTATOR_ID: pa.array(ann_names, pa.string())}), out / "annotators.parquet"
    )
    meta = {
        "classes": list(classes),
        "n_rows": n_rows,
        "n_items": offset,
        "n_annotators": len(ann_names),
        "parts": parts,
        "items_per_part": True,
    }
    if len(names) <= BATCH_MAX:  # else the column saturates: no incremental runs on this data set
        meta["batches"] = names
    (out / META).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def _label_codes(labels: _Codebook, classes) -> tuple[np.ndarray, tuple[str, ...]]:
    """Class code per first-appearance label code; the label set (sorted labels when not given)."""
    from labelcycle.errors import SchemaError

    seen, _ = labels.sorted()
    classes = tuple(str(c) for c in classes) if classes is not None else tuple(seen)
    position = {c: i for i, c in enumerate(classes)}
    unknown = [v for v in seen if v not in position]
    if unknown:
        raise SchemaError(
            f"labels {unknown[:5]} are not in the label set {list(classes)}; "
            "add them to the label set (classes) or fix the annotations"
        )
    remap = np.empty(len(labels.codes), dtype=np.int64)
    for name, code in labels.codes.items():
        remap[code] = position[name]
    return remap, classes


def _write_part(path: Path, out: Path, n: int, offset: int, pair_of: np.ndarray) -> dict:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    enc = pc.dictionary_encode(table.column("item_id")).combine_chunks()
    ids = enc.dictionary  # items in order of first appearance (sorting strings costs more than the fit)
    local = enc.indices.to_numpy().astype(np.int32)
    rows = np.argsort(local, kind="stable")
    ann = table.column("ann").to_numpy()
    lab = table.column("lab").to_numpy()
    pair = pair_of[ann[rows], lab[rows]]
    name = f"part-{n:05d}.parquet"
    item = local[rows] + np.int32(offset)
    batch = table.column("batch").to_numpy()[rows]
    pq.write_table(pa.table({"item": item, "pair": pair, "batch": batch}), out / name, compression="lz4")
    pq.write_table(
        pa.table({schema.ITEM_ID: ids.cast(pa.string())}),
        out / f"items-{n:05d}.parquet",
    )
    path.unlink()
    return {
        "file": name,
        "items": f"items-{n:05d}.parquet",
        "lo": offset,
        "hi": offset + len(ids),
        "rows": len(rows),
    }


def items_of(path: str) -> pd.Index:
    """The item ids of one part (``items-NNNNN.parquet``)."""
    import pyarrow.parquet as pq

    return pd.Index(pq.read_table(path).column(0).to_numpy(zero_copy_only=False), name=schema.ITEM_ID)
