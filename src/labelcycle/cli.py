"""The ``labelcycle`` command line (the only click module).

Every :class:`~labelcycle.errors.LabelcycleError` becomes a one-line ``error:`` message on stderr and
a non-zero exit code; no traceback reaches the user for a fault they caused.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import pandas as pd

from labelcycle import schema
from labelcycle.errors import InputFileError, LabelcycleError

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except LabelcycleError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


def _column_options(f):
    f = click.option("--label-col", default=None, help="The file's name for the label column.")(f)
    f = click.option("--annotator-col", default=None, help="The file's name for the annotator id column.")(f)
    f = click.option("--item-col", default=None, help="The file's name for the item id column.")(f)
    return f


def _colmap(item_col, annotator_col, label_col, names=None):
    from labelcycle.readers import ColumnMap

    return ColumnMap(item_col=item_col, annotator_col=annotator_col, label_col=label_col,
                     names=tuple(n.strip() for n in names.split(",")) if names else None)


def write_table(df: pd.DataFrame, path: Path) -> None:
    """Write CSV, TSV, Parquet or JSONL by the extension of ``path``."""
    from labelcycle.readers import detect_format

    fmt, compression = detect_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True, compression=compression, date_format="iso")
    else:
        df.to_csv(path, index=False, sep="," if fmt == "csv" else "\t", compression=compression)


@click.group(cls=_Group)
@click.version_option(package_name="labelcycle")
def main() -> None:
    """labelcycle: when we change our labelled data, do our models get better?"""


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder to write into.")
@click.option("--items", "n_items", type=click.IntRange(min=10), default=22_000, show_default=True)
@click.option("--annotators", "n_annotators", type=click.IntRange(min=6), default=120, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out_dir: Path, n_items: int, n_annotators: int, seed: int) -> None:
    """Write a synthetic ads-moderation data set with known truth.

    OUT/annotations.csv, OUT/items.csv and OUT/gold.csv are what a vendor would deliver; OUT/truth/
    holds the hidden truth for benchmarks and tests (the pipeline never reads it).
    """
    from labelcycle.demo import generate

    data = generate(n_items=n_items, n_annotators=n_annotators, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(exist_ok=True)
    write_table(data.annotations, out_dir / "annotations.csv")
    write_table(data.items, out_dir / "items.csv")
    write_table(data.gold, out_dir / "gold.csv")
    data.truth_items.to_parquet(out_dir / "truth" / "items.parquet", index=False)
    data.truth_annotators.to_parquet(out_dir / "truth" / "annotators.parquet", index=False)
    data.truth_annotations.to_parquet(out_dir / "truth" / "annotations.parquet", index=False)
    click.echo(
        f"demo: {len(data.items)} items, {len(data.annotations)} annotations by {n_annotators} annotators, "
        f"{len(data.gold)} gold items -> {out_dir} (truth in {out_dir / 'truth'})"
    )


@main.command()
@click.option("--annotations", type=click.Path(path_type=Path), required=True, help="Annotations file.")
@click.option("--items", type=click.Path(path_type=Path), default=None, help="Items (features) file.")
@click.option("--gold", type=click.Path(path_type=Path), default=None, help="Gold labels file.")
@_column_options
@click.option("--gold-label-col", default=None, help="The gold file's name for the label column.")
@click.option("--no-header", "names", default=None, metavar="COLS",
              help="The annotations file has no header; its columns in order, e.g. 'annotator_id,item_id,label'.")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Project folder (default: the one holding the current folder).")
def ingest(annotations, items, gold, item_col, annotator_col, label_col, gold_label_col, names, repo) -> None:
    """Validate a delivery and add it under data/raw/ as a new content-addressed batch (tracked by DVC).

    File-level faults stop here with a message; rows that fail validation are reported here and
    quarantined with a reason by the pipeline's ingest stage. Re-ingesting the same files is a no-op.
    """
    from labelcycle.params import IngestParams, load_params, section
    from labelcycle.validation import validate
    from labelcycle.versioning import dvc, raw

    root = dvc.find_root(repo)
    labels = section(IngestParams, load_params(root / "params.yaml"), "ingest").labels
    files = [raw.BatchFile("annotations", annotations, _colmap(item_col, annotator_col, label_col, names))]
    if items is not None:
        files.append(raw.BatchFile("items", items, _colmap(item_col, None, None)))
    if gold is not None:
        files.append(raw.BatchFile("gold", gold, _colmap(item_col, None, gold_label_col or label_col)))
    tables = raw.read_batch_files(files)
    result = validate(tables["annotations"], labels, tables.get("items"), tables.get("gold"))
    for name, c in result.counts.items():
        reasons = ", ".join(f"{k}: {v}" for k, v in c.reasons.items())
        click.echo(f"  {name}: {c.read} rows, {c.kept} valid, {c.merged} merged repeats, "
                   f"{c.quarantined} to quarantine" + (f" ({reasons})" if reasons else ""))
    if result.annotations.empty:
        raise InputFileError(
            f"{annotations}: none of its {len(tables['annotations'])} rows is valid "
            f"({result.counts['annotations'].reasons}); check the label set in params.yaml (ingest.labels) "
            "and the column mapping"
        )
    batch, new = raw.write_batch(root, files, {k: len(v) for k, v in tables.items()})
    if not new:
        click.echo(f"ingest: batch {batch.digest} is already in data/raw (same content); nothing to do")
        return
    dvc.track(root, raw.RAW_DIR)
    click.echo(f"ingest: added batch {batch.digest} -> {batch.path.relative_to(root)}; tracked by DVC "
               "(data/raw.dvc). Run `dvc repro` to curate and retrain.")


@main.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@click.option("--method", default=None, help="Aggregation method (default: the recommended one).")
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True,
              help="Output file; CSV or Parquet by extension.")
@click.option("--labels", "label_set", default=None, help="Comma-separated label set (default: labels seen).")
@_column_options
def aggregate(annotations_file, method, out, label_set, item_col, annotator_col, label_col) -> None:
    """One label per item: item_id, label, confidence and a probability per class."""
    from labelcycle.aggregation import DEFAULT_METHOD, make_aggregator
    from labelcycle.readers import read_table

    df = read_table(annotations_file, "annotations", _colmap(item_col, annotator_col, label_col))
    df = df[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]]
    classes = [c.strip() for c in label_set.split(",")] if label_set else None
    method = method or DEFAULT_METHOD
    agg = make_aggregator(method, classes=classes).fit(df)
    write_table(agg.result_frame(), out)
    click.echo(f"aggregate: {len(agg.labels_)} items from {len(df)} annotations by {method} -> {out}")


@main.command()
@click.argument("items_file", metavar="ITEMS", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), required=True, help="Output file (CSV/Parquet/...).")
@click.option("--model", "model_uri", default=None,
              help="MLflow model URI (e.g. models:/labelcycle-quality@production); default: models/quality.")
@click.option("--item-col", default=None, help="The file's name for the item id column.")
def predict(items_file, out, model_uri, item_col) -> None:
    """Class and per-class probabilities for each item."""
    from labelcycle.quality.model import QualityModel
    from labelcycle.readers import SOURCE_ROW, read_table
    from labelcycle.validation import coerce_feature

    items = read_table(items_file, "items", _colmap(item_col, None, None)).drop(columns=[SOURCE_ROW])
    for col in schema.feature_columns(list(items.columns)):
        items[col] = coerce_feature(items[col])
    if model_uri:
        from labelcycle.tracking.models import predict_with
        from labelcycle.tracking.runs import configure
        from labelcycle.versioning.dvc import find_root

        try:
            configure(find_root())
        except LabelcycleError:
            pass  # outside a project: MLFLOW_TRACKING_URI alone decides
        result = predict_with(model_uri, items)
    else:
        from labelcycle.versioning.dvc import find_root

        result = QualityModel.load(find_root() / "models" / "quality").predict(items)
    write_table(result, out)
    click.echo(f"predict: {len(result)} items -> {out} ({result[schema.LABEL].value_counts().to_dict()})")


# --- issue 7: promote, status, rollback ---


def _project_root(repo: Path | None) -> Path:
    from labelcycle.versioning.dvc import find_root

    return find_root(repo)


@main.command()
@click.argument("version", required=False)
@click.option("--dry-run", is_flag=True, help="Print the plan (gates, evidence, changes) and change nothing.")
@click.option("--force", is_flag=True, help="Promote although gates failed (needs --reason; recorded as forced).")
@click.option("--reason", default=None, help="Why: recorded in the audit record (required with --force).")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Project folder (default: the one holding the current folder).")
def promote(version, dry_run, force, reason, repo) -> None:
    """Make a release (curated dataset + its models + their evaluation) production, behind evidence gates.

    VERSION defaults to the workspace (HEAD, dvc.lock, reports/); it may be the MLflow run id of an
    evaluate stage, or a git revision. The plan is computed and printed first; it is carried out only
    when every gate passes (or with --force --reason), and never with --dry-run.
    """
    from labelcycle.errors import ConfigError, PromotionRefusedError
    from labelcycle.promotion import render_plan
    from labelcycle.tracking.promote import execute, plan_promotion

    if force and not (reason and reason.strip()):
        raise ConfigError("--force needs --reason TEXT: say why the failing gates may be overridden (it is audited)")
    root = _project_root(repo)
    plan, ctx = plan_promotion(root, version, force=force, reason=reason)
    click.echo(render_plan(plan, dry_run=dry_run))
    if plan.noop:
        return
    if not plan.allowed:
        names = ", ".join(g.name for g in plan.failed)
        raise PromotionRefusedError(f"promotion refused: gate(s) {names} failed; nothing was changed")
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    records = execute(plan, ctx)
    rel = plan.candidate
    click.echo(f"promoted {rel.release_id if rel else ''}" + (" (FORCED)" if plan.failed else "")
               + f"; release record run {records.get('release_record')}, audit record run "
               f"{records.get('audit_record')}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Project folder (default: the one holding the current folder).")
def status(as_json, repo) -> None:
    """The production release: models, dataset version, metrics with intervals, lineage."""
    import json

    from labelcycle.tracking.promote import render_status
    from labelcycle.tracking.promote import status as release_status

    s = release_status(_project_root(repo))
    click.echo(json.dumps(s, indent=2, sort_keys=True, default=str) if as_json else render_status(s))


@main.command()
@click.option("--dry-run", is_flag=True, help="Print what would be restored and change nothing.")
@click.option("--reason", default=None, help="Why: recorded in the audit record.")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Project folder (default: the one holding the current folder).")
def rollback(dry_run, reason, repo) -> None:
    """Restore the previous production release exactly (aliases, model tags, git tags); audited."""
    from labelcycle.promotion import render_plan
    from labelcycle.tracking.promote import execute, plan_rollback

    plan, ctx = plan_rollback(_project_root(repo), reason)
    click.echo(render_plan(plan, dry_run=dry_run))
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    records = execute(plan, ctx)
    click.echo(f"rolled back to {plan.candidate.release_id if plan.candidate else '?'}; audit record run "
               f"{records.get('audit_record')}")


if __name__ == "__main__":  # pragma: no cover
    main()
