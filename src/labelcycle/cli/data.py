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
    gold_colmap,
    gold_column_options,
    input_limits,
    item_col_option,
    labels_option,
    labels_seen,
    max_input_size_option,
    na_values_option,
    path_option,
    repo_option,
    stage_defaults,
)
from labelcycle.errors import ConfigError, LabelcycleError, ValidationError, WorkspaceError
from labelcycle.gold import FROM_CROWD
from labelcycle.params.edit import write_value


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
@path_option(
    "--annotations",
    default=None,
    help="Annotations file, or a directory of Parquet files (optional when --gold or --items is given).",
)
@path_option("--items", default=None, help="Items (features) file or directory of Parquet files.")
@path_option("--gold", default=None, help="Gold labels file or directory (alone: a gold-only batch).")
@column_options
@gold_column_options
@click.option(
    "--gold-from-crowd",
    is_flag=True,
    default=False,
    help="The gold was derived from these annotators' own labels (e.g. their majority vote): every report "
    "then warns that metrics on it are circular.",
)
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
    gold_item_col,
    gold_label_col,
    gold_from_crowd,
    names,
    na_values,
    max_input_size,
    repo,
) -> None:
    """Validate a delivery and add it under data/raw/ as a new content-addressed batch (tracked by DVC).

    A delivery is any of --annotations, --items and --gold (gold alone is a gold-only batch). The gold
    file's columns are mapped with --gold-item-col/--gold-label-col, never with the annotations' options.
    File-level faults stop here with a message; rows that fail validation are reported here and
    quarantined with a reason by the pipeline's ingest stage. Re-ingesting the same files is a no-op,
    and so is a second ingest of the same files running at the same time.

    When params.yaml lists no labels (ingest.labels: []), the labels seen in the annotations and gold
    are written there and printed; reorder them there when they form an ordinal scale.

    Only an empty cell is a missing value: NA, none, null, N/A and nan are read as text. Declare the
    words a delivery uses for "no value" with --na-values; they are recorded with the batch, so the
    pipeline reads it the same way. Compressed files that expand too far are refused (--max-input-size).

    Each of them may be a directory of Parquet files read as one data set (e.g. a partitioned export):
    it is stored as a folder in the batch, every file listed with its checksum. Ingest checks each
    file's schema, counts rows from the file footers, and passes over each file once, a row group at a
    time, for the size limit (which holds for each file) and the label column's values; the ingest stage
    validates the rows.
    """
    from labelcycle.params import load
    from labelcycle.versioning import dvc, raw

    if annotations is None and gold is None and items is None:
        raise ConfigError("nothing to ingest: give --annotations FILE, --gold FILE or --items FILE")
    if gold_from_crowd and gold is None:
        raise ConfigError("--gold-from-crowd describes a gold file: give it with --gold FILE")
    limits = input_limits(max_input_size)
    root = dvc.find_root(repo)
    labels = load(root).classes
    files = []
    if annotations is not None:
        files.append(
            raw.BatchFile(
                "annotations", annotations, colmap(item_col, annotator_col, label_col, names, na_values)
            )
        )
    if items is not None:
        files.append(raw.BatchFile("items", items, colmap(item_col, None, None, None, na_values)))
    if gold is not None:
        files.append(raw.BatchFile("gold", gold, gold_colmap(gold_item_col, gold_label_col, na_values)))
    tables, folders = _read_delivery(files, limits)
    discovered = not labels
    if discovered:
        labels = _discover_labels(tables, folders)
    _check_delivery(tables, folders, labels, annotations, gold, discovered)
    origin = {FROM_CROWD: True} if gold_from_crowd else None
    counts = {k: len(v) for k, v in tables.items()} | {k: f.rows for k, f in folders.items()}
    batch, new = add_raw_batch(root, files, counts, "labelcycle ingest", origin)
    if discovered:
        write_value(root / catalog.PARAMS, "ingest", "labels", labels)
        click.echo(
            f"ingest: discovered the labels {labels} and wrote them to {catalog.PARAMS} (ingest.labels). "
            "If they form an ordinal scale (e.g. severity), reorder them there from least to most severe; "
            "a label outside this set is quarantined from now on"
        )
    if not new:
        click.echo(f"ingest: batch {batch.digest} is already in {catalog.RAW} (same content); nothing to do")
        return
    click.echo(
        f"ingest: added batch {batch.digest} -> {batch.path.relative_to(root)}; tracked by DVC "
        f"({catalog.RAW_DVC}). Run `dvc repro` to curate and retrain."
    )


