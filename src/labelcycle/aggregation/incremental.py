"""Incremental aggregation: a new raw batch of new items is fitted alone, on top of the stored state.

Incremental EM (Neal & Hinton 1998): the M-step needs only the sufficient statistics of the E-step
(expected confusion counts per annotator, posterior mass per class), and these are sums over items. A
fit stores with its parameters the statistics of its last E-step, the per-item result table and what
it covered (:class:`State`). When the new coded parts hold exactly the covered rows plus rows of new
raw batches that touch only new items, only the new items are re-estimated: E-step on the new rows,
M-step on stored + new statistics, a few passes over the new rows only; the old items keep their stored
posteriors and labels. Any other case (old rows changed, an old item got new rows, another method,
label set or hyperparameters, no state, ``warm_start`` off) is a full fit (:func:`choose` says which
and why).

"Exactly the covered rows" is checked without the item ids, in one pass over the parts' ``pair`` and
``batch`` columns: the raw batch digests (``meta["batches"]``) must start with the covered ones, and
each covered batch must have the same number of rows and the same multiset of (annotator id, label)
(an additive 64-bit fingerprint), the old items the same count; an item with rows of both old and new
batches forbids the incremental path.

The old items' rows are never decoded nor encoded again: the state keeps the result table as the
Parquet file an incremental run writes (:data:`COMPRESSION`), and :func:`write_labels` copies its bytes
and appends the new items' row groups (:mod:`labelcycle.aggregation.parquet_append`); the next state
copies that file as it is, with the sorted row hashes of its rows (:data:`HASHES`), from which the
aggregate stage takes the next table's digest without reading the old rows (:mod:`consensus`). So an
incremental run costs one read of the parts' codes (the scan), the fit over the new rows and a file
copy, not a pass over every item's strings and numbers.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from labelcycle import schema
from labelcycle.aggregation import consensus, streaming
from labelcycle.aggregation import fitted as stored
from labelcycle.aggregation.base import BaseAggregator, Encoded
from labelcycle.aggregation.dawid_skene import DawidSkene
from labelcycle.aggregation.parts import Parts
from labelcycle.aggregation.streaming import Fitted, Stats

STATE_VERSION = 1
#: the state's file of sorted row hashes of its result table (optional: older states have none)
HASHES = "row_hashes.npy"
INCREMENTAL, WARM, COLD = "incremental", "warm", "cold"


# ------------------------------------------------------------------------------------------- the scan


@dataclass
class Scan:
    """One pass over the parts: what each raw batch holds and, split at ``n_old`` batches, the new rows."""

    batch_rows: list[int]  # rows per raw batch of meta["batches"]
    batch_votes: list[str]  # per raw batch: fingerprint of its (annotator id, label) multiset
    old_items: int = 0  # items with rows of the first n_old batches
    mixed_items: int = 0  # items with rows of both old and new batches
    new: Parts | None = None  # rows of the new batches (their items only), items coded afresh


def _pair_hashes(lay) -> np.ndarray:
    """A 64-bit hash per pair code from the annotator's id and the label (codes differ between runs)."""
    import pyarrow as pa

    from labelcycle.aggregation.encode_parts import string_hash

    k = len(lay.classes)
    ann = string_hash(pa.array(np.asarray(lay.annotators, dtype=object).astype(str))).astype(np.uint64)
    lab = string_hash(pa.array(list(lay.classes))).astype(np.uint64)
    x = (ann[:, None] << np.uint64(32)) ^ lab[None, :]
    x = x.reshape(len(ann) * k)
    with np.errstate(over="ignore"):  # splitmix64 finaliser
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _item_ids(ref, codes: np.ndarray) -> np.ndarray:
    """The ids of some items of one part with its own item table (only those become Python strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    column = pq.read_table(ref[3]).column(0)
    return column.take(pa.array(codes - ref[1])).to_numpy(zero_copy_only=False)


def _batch_pair_counts(part, n_batches: int, n_pairs: int) -> np.ndarray | None:
    """Rows per (raw batch, pair code) of one part, ``n_batches x n_pairs``; None where that is too big."""
    cells = n_batches * n_pairs
    if cells > max(4 * len(part.pair), 1 << 22):
        return None
    flat = part.batch.astype(np.int64) * n_pairs + part.pair
    return np.bincount(flat, minlength=cells)[:cells].reshape(n_batches, n_pairs)


@dataclass
class _PartScan:
    """One part's share of a :class:`Scan` (new items numbered from 0 within the part)."""

    rows: np.ndarray
    votes: np.ndarray
    old_items: int = 0
    mixed_items: int = 0
    new_item: np.ndarray | None = None
    new_pair: np.ndarray | None = None
    new_ids: np.ndarray | None = None


