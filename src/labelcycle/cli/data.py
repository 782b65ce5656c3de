"""Data commands: ``demo``, ``ingest``, ``verify``, ``aggregate``, ``predict``."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from labelcycle import catalog, schema
from labelcycle.cli.options import (
    add_raw_batch,
    colmap,
    column_options,
    input_limits,
    item_col_option,
    labels_option,
    max_input_size_option,
    na_values_option,
    path_option,
    repo_option,
    stage_defaults,
)
from labelcycle.errors import LabelcycleError, WorkspaceError


@click.command()
@path_option("--out", "out_dir", required=True, help="Folder to write into.")
@click.option("--items", "n_items", type=click.IntRange(min=10), default=22_000, show_default=True)
@click.option("--annotators", "n_annotators", type=click.IntRange(min=6), default=120, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out_dir: Path, n_items: int, n_annotators: int, seed: int) -> None:
    """Write a synthetic ads-moderation data set with known truth.

    OUT/annotations.csv, OUT/items.csv and OUT/gold.csv are what a vendor would deliver; OUT/truth/
    holds the hidden truth for benchmarks and tests (the pipeline never reads it).
    """
    from labelcycle.demo import generate
    from labelcycle.readers import write_table

    data = generate(n_items=n_items, n_annotators=n_annotators, seed=seed)
    truth = out_dir / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    write_table(data.annotations, out_dir / "annotations.csv")
    write_table(data.items, out_dir / "items.csv")
    write_table(data.gold, out_dir / "gold.csv")
    data.truth_items.to_parquet(truth / "items.parquet", index=False)
    data.truth_annotators.to_parquet(truth / "annotators.parquet", index=False)
    data.truth_annotations.to_parquet(truth / "annotations.parquet", index=False)
    click.echo(
        f"demo: {len(data.items)} items, {len(data.annotations)} annotations by {n_annotators} annotators, "
        f"{len(data.gold)} gold items -> {out_dir} (truth in {truth})"
    )


@click.command()
@path_option("--annotations", required=True, help="Annotations file.")
@path_option("--items", default=None, help="Items (features) file.")
@path_option("--gold", default=None, help="Gold labels file.")
@column_options
@click.option("--gold-label-col", default=None, help="The gold file's name for the label column.")
@click.option(
    "--no-header",
    "names",
    default=None,
    metavar="COLS",
    help="The annotations file has no header; its columns in order, e.g. 'annotator_id,item_id,label'.",
)
@na_values_option
@max_input_size_option
@repo_option()
def ingest(
    annotations,
    items,
    gold,
    item_col,
    annotator_col,
    label_col,
    gold_label_col,
    names,
    na_values,
    max_input_size,
    repo,
) -> None:
    """Validate a delivery and add it under data/raw/ as a new content-addressed batch (tracked by DVC).

    File-level faults stop here with a message; rows that fail validation are reported here and
    quarantined with a reason by the pipeline's ingest stage. Re-ingesting the same files is a no-op,
    and so is a second ingest of the same files running at the same time.

    Only an empty cell is a missing value: NA, none, null, N/A and nan are read as text. Declare the
    words a delivery uses for "no value" with --na-values; they are recorded with the batch, so the
    pipeline reads it the same way. Compressed files that expand too far are refused (--max-input-size).
    """
    from labelcycle.params import load
    from labelcycle.validation import validate
    from labelcycle.versioning import dvc, raw

    limits = input_limits(max_input_size)
    root = dvc.find_root(repo)
    labels = load(root).classes
    files = [
        raw.BatchFile(
            "annotations", annotations, colmap(item_col, annotator_col, label_col, names, na_values)
        )
    ]
    if items is not None:
        files.append(raw.BatchFile("items", items, colmap(item_col, None, None, None, na_values)))
    if gold is not None:
        files.append(
            raw.BatchFile("gold", gold, colmap(item_col, None, gold_label_col or label_col, None, na_values))
        )
    tables = raw.read_batch_files(files, limits)
    result = validate(tables["annotations"], labels, tables.get("items"), tables.get("gold"))
    for name, c in result.counts.items():
        reasons = c.reasons_text()
        click.echo(
            f"  {name}: {c.read} rows, {c.kept} valid, {c.merged} merged repeats, "
            f"{c.quarantined} to quarantine" + (f" ({reasons})" if reasons else "")
        )
    result.require_annotations(annotations, f"the label set in {catalog.PARAMS} (ingest.labels)")
    batch, new = add_raw_batch(root, files, {k: len(v) for k, v in tables.items()}, "labelcycle ingest")
    if not new:
        click.echo(f"ingest: batch {batch.digest} is already in {catalog.RAW} (same content); nothing to do")
        return
    click.echo(
        f"ingest: added batch {batch.digest} -> {batch.path.relative_to(root)}; tracked by DVC "
        f"({catalog.RAW_DVC}). Run `dvc repro` to curate and retrain."
    )


@click.command()
@repo_option()
def verify(repo) -> None:
    """Check every raw batch against its manifest (sha256 of each file, nothing missing or added).

    Exits 0 when the store is intact; otherwise lists each batch and file that differs and exits 1.
    The ingest stage runs the same check on every run and refuses a changed batch.
    """
    from labelcycle.versioning import dvc, raw

    root = dvc.find_root(repo)
    problems = raw.verify_store(root)
    if not problems:
        batches = raw.list_batches(root)
        n_files = sum(len(b.manifest.get("files") or {}) for b in batches)
        click.echo(
            f"verify: {len(batches)} raw batches ({n_files} files) match their manifests in {catalog.RAW}"
        )
        return
    for problem in problems:
        click.echo(f"  {problem}")
    differing = {p.batch for p in problems}
    entries = {p.name for p in (root / raw.RAW_DIR).iterdir() if not p.name.startswith(".")} | differing
    raise WorkspaceError(
        f"{len(differing)} of {len(entries)} raw batches differ from their manifests (listed above); "
        f"{raw.RESTORE_HINT}"
    )


@click.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@click.option(
    "--method",
    default=None,
    help="Aggregation method (default: the project's aggregate.method, else the recommended one).",
)
@path_option("-o", "--out", required=True, help="Output file; CSV or Parquet by extension.")
@path_option(
    "--warm-start",
    "warm_start",
    default=None,
    help="Start EM from parameters saved by --save-fit (majority vote and the Dawid-Skene models).",
)
@path_option(
    "--save-fit",
    "save_fit",
    default=None,
    help="Save the fitted parameters (annotator confusions, class priors) for a later --warm-start.",
)
@labels_option
@column_options
def aggregate(
    annotations_file, method, out, warm_start, save_fit, label_set, item_col, annotator_col, label_col
) -> None:
    """One label per item: item_id, label, confidence and a probability per class.

    ANNOTATIONS is a file (CSV, TSV, Parquet, JSONL) or a directory of Parquet files (one data set).
    Parquet input with majority vote or a Dawid-Skene model is aggregated out of core (memory bounded
    by a part of the rows); its output lists the items part by part (sorted within each part).
    """
    from labelcycle.aggregation import make_aggregator
    from labelcycle.readers import read_table, write_table

    here = stage_defaults()
    method = method or here.params.aggregate.method
    model = make_aggregator(method, classes=here.labels(label_set))
    if _streams(annotations_file, model) or warm_start or save_fit:
        from labelcycle.cli.aggregate_parts import aggregate_out_of_core

        columns = colmap(item_col, annotator_col, label_col)
        n_items, n_rows = aggregate_out_of_core(annotations_file, model, out, columns, warm_start, save_fit)
        click.echo(f"aggregate: {n_items} items from {n_rows} annotations by {method} -> {out}")
        return
    df = read_table(annotations_file, "annotations", colmap(item_col, annotator_col, label_col))
    df = df[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]]
    agg = model.fit(df)
    write_table(agg.result_frame(), out)
    click.echo(f"aggregate: {len(agg.labels_)} items from {len(df)} annotations by {method} -> {out}")


def _streams(path: Path, model) -> bool:
    from labelcycle.aggregation import streaming

    return streaming.streams(model) and (Path(path).is_dir() or Path(path).suffix.lower() == ".parquet")


@click.command()
@click.argument("items_file", metavar="ITEMS", type=click.Path(path_type=Path))
@path_option("-o", "--out", required=True, help="Output file (CSV/Parquet/...).")
@click.option(
    "--model",
    "model_uri",
    default=None,
    help=f"MLflow model URI (e.g. models:/labelcycle-quality@production); default: {catalog.QUALITY_MODEL}.",
)
@item_col_option
def predict(items_file, out, model_uri, item_col) -> None:
    """Class and per-class probabilities for each item."""
    from labelcycle.catalog import Catalog
    from labelcycle.readers import SOURCE_ROW, read_table, write_table
    from labelcycle.validation import coerce_feature
    from labelcycle.versioning.dvc import find_root

    items = read_table(items_file, "items", colmap(item_col, None, None)).drop(columns=[SOURCE_ROW])
    for col in schema.feature_columns(list(items.columns)):
        items[col] = coerce_feature(items[col])
    if model_uri:
        from labelcycle.tracking.models import predict_with
        from labelcycle.tracking.runs import configure

        with contextlib.suppress(LabelcycleError):  # outside a project: MLFLOW_TRACKING_URI alone decides
            configure(find_root())
        result = predict_with(model_uri, items)
    else:
        from labelcycle.quality.model import QualityModel

        result = QualityModel.load(Catalog(find_root()).path(catalog.QUALITY_MODEL)).predict(items)
    write_table(result, out)
    click.echo(f"predict: {len(result)} items -> {out} ({result[schema.LABEL].value_counts().to_dict()})")


COMMANDS = [demo, ingest, verify, aggregate, predict]