def _read_delivery(files: list, limits) -> tuple[dict, dict]:
    """The delivery's files read whole (file-level validation: raises on unreadable files), and its
    directories of Parquet files checked without loading them (:mod:`labelcycle.parquet_dir`).

    Raises:
        ConfigError: --no-header given for a directory of Parquet files.
    """
    from labelcycle.compressed import InputLimits
    from labelcycle.parquet_dir import inspect_parquet_dir
    from labelcycle.versioning import raw

    folders = {}
    for f in files:
        if not f.path.is_dir():
            continue
        if f.columns.names:
            raise ConfigError(
                f"{f.path}: is a directory of Parquet files, whose columns have names; --no-header is for a "
                "text file without a header row: drop it (map columns with --item-col/--annotator-col/--label-col)"
            )
        held = limits or InputLimits.from_env()
        folders[f.role] = inspect_parquet_dir(f.path, f.role, f.columns, held, f.role != "items")
    tables = raw.read_batch_files([f for f in files if f.role not in folders], limits)
    return tables, folders


def _discover_labels(tables: dict, folders: dict) -> list[str]:
    """The labels seen in a delivery's annotations and gold (sorted), for a project that lists none.

    Raises:
        ConfigError: fewer than two labels were seen.
    """
    seen = set(labels_seen(tables.get("annotations"), tables.get("gold")))
    labels = sorted(seen.union(*(f.labels_seen() for f in folders.values())))
    if len(labels) < 2:
        raise ConfigError(
            f"{catalog.PARAMS} lists no labels (ingest.labels: []) and this delivery shows {labels}, fewer than "
            "two; list the label set there, e.g. `labels: [ok, bad]`, or check --label-col/--gold-label-col"
        )
    return labels


def _check_delivery(
    tables: dict, folders: dict, labels: list[str], annotations, gold, discovered: bool
) -> None:
    """Validate the delivery as the ingest stage will and print its counts; stop when a file has no
    valid row (the message names the options that fix it). A directory's rows are counted, and its labels
    checked, but the rows themselves are validated by the ingest stage."""
    import pandas as pd

    from labelcycle.validation import validate

    ann = tables.get("annotations")
    if ann is None:
        ann = pd.DataFrame({c: pd.Series(dtype=str) for c in schema.ANNOTATIONS.required})
    result = validate(ann, labels, tables.get("items"), tables.get("gold"))
    for name, c in result.counts.items():
        if name not in tables:
            continue
        reasons = c.reasons_text()
        extra = f"{c.repeats} repeats (kept for self-agreement), " if name == "annotations" else ""
        click.echo(
            f"  {name}: {c.read} rows, {c.kept} valid, {c.merged} merged, {extra}"
            f"{c.quarantined} to quarantine" + (f" ({reasons})" if reasons else "")
        )
    where = "the labels seen" if discovered else f"the label set in {catalog.PARAMS} (ingest.labels)"
    _check_folders(folders, labels, where)
    if "annotations" in tables:
        result.require_annotations(annotations, f"{where}, --item-col/--annotator-col/--label-col")
    if "gold" in tables and result.gold is not None and result.gold.empty:
        c = result.counts["gold"]
        raise ValidationError(
            f"{gold}: none of its {c.read} gold rows is valid ({c.reasons_text()}); check {where} and the "
            "gold file's column mapping (--gold-item-col/--gold-label-col)"
        )


def _check_folders(folders: dict, labels: list[str], where: str) -> None:
    """Print each directory's rows (and those with a known label); stop when none has a known label."""
    for role, folder in folders.items():
        known = folder.rows_with_label_in(labels) if role != "items" else None
        left = ", ".join(str(p.relative_to(folder.path)) for p in folder.skipped[:3])
        click.echo(
            f"  {role}: {folder.rows} rows in {len(folder.files)} Parquet file(s)"
            + (f", {known} with a known label" if known is not None else "")
            + "; the ingest stage validates each row"
            + (f" (left out {len(folder.skipped)} metadata file(s): {left})" if folder.skipped else "")
        )
        if known == 0:
            options = "--gold-label-col" if role == "gold" else "--label-col"
            raise ValidationError(
                f"{folder.path}: none of its {folder.rows} {role} rows has a label in {where}; check that "
                f"and the column mapping ({options})"
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
        n_files = sum(len(b.files(role)) for b in batches for role in raw.ROLES)
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
    from labelcycle.aggregation.base import ties_to_last
    from labelcycle.readers import read_table, write_table

    here = stage_defaults()
    method = method or here.params.aggregate.method
    ingest = here.params.ingest  # the project's tie-break (ingest.ordinal, ingest.tie_break), as the stage
    ties = ties_to_last(ingest.tie_break, ingest.ordinal)
    model = make_aggregator(method, classes=here.labels(label_set), ties_to_last=ties)
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