def _scan_part(ref, source, n_old: int | None, hashes: np.ndarray, nb: int) -> _PartScan:
    part = source.load(ref, batch=True)
    counts = _batch_pair_counts(part, nb, len(hashes))
    if counts is None:  # too many (batch, pair) cells for one count array
        rows = np.bincount(part.batch, minlength=nb)[:nb]
        votes = np.zeros(nb, np.uint64)
        np.add.at(votes, part.batch, hashes[part.pair])
    else:  # each batch's sum of its rows' hashes, mod 2**64 (the same sum as adding row by row)
        rows = counts.sum(axis=1)
        votes = (counts.astype(np.uint64) * hashes[None, :]).sum(axis=1, dtype=np.uint64)
    out = _PartScan(rows, votes)
    if n_old is None:
        return out
    n = part.hi - part.lo
    new_rows = np.flatnonzero(part.batch >= n_old)  # few: this week's
    new_per_item = np.bincount(part.item[new_rows], minlength=n)
    has_old = np.bincount(part.item, minlength=n) > new_per_item
    has_new = new_per_item > 0
    out.old_items = int(has_old.sum())
    out.mixed_items = int((has_old & has_new).sum())
    fresh = np.flatnonzero(has_new & ~has_old)
    if len(fresh):
        code = np.full(n, -1, dtype=np.int64)
        code[fresh] = np.arange(len(fresh))
        keep = new_rows[code[part.item[new_rows]] >= 0]
        out.new_item, out.new_pair = code[part.item[keep]], part.pair[keep]
        items = source.layout.items
        out.new_ids = _item_ids(ref, part.lo + fresh) if items is None else items[part.lo + fresh]
    return out


