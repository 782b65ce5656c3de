"""Out-of-core EM: Dawid-Skene, hierarchical Dawid-Skene and majority vote over annotations in parts.

The annotations are integer codes split into *parts*, each holding every row of a contiguous range of
item codes (rows sorted by item). One EM iteration is one pass over the parts: a part's E-step needs
only its own rows and the current parameters (confusions ``A x K x K``, priors ``K``), and it returns
its share of the next M-step (expected confusion counts, the posteriors' column sums, its log
likelihood). The posteriors are never kept between passes: memory is bounded by one part plus
``annotators x classes^2`` during the fit, and by ``items x classes`` for the result, never by the
number of annotations.

The sequence of computations is the one of :meth:`DawidSkene.fit`: start from vote shares, then
M-step, E-step (given labels only under ``support="voted"``), stop when the log likelihood per row
gains less than ``tol``; the label is decided under the restriction and ``probas_`` come from one last
unrestricted E-step. Only the order of floating-point sums differs, so the labels equal the in-memory
fit's and the probabilities agree to ~1e-12 (tests/unit/aggregation/test_streaming.py).

Parts on disk are Parquet files read with **Arrow** (``pyarrow.parquet``), not DuckDB: EM needs the
same two integer columns as numpy arrays on every pass, which Arrow hands over without a copy from one
file per part, and the per-part state is dense numpy, which SQL would only get in the way of; Arrow is
already a dependency, DuckDB would be a new one for no gain here. The same part function runs on a
Dask cluster (:mod:`labelcycle.aggregation.dask_em`): the parts are the Dask tasks, the M-step is the
sum of their counts.

A fit can start from earlier parameters (``init``, see :mod:`labelcycle.aggregation.fitted`): the first
pass is then an E-step under those parameters instead of vote shares, so a new weekly batch converges
in a few passes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from labelcycle import schema
from labelcycle.aggregation import _em
from labelcycle.aggregation.base import BaseAggregator, argmax_first
from labelcycle.aggregation.dawid_skene import DawidSkene
from labelcycle.aggregation.hierarchical_dawid_skene import HierarchicalDawidSkene
from labelcycle.aggregation.majority_vote import MajorityVote
from labelcycle.aggregation.parts import (  # noqa: F401 - the part layout, re-exported
    META,
    ROWS_PER_PART,
    Layout,
    ParquetParts,
    Part,
    Parts,
    head_rows,
    write_codes,
    write_parts,
)


def streams(model: BaseAggregator) -> bool:
    """Whether ``model`` has a streaming fit (exactly these classes; subclasses change the M-step)."""
    return type(model) in (MajorityVote, DawidSkene, HierarchicalDawidSkene)


# ---------------------------------------------------------------------------------------------- the pass


@dataclass(frozen=True)
class Theta:
    """Model parameters of one E-step (``None`` in a pass means: vote shares)."""

    log_table: np.ndarray  # (A * K) x K: log P(given | true) by pair code
    log_priors: np.ndarray  # K
    voted: bool


@dataclass
class Stats:
    """One pass's sufficient statistics, added up over parts."""

    counts: np.ndarray  # (A * K) x K expected counts [pair, true]
    mass: np.ndarray  # K: posteriors' column sums
    given: np.ndarray  # K: votes per class
    log_lik: float

    def __add__(self, other: Stats) -> Stats:
        return Stats(
            self.counts + other.counts,
            self.mass + other.mass,
            self.given + other.given,
            self.log_lik + other.log_lik,
        )


def _votes(part: Part, k: int) -> np.ndarray:
    """Items x classes vote counts of one part."""
    n = part.hi - part.lo
    flat = np.bincount(part.item.astype(np.int64) * k + part.pair % k, minlength=n * k)
    return flat.reshape(n, k).astype(np.float64)


