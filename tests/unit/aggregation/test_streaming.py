"""The streaming (out-of-core) EM equals the in-memory fit; warm starts; stored parameters; Dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.conftest import crowd_table

from labelcycle.aggregation import fitted as stored
from labelcycle.aggregation import make_aggregator, streaming
from labelcycle.aggregation.base import encode
from labelcycle.curation import curated_labels


@pytest.mark.parametrize("method", ["hierarchical_dawid_skene", "dawid_skene", "majority_vote"])
def test_streaming_fit_over_parquet_parts_equals_the_in_memory_fit(tmp_path, method):
    ann = crowd_table()
    aggregator = make_aggregator(method).fit(ann)
    expected = curated_labels(ann, aggregator)
    streaming.write_parts(encode(ann), tmp_path / "codes", rows_per_part=1000)
    source = streaming.ParquetParts(tmp_path / "codes")
    assert len(source.refs()) >= 9  # many parts, each item in exactly one
    fit = streaming.fit(source, make_aggregator(method))
    got = streaming.result(source, fit)
    assert got[["item_id", "label", "n_annotations"]].equals(expected[["item_id", "label", "n_annotations"]])
    numeric = [c for c in expected.columns if c not in ("item_id", "label", "n_annotations")]
    np.testing.assert_allclose(got[numeric].to_numpy(float), expected[numeric].to_numpy(float), atol=1e-9)
    skills = streaming.skills(source, fit, got)
    np.testing.assert_allclose(skills.to_numpy(), aggregator.skills_.to_numpy(), atol=1e-9)
    if method != "majority_vote":
        assert fit.n_iter == aggregator.n_iter_


def test_warm_start_on_a_new_batch_agrees_with_the_cold_fit_in_fewer_steps(tmp_path):
    # ~1,000 labels per annotator; on a few hundred per annotator the EM stopping rule (tol on the log
    # likelihood) alone moves 0.1-0.3% of the labels, warm or cold (benchmarks/results/scale.md)
    week1 = crowd_table(20000, 60, seed=1)
    week2 = crowd_table(1000, 65, seed=2).assign(item_id=lambda d: "new" + d["item_id"])
    both = pd.concat([week1, week2], ignore_index=True)
    model = make_aggregator("hierarchical_dawid_skene")
    first = streaming.fit(streaming.Parts.from_encoded(encode(week1)), model)
    stored.save(first, tmp_path / "fit.parquet")
    previous = stored.load(tmp_path / "fit.parquet")
    source = streaming.Parts.from_encoded(encode(both), rows_per_part=20000)
    cold = streaming.fit(source, model)
    warm = streaming.fit(source, model, init=previous)
    assert warm.warm_started and not cold.warm_started
    assert warm.n_iter < cold.n_iter
    same = streaming.result(source, warm)["label"].eq(streaming.result(source, cold)["label"]).mean()
    assert same >= 0.999


def test_stored_parameters_round_trip_exactly(tmp_path):
    ann = crowd_table(500, 20)
    fit = streaming.fit(streaming.Parts.from_encoded(encode(ann)), make_aggregator("dawid_skene"))
    stored.save(fit, tmp_path / "fit.parquet")
    back = stored.load(tmp_path / "fit.parquet")
    assert back.method == "dawid_skene" and back.classes == fit.classes and back.n_iter == fit.n_iter
    assert list(back.annotators) == list(fit.annotators)
    np.testing.assert_array_equal(back.confusions, fit.confusions)
    np.testing.assert_array_equal(back.priors, fit.priors)


def test_a_file_that_is_not_a_stored_fit_is_a_state_error_naming_the_param(tmp_path):
    from labelcycle.errors import StateError

    (tmp_path / "fit.parquet").write_text("not parquet")
    with pytest.raises(StateError, match="aggregate.warm_start: false"):
        stored.load(tmp_path / "fit.parquet")


def test_em_on_a_dask_local_cluster_equals_the_local_fit_within_1e_6(tmp_path):
    pytest.importorskip("distributed")
    from labelcycle.aggregation.dask_em import client_mapper, dask_client

    ann = crowd_table(2000, 40, seed=3)
    streaming.write_parts(encode(ann), tmp_path / "codes", rows_per_part=1500)
    source = streaming.ParquetParts(tmp_path / "codes")
    model = make_aggregator("hierarchical_dawid_skene")
    local = streaming.fit(source, model)
    expected = streaming.result(source, local)
    with dask_client(None) as client:
        mapper = client_mapper(client)
        remote = streaming.fit(source, model, mapper=mapper)
        got = streaming.result(source, remote, mapper)
    assert got["label"].equals(expected["label"]) and remote.n_iter == local.n_iter
    np.testing.assert_allclose(remote.confusions, local.confusions, atol=1e-6)
    probas = [c for c in got.columns if c.startswith("proba_")]
    np.testing.assert_allclose(got[probas].to_numpy(), expected[probas].to_numpy(), atol=1e-6)
