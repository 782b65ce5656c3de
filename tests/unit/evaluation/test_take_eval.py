"""A slice taken from a prepared eval set is the slice prepared on its own, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from labelcycle.evaluation.metrics import is_rank_metric, prepare_eval, take_eval, weighted_metrics
from labelcycle.evaluation.paired import PredictionSet
from labelcycle.evaluation.slices import slice_paired

CLASSES = ("a", "b", "c")


def _data(seed: int, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.asarray(CLASSES)[rng.integers(0, 3, n)]
    p = rng.dirichlet([1, 1, 1], n)
    p[:50] = np.round(p[:50], 1)  # tied scores
    return y, p / p.sum(axis=1, keepdims=True)


def test_taken_rows_equal_the_rows_prepared_alone_bit_for_bit():
    y, p = _data(0)
    rows = np.flatnonzero(np.random.default_rng(1).random(y.size) < 0.3)
    alone = prepare_eval(y[rows], p[rows], CLASSES)
    taken = take_eval(prepare_eval(y, p, CLASSES, rank=False), rows, p)
    for name in ("y", "pred", "features", "features32"):
        assert np.array_equal(getattr(alone, name), getattr(taken, name))
    for a, t in zip(alone.rank, taken.rank, strict=True):
        assert a.n_groups == t.n_groups
        for part in ("rows", "tie_items", "tie_rows"):
            assert np.array_equal(getattr(a, part), getattr(t, part))
    w = np.random.default_rng(2).integers(0, 3, (5, rows.size)).astype(np.float32)
    got, want = weighted_metrics(taken, w), weighted_metrics(alone, w)
    for name, v in want.items():
        assert np.array_equal(got[name], v, equal_nan=True), name


def test_without_ranking_maps_the_ranking_metrics_are_nan_and_the_others_unchanged():
    y, p = _data(3)
    w = np.ones((1, y.size))
    full = weighted_metrics(prepare_eval(y, p, CLASSES), w)
    bare = weighted_metrics(prepare_eval(y, p, CLASSES, rank=False), w)
    assert take_eval(prepare_eval(y, p, CLASSES, rank=False), np.arange(10)).rank is None
    for name, v in full.items():
        if is_rank_metric(name):
            assert np.isnan(bare[name]).all(), name
        else:
            assert np.array_equal(bare[name], v, equal_nan=True), name


def _slice_alone(b: PredictionSet, c: PredictionSet, rows: np.ndarray, seed) -> pd.DataFrame:
    from labelcycle.evaluation.paired import paired_table

    prep_b = prepare_eval(b.y_true[rows], b.proba[rows], CLASSES)
    prep_c = prepare_eval(c.y_true[rows], c.proba[rows], CLASSES)
    return paired_table(prep_b, prep_c, n_boot=50, random_state=seed, rank=False)[0]


def test_paired_slices_equal_each_slice_prepared_and_bootstrapped_alone():
    y, pb = _data(4)
    _, pc = _data(5)
    ids = np.arange(y.size).astype(str)
    b, c = PredictionSet(ids, y, pb, CLASSES), PredictionSet(ids, y, pc, CLASSES)
    region = np.asarray(["north", "south", "east"])[np.arange(y.size) % 3]
    slices = pd.DataFrame({"item_id": ids, "region": region})
    got = slice_paired(b, c, slices, metrics=["accuracy", "macro_f1"], n_boot=50, random_state=9)
    # the same ids sorted as align_pair sorts them, the same child seeds in slice order
    order = np.argsort(ids, kind="stable")
    b, c, region = b.take(order), c.take(order), region[order]
    root = np.random.SeedSequence(9)
    for value in sorted(set(region)):
        want = _slice_alone(b, c, np.flatnonzero(region == value), root.spawn(1)[0]).set_index("metric")
        part = got[got["slice_value"] == value].set_index("metric")
        for metric in ("accuracy", "macro_f1"):
            for col in ("base", "candidate", "delta", "ci_low", "ci_high", "p_value"):
                assert part.loc[metric, col] == want.loc[metric, col], (value, metric, col)


def test_ranking_metrics_of_a_block_equal_those_of_its_rows_in_any_chunking(monkeypatch):
    from labelcycle.evaluation import ranking

    y, p = _data(6, n=900)
    prep = prepare_eval(y, p, CLASSES)
    w = np.random.default_rng(7).integers(0, 4, (9, y.size)).astype(np.float32)
    whole = {}
    for size in (2, 4, 9):  # 9 rows in chunks of 2 (the last single row joins the chunk before), 4, 9
        assert all(s.stop - s.start > 1 for s in ranking._row_chunks(9, size))
        monkeypatch.setattr(ranking, "RANK_ROWS", size)
        got = weighted_metrics(prep, w)
        for name, v in got.items():
            if name in whole:
                assert np.array_equal(whole[name], v, equal_nan=True), (size, name)
            whole[name] = v
    assert ranking._row_chunks(1, 4) == [slice(0, 1)]
    assert ranking._row_chunks(5, 4) == [slice(0, 5)]