def _posteriors(
    part: Part, m: sp.csr_matrix, votes: np.ndarray, theta: Theta | None, restrict: bool = True
) -> tuple[np.ndarray, float]:
    if theta is None:
        totals = votes.sum(axis=1, keepdims=True)
        uniform = np.full_like(votes, 1.0 / votes.shape[1])
        return np.divide(votes, totals, out=uniform, where=totals > 0), 0.0
    log_joint = np.asarray(m @ theta.log_table) + theta.log_priors
    if restrict and theta.voted:
        log_joint[votes == 0] = -np.inf
    return _em.normalise_log(log_joint)


def part_stats(
    ref, load: Callable, n_pairs: int, k: int, theta: Theta | None, cache: dict | None = None
) -> Stats:
    """The E-step of one part and its share of the next M-step (module level: Dask ships it).

    ``cache`` (serial runs) keeps what every pass of a part shares and that is bounded by its items, not
    its rows: the row offsets of its items and where it has no vote; later passes then read only the
    ``pair`` column.
    """
    key = ref if isinstance(ref, tuple) else id(ref)  # a path, or a part held in memory
    state = cache.get(key) if cache is not None else None
    if state is None:
        part = load(ref)
        m = part.matrix(n_pairs)
        votes = _votes(part, k)
        outside, given = votes == 0, votes.sum(axis=0)
        if cache is not None:
            cache[key] = (m.indptr, outside)
    else:
        indptr, outside = state
        pair = load_pairs(ref, load)
        m = sp.csr_matrix((_ones(len(pair)), pair, indptr), shape=(len(indptr) - 1, n_pairs))
        votes, given = None, np.zeros(k)
    if theta is None:
        assert votes is not None  # the first pass always has the votes
        post, log_lik = _posteriors(None, m, votes, None)
    else:
        log_joint = np.asarray(m @ theta.log_table) + theta.log_priors
        if theta.voted:
            log_joint[outside] = -np.inf
        post, log_lik = _em.normalise_log(log_joint)
    counts = np.asarray(m.T @ post)
    return Stats(counts, _ones(len(post)) @ post, given, log_lik)


_ONES = np.ones(0)


def _ones(n: int) -> np.ndarray:
    """A read-only vector of ``n`` ones (one buffer reused by every pass)."""
    global _ONES
    if len(_ONES) < n:
        _ONES = np.ones(n)
        _ONES.flags.writeable = False
    return _ONES[:n]


def load_pairs(ref, load: Callable) -> np.ndarray:
    """The ``pair`` column of one part (only it, when the part is on disk)."""
    if isinstance(ref, tuple):
        import pyarrow.parquet as pq

        return pq.read_table(ref[0], columns=["pair"]).column("pair").to_numpy()
    return load(ref).pair


def serial_map(fn: Callable, refs: Iterable) -> list:
    return [fn(r) for r in refs]


# ------------------------------------------------------------------------------------------------ the fit


@dataclass
class Fitted:
    """A streaming fit's parameters and trace."""

    method: str
    classes: tuple[str, ...]
    annotators: pd.Index
    confusions: np.ndarray | None  # A x K x K (None for majority vote)
    priors: np.ndarray
    n_iter: int = 0
    converged: bool = True
    log_likelihood: float = float("nan")
    warm_started: bool = False
    voted: bool = False  # support="voted": labels decided among the given labels
    ties_to_last: bool = False  # ties go to the later-listed label (the model's, e.g. an ordinal scale's)
    #: the last E-step's statistics (under these parameters): what an incremental run adds to
    stats: Stats | None = dataclasses.field(default=None, repr=False)


def _theta(confusions: np.ndarray, priors: np.ndarray, voted: bool) -> Theta:
    a, k, _ = confusions.shape
    with np.errstate(divide="ignore"):
        log_table = np.log(confusions).transpose(0, 2, 1).reshape(a * k, k).copy()
        return Theta(log_table, np.log(priors), voted)


