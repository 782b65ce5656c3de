"""Out-of-core encoding of a Parquet data set into coded parts, and the fit over them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.conftest import crowd_table

from labelcycle.aggregation import make_aggregator, streaming
from labelcycle.aggregation.encode_parts import encode_dataset, string_hash
from labelcycle.errors import SchemaError


def _files(tmp_path, ann: pd.DataFrame, n: int = 3) -> list:
    (tmp_path / "in").mkdir(exist_ok=True)
    files = []
    for i, rows in enumerate(np.array_split(np.arange(len(ann)), n)):
        files.append(tmp_path / "in" / f"part-{i}.parquet")
        ann.iloc[rows].to_parquet(files[-1], index=False)
    return files


def test_fit_over_encoded_data_set_equals_the_in_memory_fit_whatever_the_row_order(tmp_path):
    ann = crowd_table(4000, 50, seed=4)
    expected = make_aggregator("hierarchical_dawid_skene").fit(ann).result_frame().set_index("item_id")
    shuffled = ann.sample(frac=1.0, random_state=1)
    encode_dataset(_files(tmp_path, shuffled), tmp_path / "codes", rows_per_part=2500)
    source = streaming.ParquetParts(tmp_path / "codes")
    assert len(source.refs()) == 5 and source.layout.n_rows == len(ann)
    fit = streaming.fit(source, make_aggregator("hierarchical_dawid_skene"))
    got = streaming.result(source, fit).set_index("item_id").loc[expected.index]
    assert got["label"].equals(expected["label"])
    np.testing.assert_allclose(
        got[expected.columns[1:]].to_numpy(float), expected.iloc[:, 1:].to_numpy(float), atol=1e-9
    )
    assert list(fit.annotators) == sorted(ann["annotator_id"].unique())


def test_every_row_of_an_item_lands_in_one_part(tmp_path):
    ann = crowd_table(3000, 30, seed=5)
    encode_dataset(_files(tmp_path, ann), tmp_path / "codes", rows_per_part=1000)
    source = streaming.ParquetParts(tmp_path / "codes")
    seen = [streaming._item_ids(ref, source.load(ref), None) for ref in source.refs()]
    ids = np.concatenate(seen)
    assert len(ids) == len(set(ids)) == ann["item_id"].nunique()


def test_a_label_outside_the_label_set_is_a_schema_error_naming_it(tmp_path):
    ann = crowd_table(100, 5)
    with pytest.raises(SchemaError, match="spam"):
        encode_dataset(_files(tmp_path, ann.assign(label="spam"), 1), tmp_path / "codes", classes=("ok",))


def test_string_hash_depends_on_the_bytes_and_their_positions_only():
    a = string_hash(pa.array(["i12", "i21", "", "i12", None]))
    b = string_hash(pa.chunked_array([pa.array(["x", "i12"])]))
    assert a[0] == a[3] == b[1] and a[0] != a[1] and a[2] == a[4]


def test_cli_aggregates_a_parquet_directory_out_of_core_and_warm_starts_from_its_saved_fit(tmp_path):
    from tests.conftest import run_cli  # noqa: PLC0415

    ann = crowd_table(2000, 30, seed=6)
    _files(tmp_path, ann)
    labels = "ok,misleading,prohibited"
    res = run_cli(
        tmp_path, "aggregate", "in", "-o", "out.csv", "--labels", labels, "--save-fit", "fit.parquet"
    )
    assert res.returncode == 0, res.stderr
    expected = make_aggregator("hierarchical_dawid_skene", classes=labels.split(",")).fit(ann).result_frame()
    got = pd.read_csv(tmp_path / "out.csv", dtype={"item_id": str, "label": str}, keep_default_na=False)
    assert list(got.columns) == list(expected.columns)
    merged = expected.merge(got, on="item_id", suffixes=("", "_cli"))
    assert len(merged) == len(expected) == len(got) and merged["label"].equals(merged["label_cli"])
    res = run_cli(
        tmp_path, "aggregate", "in", "-o", "warm.parquet", "--labels", labels, "--warm-start", "fit.parquet"
    )
    assert res.returncode == 0, res.stderr
    warm = pd.read_parquet(tmp_path / "warm.parquet")
    assert (warm.set_index("item_id")["label"] == got.set_index("item_id")["label"]).mean() >= 0.99
