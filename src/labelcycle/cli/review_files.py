"""What `review export` writes and `review import` reads: sheet formats, Label Studio tasks and exports.

:func:`review_judgements` is the one reader of a returned review file (a filled-in sheet or a Label Studio
JSON export) into an annotations table; `review import` adds its result as a raw batch.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from labelcycle import catalog, schema
from labelcycle.errors import ConfigError, InputFileError, StateError

#: sheet formats people open in spreadsheet programs: their text cells are made formula-safe
SPREADSHEET_FORMATS = ("csv", "tsv")
SHEET_FORMATS = ("csv", "tsv", "parquet", "jsonl")
#: ``review export --format``: Label Studio tasks JSON (``review import`` reads its JSON export back)
LABEL_STUDIO = "label-studio"


def export_format(out: Path, chosen: str | None) -> str:
    """The format of ``review export``: ``--format``, else ``label-studio`` for a .json, else the extension's."""
    from labelcycle.readers import detect_format

    if chosen == LABEL_STUDIO or (chosen is None and out.suffix.lower() == ".json"):
        return LABEL_STUDIO
    fmt, _ = detect_format(out)
    if chosen is not None and chosen != fmt:
        raise ConfigError(f"--format {chosen} does not match -o {out} ({fmt}); name the file *.{chosen}")
    return fmt


def write_label_studio(cat, sheet: pd.DataFrame, items, out: Path, config_file: Path | None) -> None:
    """Write ``sheet`` as Label Studio tasks to ``out`` and the labeling config to ``config_file`` (or print it)."""
    import json

    from labelcycle import labelstudio
    from labelcycle.catalog import AggregateReport
    from labelcycle.features.roles import infer_roles
    from labelcycle.params import load

    params = load(cat.root)
    consensus = pd.read_parquet(cat.path(catalog.LABELS_RAW))
    classes = params.classes or [
        c.removeprefix(schema.PROBA_PREFIX) for c in consensus if c.startswith(schema.PROBA_PREFIX)
    ]
    text = list(infer_roles(items, params.features).text) if items is not None and items.shape[1] > 1 else []
    agg = cat.report(AggregateReport)
    version = "labelcycle consensus"  # the consensus method and the version of the labels it made
    if agg is not None:
        version = f"labelcycle {agg.method} consensus, labels_raw {str(agg.labels_raw_digest)[:12]}"
    tasks = labelstudio.tasks_from_sheet(
        sheet, classes, text_columns=text, probabilities=consensus, model_version=version
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    config = labelstudio.label_config(classes, text)
    if config_file is not None:
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(config, encoding="utf-8")
    click.echo(
        f"review export: {len(tasks)} Label Studio tasks -> {out} (suggestions: {version}); create "
        f"a project with the labeling config {f'in {config_file}' if config_file else 'below'}, import the "
        "tasks, annotate, export as JSON, then `labelcycle review import EXPORT.json`"
    )
    if config_file is None:
        click.echo(config, nl=False)


def review_judgements(batch_file: Path, root: Path, reviewer: str | None) -> tuple[pd.DataFrame, str]:
    """The judgements in a returned review file (a filled-in sheet, or a Label Studio JSON export) as an
    annotations table, and a note on what was left out; what `review import` adds as a batch.

    Raises:
        InputError: the file cannot be read, or holds invalid rows or annotations (each named).
        StateError: the project has no ingested annotations.
    """
    from labelcycle import labelstudio
    from labelcycle.catalog import Catalog
    from labelcycle.detection.review import parse_review
    from labelcycle.params import load
    from labelcycle.readers import detect_format, read_table
    from labelcycle.spreadsheet import unescape_frame

    head = b""
    if batch_file.is_file():
        with batch_file.open("rb") as f:
            head = f.read(64)
    is_export = labelstudio.is_export(head, batch_file.suffix)
    if not is_export:
        sheet = read_table(batch_file, "items")
        if detect_format(batch_file)[0] in SPREADSHEET_FORMATS:
            sheet = unescape_frame(sheet)
    elif not batch_file.is_file():
        raise InputFileError(f"{batch_file}: no such file; give the path of the Label Studio JSON export")
    labels = load(root).classes
    ann_path = Catalog(root).path(catalog.ANNOTATIONS)
    if not ann_path.exists():
        raise StateError(f"{ann_path}: missing; run `dvc repro ingest` before importing reviews")
    known = pd.read_parquet(ann_path, columns=[schema.ITEM_ID])[schema.ITEM_ID]
    if not is_export:
        reviewed, skipped = parse_review(
            sheet, labels, known, source=str(batch_file), default_reviewer=reviewer
        )
        return reviewed, f"{skipped} rows left blank"
    export = labelstudio.load_export(batch_file.read_bytes(), str(batch_file))
    reviewed, rejected = labelstudio.judgements_from_export(
        export, labels, known, default_reviewer=reviewer, imported=imported_reviews(root)
    )
    aside = labelstudio.check_rejected(reviewed, rejected, str(batch_file))
    return reviewed, f"Label Studio export of {len(export)} tasks; set aside: {aside or 'none'}"


def imported_reviews(root: Path) -> pd.DataFrame:
    """Every judgement of the review batches in the raw store (ingested by `dvc repro` or not yet)."""
    from labelcycle.versioning import raw

    tables = []
    for batch in raw.list_batches(root):
        path = batch.file("annotations")
        if batch.origin.get("kind") == "review" and path is not None and path.is_file():
            tables.append(pd.read_csv(path, dtype=str, keep_default_na=False))
    cols = [schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL, schema.CREATED_AT]
    tables = [t.reindex(columns=cols, fill_value="") for t in tables]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols)