def scan(source: streaming.ParquetParts, n_old: int | None = None) -> Scan:
    """Fingerprint every raw batch; with ``n_old``, also split items and rows into old and new batches."""
    lay, batches = source.layout, source.batches or []
    nb, k = len(batches), len(lay.classes)
    rows, votes = np.zeros(nb, np.int64), np.zeros(nb, np.uint64)
    hashes = _pair_hashes(lay)
    out = Scan([], [])
    new_item, new_pair, new_ids, offset = [], [], [], 0
    for ref in source.refs():  # threads over parts gain nothing: Arrow's read already takes the cores
        got = _scan_part(ref, source, n_old, hashes, nb)
        rows += got.rows
        votes += got.votes
        out.old_items += got.old_items
        out.mixed_items += got.mixed_items
        if got.new_item is not None:
            new_item.append(got.new_item + offset)
            new_pair.append(got.new_pair)
            new_ids.append(got.new_ids)
            offset += len(got.new_ids)
    out.batch_rows, out.batch_votes = [int(r) for r in rows], [f"{v:016x}" for v in votes]
    if n_old is not None and offset:
        pair = np.concatenate(new_pair).astype(np.int64)
        ids = pd.Index(np.concatenate(new_ids).astype(str).astype(object), name=schema.ITEM_ID)
        enc = Encoded(np.concatenate(new_item), pair // k, pair % k, ids, lay.annotators, lay.classes)
        out.new = Parts.from_encoded(enc, rows_per_part=max(len(pair), 1))
    return out


# ------------------------------------------------------------------------------------------- the state


@dataclass
class State:
    """What a fit leaves for the next run: its parameters, last E-step, coverage and result table."""

    fit: Fitted
    model: dict  # method and hyperparameters
    n_rows: int
    n_items: int
    batches: list[str]
    batch_rows: list[int]
    batch_votes: list[str]
    labels: Path  # the result table (one row per item) of every covered item
    hashes: Path | None = None  # its sorted row hashes (:mod:`consensus`), where stored


def model_key(model: BaseAggregator) -> dict:
    """The method and hyperparameters that decide a fit (any change: no incremental run)."""
    fields = dataclasses.asdict(model) if dataclasses.is_dataclass(model) else {}
    return json.loads(json.dumps({"method": model.name, **fields}, sort_keys=True, default=str))


def save_state(
    out: Path,
    fit: Fitted,
    model: BaseAggregator,
    source,
    found: Scan,
    labels: Path | pd.DataFrame,
    hashes: np.ndarray | None = None,
) -> None:
    """Write the state of ``fit`` over ``source`` (``found``: its scan) to the directory ``out``, whole.

    ``hashes``: the sorted row hashes of ``labels`` (:func:`consensus.sorted_row_hashes`), kept so that the
    next incremental run digests its table from them and the new rows' (none: not kept).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    n_items = len(labels) if isinstance(labels, pd.DataFrame) else pq.ParquetFile(labels).metadata.num_rows
    if hashes is not None and len(hashes) != n_items:
        raise ValueError(f"{len(hashes)} row hashes for a result table of {n_items} rows")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    stored.save(fit, tmp / "fit.parquet")
    k = len(fit.classes)
    stats = fit.stats
    assert stats is not None, "a Dawid-Skene fit keeps its last E-step"
    columns = {
        schema.ANNOTATOR_ID: np.repeat(np.asarray(fit.annotators, dtype=object).astype(str), k),
        "given_label": np.tile(np.asarray(fit.classes, dtype=object).astype(str), len(fit.annotators)),
    }
    for t, cls in enumerate(fit.classes):
        columns[f"true_{cls}"] = stats.counts[:, t]
    pq.write_table(pa.table(columns), tmp / "counts.parquet")
    if isinstance(labels, pd.DataFrame) or not _appendable(labels):
        table = (
            pa.Table.from_pandas(labels, preserve_index=False)
            if isinstance(labels, pd.DataFrame)
            else pq.read_table(labels)
        )
        _write_labels(table, tmp / "labels.parquet")
    else:  # already in the state's encoding (e.g. written by write_labels): its bytes, as they are
        shutil.copyfile(labels, tmp / "labels.parquet")
    if hashes is not None:
        consensus.save_hashes(tmp / HASHES, hashes)
    meta = {
        "version": STATE_VERSION,
        "model": model_key(model),
        "classes": list(fit.classes),
        "n_rows": int(source.layout.n_rows),
        "n_items": int(n_items),
        "batches": list(source.batches or []),
        "batch_rows": found.batch_rows,
        "batch_votes": found.batch_votes,
        "mass": stats.mass.tolist(),
        "given": stats.given.tolist(),
        "log_lik": float(stats.log_lik),
        "row_hashes": hashes is not None,
    }
    (tmp / "state.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def clear_state(out: Path, reason: str) -> None:
    """Leave at ``out`` a state that no run can continue from (and says why), replacing any other."""
    out = Path(out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "state.json").write_text(json.dumps({"version": None, "none": reason}, indent=1) + "\n")


def load_state(path: Path) -> State | None:
    """The state stored at ``path``, or None where there is none (or of another format version)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not (path / "state.json").exists():
        return None
    meta = json.loads((path / "state.json").read_text())
    if meta.get("version") != STATE_VERSION:
        return None
    fit = stored.load(path / "fit.parquet")
    counts = pq.read_table(path / "counts.parquet").to_pandas()
    fit.stats = Stats(
        counts[[f"true_{c}" for c in fit.classes]].to_numpy(np.float64),
        np.asarray(meta["mass"], np.float64),
        np.asarray(meta["given"], np.float64),
        float(meta["log_lik"]),
    )
    return State(
        fit,
        meta["model"],
        int(meta["n_rows"]),
        int(meta["n_items"]),
        list(meta["batches"]),
        list(meta["batch_rows"]),
        list(meta["batch_votes"]),
        path / "labels.parquet",
        path / HASHES if meta.get("row_hashes") and (path / HASHES).exists() else None,
    )


# ------------------------------------------------------------------------------------------ the choice


@dataclass
class Choice:
    """Which fit runs (``incremental``, ``warm`` or ``cold``), why, and the scan that decided it."""

    path: str
    reason: str
    found: Scan | None = None


def choose(source, model: BaseAggregator, state: State | None, warm: Fitted | None, enabled: bool) -> Choice:
    """Incremental where the module's rules allow it, else warm from ``warm`` (stored parameters), else cold.

    ``enabled`` is ``aggregate.warm_start``: false forces a cold fit.
    """
    fallback = WARM if warm is not None and enabled else COLD

    def full(reason: str, found: Scan | None = None) -> Choice:
        return Choice(fallback, reason, found)

    if not enabled:
        return Choice(COLD, "aggregate.warm_start is false")
    if not isinstance(model, DawidSkene) or not streaming.streams(model):
        return full(f"{model.name} has no incremental fit")
    batches = getattr(source, "batches", None)
    if not batches:
        return full("the coded annotations carry no raw batch column")
    if state is None:
        return full("no stored aggregation state")
    if state.model != model_key(model) or list(state.fit.classes) != list(source.layout.classes):
        return full("the method, its hyperparameters or the label set changed")
    n_old = len(state.batches)
    if list(batches[:n_old]) != state.batches:
        return full("the raw batches of the stored state are not all kept, in the same order")
    if len(batches) == n_old:
        return full("no new raw batch")
    found = scan(source, n_old)
    same = found.batch_rows[:n_old] == state.batch_rows and found.batch_votes[:n_old] == state.batch_votes
    if not same or found.old_items != state.n_items:
        return full("the annotations of the stored raw batches changed", found)
    if found.mixed_items:
        return full(f"the new raw batches annotate {found.mixed_items} items already aggregated", found)
    if found.new is None:
        return full("the new raw batches hold no annotations", found)
    return Choice(INCREMENTAL, f"{len(batches) - n_old} new raw batch(es) of new items only", found)


# --------------------------------------------------------------------------------------------- the fit


def fit(model: DawidSkene, state: State, new: Parts) -> Fitted:
    """Re-estimate the parameters from the stored statistics plus E-steps over the ``new`` rows only.

    The new rows' first E-step is under the stored parameters; each M-step uses stored + new counts;
    it stops by the full fit's rule (:func:`streaming.em_steps`): the likelihood per row of all the data
    (stored + new) gaining less than ``tol``.
    The returned fit's ``stats`` are the stored + the last new E-step's (the next run's state).
    """
    from functools import partial

    lay = new.layout
    k = len(lay.classes)
    old = state.fit.stats
    assert old is not None
    where = lay.annotators.get_indexer(state.fit.annotators)
    if (where < 0).any():
        raise ValueError("the stored annotators are not all in the new layout")
    counts = np.zeros((len(lay.annotators), k, k))
    counts[where] = old.counts.reshape(-1, k, k)
    base = Stats(counts.reshape(-1, k), old.mass, old.given, old.log_lik)
    conf0, priors0 = streaming.init_parameters(state.fit, lay)
    start = streaming._theta(conf0, priors0, model.support == "voted")
    cache: dict = {}

    def run(theta) -> Stats:
        fn = partial(streaming.part_stats, load=new.load, n_pairs=lay.n_pairs, k=k, theta=theta, cache=cache)
        return sum((fn(ref) for ref in new.refs()), base)

    out = Fitted(model.name, lay.classes, lay.annotators, None, state.fit.priors)
    out.warm_started, out.voted, out.ties_to_last = True, model.support == "voted", model.ties_to_last
    return streaming.em_steps(model, out, run, run(start), state.n_rows + lay.n_rows, warm=True)


def labels(state: State, new: Parts, fitted: Fitted) -> pd.DataFrame:
    """The result table of every item: the stored rows of the old items, then the new items'."""
    fresh = streaming.result(new, fitted)
    old = pd.read_parquet(state.labels)
    return pd.concat([old, fresh[old.columns]], ignore_index=True)


def write_labels(state: State, new: Parts, fitted: Fitted, out: Path) -> int:
    """Write :func:`labels` to the Parquet file ``out``; returns the items written.

    The stored rows are not decoded: the new items' rows are written to a small file of the same schema
    and encoding, and :func:`parquet_append.append` joins the stored file's bytes and its row groups
    (a state of another encoding, or a file it cannot join, goes through Arrow and is written whole).
    Either way the rows, columns and values are those of :func:`labels`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labelcycle.aggregation import parquet_append

    out = Path(out)
    stored_schema = pq.read_schema(state.labels)
    fresh = streaming.result(new, fitted)[stored_schema.names]
    fresh = pa.Table.from_pandas(fresh, schema=stored_schema, preserve_index=False)
    if _appendable(state.labels):
        tail, tmp = out.with_name(f".{out.name}.new"), out.with_name(f".{out.name}.partial")
        try:
            _write_labels(fresh, tail)
            n = parquet_append.append(state.labels, tail, tmp)
            tmp.replace(out)
            return n
        except parquet_append.CannotAppend:
            tmp.unlink(missing_ok=True)
        finally:
            tail.unlink(missing_ok=True)
    table = pa.concat_tables([pq.read_table(state.labels), fresh])
    _write_labels(table, out)
    return table.num_rows


#: the encoding of every result table written here (the state's and an incremental run's)
COMPRESSION = "snappy"


def _appendable(path: Path) -> bool:
    """Whether the Parquet file ``path`` is wholly in :data:`COMPRESSION` (so that rows can be appended)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return all(
        meta.row_group(g).column(c).compression == COMPRESSION.upper()
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    )


def _write_labels(table, out: Path) -> None:
    """Write a result table whole (beside ``out``, then renamed); ids and numbers get no dictionary."""
    import pyarrow.parquet as pq

    tmp = out.with_name(f".{out.name}.partial")
    pq.write_table(table, tmp, compression=COMPRESSION, use_dictionary=[schema.LABEL])
    tmp.replace(out)