def fit(source, model: BaseAggregator, init: Fitted | None = None, mapper: Callable = serial_map) -> Fitted:
    """Fit ``model``'s parameters over the parts of ``source`` (:class:`Parts` or :class:`ParquetParts`).

    Args:
        init: parameters to start from (a warm start; annotators missing from it start from the
            crowd's pooled confusion), or None for the cold start from vote shares.
        mapper: ``mapper(fn, refs) -> list`` runs the per-part function (serially here, on Dask in
            :mod:`labelcycle.aggregation.dask_em`).
    """
    if not streams(model):
        from labelcycle.errors import ConfigError

        raise ConfigError(f"{type(model).__name__} has no streaming fit; use majority_vote or a Dawid-Skene")
    lay = source.layout
    k, n_pairs = len(lay.classes), lay.n_pairs
    if lay.n_rows == 0 or k == 0:
        from labelcycle.errors import ValidationError

        raise ValidationError("no annotations to aggregate: the table has no rows")
    refs = source.refs()
    # item-bounded state kept between passes (serial runs only: Dask workers read every part each pass)
    cache: dict | None = {} if mapper is serial_map else None

    def run(theta: Theta | None) -> Stats:
        from functools import partial

        fn = partial(part_stats, load=source.load, n_pairs=n_pairs, k=k, theta=theta, cache=cache)
        return reduce(lambda a, b: a + b, mapper(fn, refs))

    if isinstance(model, MajorityVote):
        stats = run(None)
        fitted = Fitted(model.name, lay.classes, lay.annotators, None, stats.mass / stats.mass.sum())
        fitted.ties_to_last = model.ties_to_last
        return fitted
    assert isinstance(model, DawidSkene)
    _em.check_em_params(model.tol, model.max_iter)
    voted = model.support == "voted"
    start = None
    if init is not None:
        conf0, priors0 = init_parameters(init, lay)
        start = _theta(conf0, priors0, voted)
    out = Fitted(model.name, lay.classes, lay.annotators, None, np.full(k, 1.0 / k))
    out.warm_started, out.voted, out.ties_to_last = start is not None, voted, model.ties_to_last
    return em_steps(model, out, run, run(start), lay.n_rows, warm=start is not None)


def em_steps(model: DawidSkene, out: Fitted, run: Callable, stats: Stats, n_rows: int, warm: bool) -> Fitted:
    """M-step, E-step (``run(theta) -> Stats``) until the log likelihood per row gains less than ``tol``.

    ``stats`` is the first pass's (it holds the votes per class); ``n_rows`` divides the likelihood. A warm
    first pass was an E-step under stored parameters: its likelihood is the baseline the first M-step
    must improve on by ``tol`` (a cold start has none: vote shares are no model).
    """
    k = len(out.classes)
    first_given = stats.given  # later passes of a serial run skip the votes
    given = first_given > 0
    out.converged = False
    previous = stats.log_lik / n_rows if warm else -np.inf
    for _ in range(int(model.max_iter)):
        out.n_iter += 1
        out.priors = _em.class_priors_from_mass(stats.mass, model.prior_alpha, given)
        counts = stats.counts.reshape(len(out.annotators), k, k).transpose(0, 2, 1)
        out.confusions = model._confusions_from_counts(counts)
        stats = run(_theta(out.confusions, out.priors, out.voted))
        out.log_likelihood = stats.log_lik
        per_row = stats.log_lik / n_rows
        if per_row - previous < model.tol:
            out.converged = True
            break
        previous = per_row
    out.stats = dataclasses.replace(stats, given=first_given)
    return out


def init_parameters(init: Fitted, lay: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Starting confusions for ``lay``'s annotators (pooled row for new ones) and priors."""
    k = len(lay.classes)
    if init.confusions is None or tuple(init.classes) != tuple(lay.classes):
        raise ValueError("the stored parameters do not fit this label set")
    pooled = init.confusions.mean(axis=0)
    conf = np.broadcast_to(pooled, (len(lay.annotators), k, k)).copy()
    where = pd.Index(init.annotators).get_indexer(lay.annotators)
    known = where >= 0
    conf[known] = init.confusions[where[known]]
    priors = (np.asarray(init.priors, dtype=np.float64) + 1e-6) / (np.sum(init.priors) + k * 1e-6)
    return conf, priors


# --------------------------------------------------------------------------------------------- the result


def part_result(ref, load: Callable, fitted: Fitted, n_pairs: int, items: pd.Index | None) -> pd.DataFrame:
    """The curated-label rows of one part: ``item_id, label, confidence, proba_*, n_annotations, vote_share``."""
    from labelcycle.curation import N_ANNOTATIONS, VOTE_SHARE

    part = load(ref)
    k = len(fitted.classes)
    m = part.matrix(n_pairs)
    votes = _votes(part, k)
    if fitted.confusions is None:
        probas, _ = _posteriors(part, m, votes, None)
        decide = probas
    else:
        theta = _theta(fitted.confusions, fitted.priors, fitted.voted)
        decide, _ = _posteriors(part, m, votes, theta)
        probas = _posteriors(part, m, votes, theta, restrict=False)[0] if theta.voted else decide
    probas = probas / probas.sum(axis=1, keepdims=True)
    winners = argmax_first(decide, fitted.ties_to_last)
    rows = np.arange(len(winners))
    n = votes.sum(axis=1)
    out = pd.DataFrame(
        {
            schema.ITEM_ID: _item_ids(ref, part, items),
            schema.LABEL: np.asarray(fitted.classes, dtype=object)[winners],
            schema.CONFIDENCE: probas[rows, winners],
        }
    )
    for c, cls in enumerate(fitted.classes):
        out[schema.proba_column(cls)] = probas[:, c]
    out[N_ANNOTATIONS] = n.astype(np.int64)
    out[VOTE_SHARE] = votes[rows, winners] / n
    return out


def _item_ids(ref, part: Part, items: pd.Index | None) -> np.ndarray:
    if items is None:
        from labelcycle.aggregation.encode_parts import items_of

        return np.asarray(items_of(ref[3]), dtype=object)
    return np.asarray(items[part.lo : part.hi], dtype=object).astype(str)


def write_result(
    source, fitted: Fitted, out: Path, mapper: Callable = serial_map, drop: tuple[str, ...] = ()
) -> int:
    """Write the result table part by part to ``out`` (CSV, TSV or Parquet); returns the items written.

    Memory holds one part's rows at a time; the columns are :func:`result`'s less ``drop``.
    """
    from functools import partial

    from labelcycle.table_writer import TableWriter

    lay = source.layout
    fn = partial(part_result, load=source.load, fitted=fitted, n_pairs=lay.n_pairs, items=lay.items)
    n = 0
    with TableWriter(Path(out)) as writer:
        for ref in source.refs():
            frame = mapper(fn, [ref])[0]
            writer.write(frame.drop(columns=list(drop)))
            n += len(frame)
    return n


def result(source, fitted: Fitted, mapper: Callable = serial_map) -> pd.DataFrame:
    """The curated-label table of a fit (items in code order, as :func:`curated_labels` gives)."""
    from functools import partial

    lay = source.layout
    fn = partial(part_result, load=source.load, fitted=fitted, n_pairs=lay.n_pairs, items=lay.items)
    frames = mapper(fn, source.refs())
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def skills(source, fitted: Fitted, labels: pd.DataFrame) -> pd.Series:
    """Per-annotator skill: expected accuracy (Dawid-Skene) or agreement with the majority label."""
    lay = source.layout
    if fitted.confusions is not None:
        values = _em.expected_accuracy(fitted.confusions, fitted.priors)
        return pd.Series(values, index=lay.annotators, name="skill")
    k = len(lay.classes)
    winner = pd.Index(lay.classes).get_indexer(labels[schema.LABEL].to_numpy())
    agree = np.zeros(len(lay.annotators))
    total = np.zeros(len(lay.annotators))
    for ref in source.refs():
        part = source.load(ref)
        ann, lab = part.pair // k, part.pair % k
        hit = (winner[part.item.astype(np.int64) + part.lo] == lab).astype(np.float64)
        agree += np.bincount(ann, weights=hit, minlength=len(agree))
        total += np.bincount(ann, minlength=len(total))
    return pd.Series(agree / np.maximum(total, 1), index=lay.annotators, name="skill")
