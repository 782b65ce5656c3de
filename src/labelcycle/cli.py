"""The ``labelcycle`` command line (the only click module).

Every :class:`~labelcycle.errors.LabelcycleError` becomes a one-line ``error:`` message on stderr and
a non-zero exit code; no traceback reaches the user for a fault they caused.
"""

from __future__ import annotations

import contextlib
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

    return ColumnMap(
        item_col=item_col,
        annotator_col=annotator_col,
        label_col=label_col,
        names=tuple(n.strip() for n in names.split(",")) if names else None,
    )


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
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder to write into."
)
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
@click.option(
    "--no-header",
    "names",
    default=None,
    metavar="COLS",
    help="The annotations file has no header; its columns in order, e.g. 'annotator_id,item_id,label'.",
)
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder (default: the one holding the current folder).",
)
def ingest(annotations, items, gold, item_col, annotator_col, label_col, gold_label_col, names, repo) -> None:
    """Validate a delivery and add it under data/raw/ as a new content-addressed batch (tracked by DVC).

    File-level faults stop here with a message; rows that fail validation are reported here and
    quarantined with a reason by the pipeline's ingest stage. Re-ingesting the same files is a no-op.
    """
    from labelcycle.params import load
    from labelcycle.validation import validate
    from labelcycle.versioning import dvc, raw

    root = dvc.find_root(repo)
    labels = load(root).classes
    files = [raw.BatchFile("annotations", annotations, _colmap(item_col, annotator_col, label_col, names))]
    if items is not None:
        files.append(raw.BatchFile("items", items, _colmap(item_col, None, None)))
    if gold is not None:
        files.append(raw.BatchFile("gold", gold, _colmap(item_col, None, gold_label_col or label_col)))
    tables = raw.read_batch_files(files)
    result = validate(tables["annotations"], labels, tables.get("items"), tables.get("gold"))
    for name, c in result.counts.items():
        reasons = ", ".join(f"{k}: {v}" for k, v in c.reasons.items())
        click.echo(
            f"  {name}: {c.read} rows, {c.kept} valid, {c.merged} merged repeats, "
            f"{c.quarantined} to quarantine" + (f" ({reasons})" if reasons else "")
        )
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
    click.echo(
        f"ingest: added batch {batch.digest} -> {batch.path.relative_to(root)}; tracked by DVC "
        "(data/raw.dvc). Run `dvc repro` to curate and retrain."
    )


@main.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@click.option("--method", default=None, help="Aggregation method (default: the recommended one).")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file; CSV or Parquet by extension.",
)
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
@click.option(
    "-o", "--out", type=click.Path(path_type=Path), required=True, help="Output file (CSV/Parquet/...)."
)
@click.option(
    "--model",
    "model_uri",
    default=None,
    help="MLflow model URI (e.g. models:/labelcycle-quality@production); default: models/quality.",
)
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

        with contextlib.suppress(LabelcycleError):  # outside a project: MLFLOW_TRACKING_URI alone decides
            configure(find_root())
        result = predict_with(model_uri, items)
    else:
        from labelcycle.versioning.dvc import find_root

        result = QualityModel.load(find_root() / "models" / "quality").predict(items)
    write_table(result, out)
    click.echo(f"predict: {len(result)} items -> {out} ({result[schema.LABEL].value_counts().to_dict()})")


# --- issue 3: annotators ---
@main.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@click.option(
    "--items",
    "items_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Items (features) file: its columns become root-cause slices.",
)
@click.option("--gold", "gold_file", type=click.Path(path_type=Path), default=None, help="Gold labels file.")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Annotator table (one row per annotator); CSV or Parquet by extension.",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Self-contained HTML report (opens offline).",
)
@click.option(
    "--method", default=None, help="Aggregation method of the consensus (default: the recommended one)."
)
@click.option("--labels", "label_set", default=None, help="Comma-separated label set (default: labels seen).")
@_column_options
def annotators(
    annotations_file,
    items_file,
    gold_file,
    out,
    report_file,
    method,
    label_set,
    item_col,
    annotator_col,
    label_col,
) -> None:
    """Annotator quality, spammers, drift, agreement and root causes of disagreement."""
    from labelcycle.aggregation import DEFAULT_METHOD, make_aggregator
    from labelcycle.annotators import analyse_annotators, render_report
    from labelcycle.readers import read_table
    from labelcycle.validation import validate

    ann = read_table(annotations_file, "annotations", _colmap(item_col, annotator_col, label_col))
    items = read_table(items_file, "items", _colmap(item_col, None, None)) if items_file else None
    gold = read_table(gold_file, "gold", _colmap(item_col, None, label_col)) if gold_file else None
    if label_set:
        labels = [c.strip() for c in label_set.split(",") if c.strip()]
    else:
        seen = ann[schema.LABEL].dropna().astype(str).str.strip()
        labels = sorted(set(seen[seen != ""]))
    # the pipeline's rules: duplicate (item, annotator) rows keep the latest judgement, bad rows are set
    # aside with a reason, item features are typed (coerce_feature)
    result = validate(ann, labels, items, gold)
    counts = result.counts["annotations"]
    if result.annotations.empty:
        raise InputFileError(
            f"{annotations_file}: none of its {counts.read} rows is valid ({counts.reasons}); check --labels "
            "and the column mapping"
        )
    if counts.quarantined:
        reasons = ", ".join(f"{k}: {v}" for k, v in counts.reasons.items())
        click.echo(
            f"  annotations: {counts.read} rows, {counts.kept} kept, {counts.quarantined} set aside ({reasons})"
        )
    method = method or DEFAULT_METHOD
    df = result.annotations
    agg = make_aggregator(method, classes=labels if label_set else None).fit(
        df[[schema.ITEM_ID, schema.ANNOTATOR_ID, schema.LABEL]]
    )
    analysis = analyse_annotators(df, agg, items=result.items, gold=result.gold)
    if out is not None:
        write_table(analysis.table, out)
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(
            render_report(analysis, title=f"Annotator report: {annotations_file.name}"), encoding="utf-8"
        )

    def fmt(v: object) -> str:
        return "n/a" if v is None else f"{float(v):.3f}"  # type: ignore[arg-type]

    a = analysis.agreement
    click.echo(
        f"annotators: {len(analysis.table)} annotators, {len(df)} labels on "
        f"{df[schema.ITEM_ID].nunique()} items (consensus: {method})"
    )
    click.echo(
        f"  agreement: Krippendorff alpha {fmt(a.get('krippendorff_alpha'))}, "
        f"Fleiss kappa {fmt(a.get('fleiss_kappa'))}"
    )
    spam = analysis.spammers
    click.echo(f"  spammers ({len(spam)}): {', '.join(spam) if spam else 'none'}")
    causes = analysis.root_causes
    if causes.empty:
        click.echo("  root causes: no group stands out")
    else:
        click.echo("  top root causes:")
        for r in causes.head(3).itertuples():
            click.echo(f"    {r.rank}. {r.finding}")
        if len(causes) > 3:
            where = "in the report" if report_file is not None else "with --report FILE.html"
            click.echo(f"    ... and {len(causes) - 3} more {where}")
    written = [str(p) for p in (out, report_file) if p is not None]
    if written:
        click.echo(f"  -> {', '.join(written)}")


# --- issue 6: experiments and compare ---


def _project_root(repo: Path | None) -> Path:
    """The DVC project root, or the current folder when outside one (folder versions still work)."""
    from labelcycle.versioning.dvc import find_root

    try:
        return find_root(repo)
    except LabelcycleError:
        return (repo or Path.cwd()).resolve()


def _resolve_version(root: Path, spec: str):
    """A version name -> Version: workspace, folder, DVC experiment, git revision or MLflow run id."""
    from labelcycle.errors import UnknownVersionError
    from labelcycle.tracking.versions import RUN_ID, resolve_run
    from labelcycle.versioning.versions import resolve_local

    tried = "workspace, a project folder, a DVC experiment name, a git revision or tag"
    version = resolve_run(root, spec) if RUN_ID.match(spec) else None
    if version is None:
        version = resolve_local(root, spec)
    if version is None and not RUN_ID.match(spec):
        tried += ", an MLflow run id (32 hex characters)"
    if version is None:
        raise UnknownVersionError(
            f"unknown version {spec!r} in {root}: it is not {tried}; list versions with `labelcycle experiments` "
            "(or `dvc exp show`, `git tag`)"
        )
    return version


def _load_version(root: Path, version):
    from labelcycle.tracking.versions import load_run_version
    from labelcycle.versioning.versions import load_local

    if version.kind == "mlflow_run":
        return load_run_version(root, version)
    return load_local(root, version)


def _version_slices(data_b, data_c, eval_ids) -> pd.DataFrame | None:
    items = data_b.items if data_b.items is not None else data_c.items
    if items is None:
        return None
    cols = [
        c
        for c in items.columns
        if c != schema.ITEM_ID
        and not pd.api.types.is_numeric_dtype(items[c])
        and 1 < items[c].nunique() <= 50
    ]
    if not cols:
        return None
    frame = items[[schema.ITEM_ID, *cols]].assign(**{schema.ITEM_ID: items[schema.ITEM_ID].astype(str)})
    frame = frame[frame[schema.ITEM_ID].isin(set(eval_ids))]
    return frame if len(frame) == len(set(eval_ids)) else None


def _method(params: dict) -> str | None:
    agg = params.get("aggregate") or {}
    return str(agg.get("method")) if isinstance(agg, dict) and agg.get("method") else None


def _print_table(df: pd.DataFrame) -> None:
    if df.empty:
        click.echo("(none)")
        return
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown = shown.fillna("").astype(str)
    widths = {c: max(len(str(c)), *(len(v) for v in shown[c])) for c in shown.columns}
    click.echo("  ".join(str(c).ljust(widths[c]) for c in shown.columns))
    click.echo("  ".join("-" * widths[c] for c in shown.columns))
    for _, row in shown.iterrows():
        click.echo("  ".join(row[c].ljust(widths[c]) for c in shown.columns))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the versions as a JSON list.")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder (default: the one holding the current folder).",
)
def experiments(as_json: bool, repo: Path | None) -> None:
    """List dataset versions (MLflow pipeline runs, DVC experiments, the workspace) side by side.

    Any value of the version column can be passed to `labelcycle compare`.
    """
    import json

    import yaml

    from labelcycle.errors import TrackingError
    from labelcycle.tracking.versions import KEY_METRICS, KEY_PARAMS, pipeline_versions
    from labelcycle.versioning.versions import WORKSPACE, _git, experiment_refs

    root = _project_root(repo)
    try:
        table = pipeline_versions(root)
    except TrackingError as exc:
        click.echo(f"warning: MLflow runs not listed: {exc}", err=True)
        table = pd.DataFrame()

    def local_row(version: str, source: str, params: dict, metrics: dict, agg: dict, rev: str | None) -> dict:
        row = {
            "version": version,
            "source": source,
            "dvc_exp": version if source == "dvc" else "",
            "git_rev": (rev or "")[:10],
            "curated_digest": str(agg.get("curated_digest", ""))[:12],
            "eval_digest": str(metrics.get("eval_digest", ""))[:12],
        }
        for k in KEY_PARAMS:
            sec, _, key = k.partition(".")
            row[k] = str((params.get(sec) or {}).get(key, ""))
        for k in KEY_METRICS:
            row[k] = metrics.get(k)
        return row

    def at_rev(rev: str, path: str, parse):
        text = _git(root, "show", f"{rev}:{path}")
        try:
            return parse(text) if text else {}
        except Exception:
            return {}

    rows = []
    for name, sha in experiment_refs(root).items():
        params = at_rev(sha, "params.yaml", yaml.safe_load) or {}
        metrics = at_rev(sha, "reports/metrics.json", json.loads)
        agg = at_rev(sha, "reports/aggregate.json", json.loads)
        hit = table[table["dvc_exp"] == name] if len(table) else table
        if len(hit):
            table.loc[hit.index, "source"] = "mlflow+dvc"
            table.loc[hit.index, "dvc_exp"] = name
            continue
        rows.append(local_row(name, "dvc", params, metrics, agg, sha))
    if (root / "reports/metrics.json").exists():
        ws = lambda p, parse: parse((root / p).read_text()) if (root / p).exists() else {}  # noqa: E731
        rows.append(
            local_row(
                WORKSPACE,
                "workspace",
                ws("params.yaml", yaml.safe_load) or {},
                ws("reports/metrics.json", json.loads),
                ws("reports/aggregate.json", json.loads),
                _git(root, "rev-parse", "HEAD"),
            )
        )
    table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True) if rows else table
    if as_json:
        click.echo(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
        return
    cols = [
        c
        for c in (
            "version",
            "source",
            "dvc_exp",
            "git_rev",
            "curated_digest",
            "eval_digest",
            *KEY_PARAMS,
            *KEY_METRICS,
        )
        if c in table.columns
    ]
    _print_table(table[cols] if len(table) else table)


@main.command()
@click.argument("base")
@click.argument("candidate")
@click.option("--json", "as_json", is_flag=True, help="Print the full comparison as one JSON object.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write an offline HTML report (plots inlined) to this file.",
)
@click.option(
    "--metric", "primary_metric", default="macro_f1", show_default=True, help="Metric the verdict is made on."
)
@click.option(
    "--n-boot",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="Paired bootstrap resamples.",
)
@click.option(
    "--n-boot-auc",
    type=click.IntRange(min=10),
    default=200,
    show_default=True,
    help="Resamples for ROC-AUC / PR-AUC (the costly metrics on large eval sets).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-log", is_flag=True, help="Do not log the comparison to MLflow.")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder (default: the one holding the current folder).",
)
def compare(
    base, candidate, as_json, html_out, primary_metric, n_boot, n_boot_auc, seed, no_log, repo
) -> None:
    """Compare two dataset versions by downstream impact on the frozen gold eval split.

    BASE and CANDIDATE: `workspace`, a project folder, a DVC experiment name, a git revision or tag, or an
    MLflow run id (any stage run of a pipeline run). Uses the saved per-item predictions (no retraining).
    """
    import json

    from labelcycle.comparison import compare_versions, render_html
    from labelcycle.errors import MissingPredictionsError
    from labelcycle.versioning.diff import diff_datasets

    root = _project_root(repo)
    versions = [_resolve_version(root, spec) for spec in (base, candidate)]
    data = [_load_version(root, v) for v in versions]
    for role, d in zip(("base", "candidate"), data, strict=True):
        if d.predictions is None:
            where = {
                "mlflow_run": "its pipeline run has no evaluate-stage run with predictions.parquet",
                "workspace": f"{root / 'reports/predictions.parquet'} is missing",
                "folder": f"{d.version.path}/reports/predictions.parquet is missing",
            }.get(
                d.version.kind,
                f"reports/predictions.parquet is not at revision {str(d.version.rev)[:10]} "
                "(nor in the local DVC cache)",
            )
            raise MissingPredictionsError(
                f"{role} version {d.version.spec!r} ({d.version.kind}) has no saved predictions: {where}; run the "
                "pipeline through its evaluate stage for that version (`dvc repro` / `dvc exp run`), or pick "
                "another version from `labelcycle experiments`"
            )
    db, dc = data
    diff = None
    if db.labels is not None and dc.labels is not None:
        diff = diff_datasets(
            db.labels,
            dc.labels,
            base_annotations=db.annotations,
            candidate_annotations=dc.annotations,
            base_method=_method(db.params),
            candidate_method=_method(dc.params),
        )
    eval_ids = db.predictions[schema.ITEM_ID].astype(str).tolist()
    report = compare_versions(
        db.predictions,
        dc.predictions,
        base_eval_digest=db.metrics.get("eval_digest"),
        candidate_eval_digest=dc.metrics.get("eval_digest"),
        dataset_diff=diff,
        slices=_version_slices(db, dc, eval_ids),
        base=db.version.describe(),
        candidate=dc.version.describe(),
        n_boot=n_boot,
        n_boot_rank=n_boot_auc,
        seed=seed,
        primary_metric=primary_metric,
    )
    if diff is None:
        report = type(report)(
            **{**report.__dict__, "notes": ("curated labels missing for a version: no dataset diff",)}
        )
    page = render_html(report) if html_out is not None else None
    if page is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(page)
    out = report.to_dict()
    if not no_log:
        from labelcycle.tracking.versions import log_comparison, runs_for

        linked = [runs_for(root, v) if v.kind != "mlflow_run" else v for v in versions]
        out["base"], out["candidate"] = linked[0].describe(), linked[1].describe()
        tags = {"labelcycle.verdict": report.verdict, "labelcycle.primary_metric": primary_metric}
        for role, v in zip(("base", "candidate"), linked, strict=True):
            tags.update(
                {
                    f"compare.{role}": v.spec,
                    f"compare.{role}.kind": v.kind,
                    f"compare.{role}.rev": v.rev or "",
                    f"compare.{role}.dvc_exp": v.exp_name or "",
                    f"compare.{role}.pipeline_run": v.pipeline_run or "",
                    f"compare.{role}.run_ids": json.dumps(dict(v.run_ids)),
                }
            )
            for stage, run_id in v.run_ids.items():
                tags[f"compare.{role}.run.{stage}"] = run_id
        if diff is not None:
            tags.update(
                {
                    "dataset_diff.items_added": str(diff.items_added),
                    "dataset_diff.items_removed": str(diff.items_removed),
                    "dataset_diff.labels_changed": str(diff.labels_changed),
                }
            )
        metrics = {}
        for name, m in out["metrics"].items():
            if "__" in name:
                continue
            for k in ("base", "candidate", "delta", "ci_low", "ci_high", "p_value"):
                metrics[f"{name}.{k}"] = m[k]
        out["mlflow_run_id"] = log_comparison(root, out, tags, metrics, page)
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    if diff is not None:
        click.echo(
            f"dataset diff: {diff.items_added} items added, {diff.items_removed} removed, "
            f"{diff.labels_changed} labels changed (of {diff.items_common} common items)"
        )
    click.echo(f"paired on {report.paired.n} gold eval items ({report.paired.n_boot} resamples):")
    from labelcycle.evaluation.metrics import SUMMARY_METRICS

    table = report.paired.table[report.paired.table["metric"].isin(SUMMARY_METRICS)]
    _print_table(table[["metric", "base", "candidate", "delta", "ci_low", "ci_high", "p_value"]])
    click.echo(f"verdict ({primary_metric}): {report.verdict}")
    if html_out is not None:
        click.echo(f"report: {html_out}")
    if "mlflow_run_id" in out:
        click.echo(f"logged to MLflow as run {out['mlflow_run_id']}")


# --- issue 4: errors and review ---


def _label_set(label_set: str | None, root: Path | None, *frames: pd.DataFrame | None) -> list[str]:
    """--labels, else the project's ingest.labels, else the labels seen (sorted)."""
    if label_set:
        return [c.strip() for c in label_set.split(",") if c.strip()]
    if root is not None and (root / "params.yaml").exists():
        from labelcycle.params import load

        return load(root).classes
    seen = set()
    for df in frames:
        if df is not None and schema.LABEL in df.columns:
            seen |= {str(v).strip() for v in df[schema.LABEL] if str(v).strip()}
    return sorted(seen)


def _maybe_root(repo: Path | None = None) -> Path | None:
    from labelcycle.versioning.dvc import find_root

    try:
        return find_root(repo)
    except LabelcycleError:
        if repo is not None:
            raise
        return None


@main.command()
@click.argument("annotations_file", metavar="ANNOTATIONS", type=click.Path(path_type=Path))
@click.option(
    "--items", "items_file", type=click.Path(path_type=Path), default=None, help="Items (features) file."
)
@click.option(
    "--gold",
    "gold_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Gold labels for training the error model (never pass the eval split).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("label_errors.csv"),
    show_default=True,
    help="Output file; CSV, TSV, Parquet or JSONL by extension.",
)
@click.option(
    "--labels",
    "label_set",
    default=None,
    help="Comma-separated label set (default: the project's ingest.labels, else the labels seen).",
)
@click.option(
    "--method", default="majority_vote", show_default=True, help="Aggregator fitted inside the folds."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="is_label_error_issue = label_error_score >= threshold.",
)
@_column_options
def errors(
    annotations_file,
    items_file,
    gold_file,
    out,
    label_set,
    method,
    threshold,
    item_col,
    annotator_col,
    label_col,
) -> None:
    """Score every annotation with the probability that it is wrong.

    Writes item_id, annotator_id, label, label_error_score, is_label_error_issue. With --gold the
    LightGBM error model is trained on the gold items; without, the scores are unsupervised (one minus
    the cross-fitted posterior of the given label) and the command says so.
    """
    from dataclasses import replace

    from labelcycle.aggregation import METHODS
    from labelcycle.detection.model import detect_label_errors
    from labelcycle.params import ErrorModelParams, FeatureParams
    from labelcycle.errors import ConfigError, ValidationError
    from labelcycle.readers import read_table
    from labelcycle.validation import validate

    if method not in METHODS:
        raise ConfigError(
            f"--method {method!r} is not an aggregation method; choose one of {sorted(METHODS)}"
        )
    from labelcycle.readers import detect_format

    detect_format(out)  # a bad output extension fails before any work
    ann = read_table(annotations_file, "annotations", _colmap(item_col, annotator_col, label_col))
    items = read_table(items_file, "items", _colmap(item_col, None, None)) if items_file else None
    gold = read_table(gold_file, "gold", _colmap(item_col, None, None)) if gold_file else None
    labels = _label_set(label_set, _maybe_root(), ann, gold)
    if len(labels) < 2:
        raise ConfigError(
            f"{annotations_file}: the label set {labels} has fewer than two classes; pass --labels"
        )
    result = validate(ann, labels, items, gold)
    for name, c in result.counts.items():
        if c.quarantined:
            click.echo(f"  {name}: {c.quarantined} of {c.read} rows set aside ({c.reasons})", err=True)
    if result.annotations.empty:
        raise ValidationError(
            f"{annotations_file}: none of its {len(ann)} rows is valid ({result.counts['annotations'].reasons}); "
            f"check --labels (now {labels}) and the column mapping"
        )
    params = ErrorModelParams(features=FeatureParams(aggregator=method), threshold=threshold)
    det = detect_label_errors(result.annotations, labels, result.items, result.gold, params=replace(params))
    write_table(det.scores, out)
    if not det.supervised:
        click.echo(f"errors: note: {det.message}", err=True)
    n_flag = int(det.scores["is_label_error_issue"].sum())
    held = det.metrics.get("error_model.average_precision")
    click.echo(
        f"errors: {len(det.scores)} annotations scored, {n_flag} flagged (score >= {threshold}) -> {out}"
        + (f"; held-out AP on gold {held:.3f}" if held is not None else "")
    )


@main.group()
def review() -> None:
    """The review loop: export the items most worth re-reviewing, import the reviewed labels."""


@review.command("export")
@click.option("--budget", type=int, required=True, help="Number of items to review (> 0).")
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Review sheet (CSV/TSV/Parquet/JSONL).",
)
@click.option(
    "--stratify-by",
    default=None,
    help="Share the budget across strata: 'label' (current label) or an item feature column.",
)
@click.option(
    "--by",
    "rank_by",
    type=click.Choice(["priority", "uncertainty", "label_doubt"]),
    default="priority",
    show_default=True,
    help="Ranking: error scores and uncertainty, uncertainty only, or error scores only.",
)
@click.option(
    "--scores",
    "scores_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Annotation error scores (default: the pipeline's data/curated/error_scores.parquet).",
)
@click.option(
    "--repo", type=click.Path(path_type=Path, file_okay=False), default=None, help="Project folder."
)
def review_export(budget, out, stratify_by, rank_by, scores_file, repo) -> None:
    """Pick the BUDGET items most worth re-reviewing (one row per item) into a sheet to fill in."""
    from labelcycle.detection.review import CURRENT, item_priorities, review_sheet, select_for_review
    from labelcycle.errors import ConfigError, ValidationError
    from labelcycle.readers import detect_format, read_table
    from labelcycle.versioning.dvc import find_root

    if budget < 1:
        raise ConfigError(f"--budget must be a positive number of items, got {budget}")
    detect_format(out)
    root = find_root(repo)
    needed = {
        "annotations": root / "data/interim/annotations.parquet",
        "labels": root / "data/curated/labels_raw.parquet",
        "scores": Path(scores_file) if scores_file else root / "data/curated/error_scores.parquet",
    }
    for name, path in needed.items():
        if not path.exists():
            raise ValidationError(f"{path}: missing ({name}); run `dvc repro train_error_model` first")
    ann = pd.read_parquet(needed["annotations"])
    scores = read_table(needed["scores"], "annotations") if scores_file else pd.read_parquet(needed["scores"])
    labels = pd.read_parquet(needed["labels"])
    pri = item_priorities(scores, labels)
    gold_path = root / "data/interim/gold.parquet"
    if gold_path.exists():  # audited items already have an expert label
        pri = pri[~pri[schema.ITEM_ID].isin(set(pd.read_parquet(gold_path)[schema.ITEM_ID].astype(str)))]
    items_path = root / "data/interim/items.parquet"
    items = pd.read_parquet(items_path) if items_path.exists() else None
    strata = None
    if stratify_by:
        if stratify_by == "label":
            strata = pri[CURRENT]
        elif items is not None and stratify_by in items.columns:
            strata = (
                pri[schema.ITEM_ID]
                .map(items.set_index(schema.ITEM_ID)[stratify_by].astype(str))
                .fillna("(none)")
            )
        else:
            known = ["label", *(schema.feature_columns(list(items.columns)) if items is not None else [])]
            raise ConfigError(f"--stratify-by {stratify_by!r} is not a column; choose one of {known}")
    chosen = select_for_review(
        pri.reset_index(drop=True),
        budget,
        by=rank_by,
        stratify=None if strata is None else strata.reset_index(drop=True),
    )
    sheet = review_sheet(chosen, ann, items)
    write_table(sheet, out)
    click.echo(
        f"review export: {len(sheet)} items -> {out}; fill in review_label (and reviewer_id), then "
        f"`labelcycle review import {out}`"
    )


@review.command("import")
@click.argument("batch_file", metavar="BATCH", type=click.Path(path_type=Path))
@click.option("--reviewer", default=None, help="Reviewer id for rows that leave reviewer_id empty.")
@click.option(
    "--repo", type=click.Path(path_type=Path, file_okay=False), default=None, help="Project folder."
)
def review_import(batch_file, reviewer, repo) -> None:
    """Validate a filled-in review sheet and add its labels as a new raw batch (tracked by DVC)."""
    import tempfile

    from labelcycle.detection.review import parse_review
    from labelcycle.errors import ValidationError
    from labelcycle.params import load
    from labelcycle.readers import ColumnMap, read_table
    from labelcycle.versioning import dvc, raw

    root = dvc.find_root(repo)
    labels = load(root).classes
    sheet = read_table(batch_file, "items")
    ann_path = root / "data/interim/annotations.parquet"
    if not ann_path.exists():
        raise ValidationError(f"{ann_path}: missing; run `dvc repro ingest` before importing reviews")
    known = pd.read_parquet(ann_path, columns=[schema.ITEM_ID])[schema.ITEM_ID]
    reviewed, skipped = parse_review(sheet, labels, known, source=str(batch_file), default_reviewer=reviewer)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "annotations.csv"
        reviewed.to_csv(path, index=False)
        batch, new = raw.write_batch(
            root, [raw.BatchFile("annotations", path, ColumnMap())], {"annotations": len(reviewed)}
        )
    if not new:
        click.echo(f"review import: batch {batch.digest} is already in data/raw; nothing to do")
        return
    dvc.track(root, raw.RAW_DIR)
    click.echo(
        f"review import: {len(reviewed)} reviewed labels ({skipped} rows left blank) -> batch {batch.digest}; "
        "run `dvc repro` to see the impact"
    )


@main.command("simulate-review")
@click.option(
    "--demo",
    "demo_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A folder written by `labelcycle demo` (with truth/); default: generate one in memory.",
)
@click.option("--items", "n_items", type=click.IntRange(min=100), default=6000, show_default=True)
@click.option("--annotators", "n_annotators", type=click.IntRange(min=6), default=80, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--budgets",
    default="0,0.01,0.02,0.05,0.1,0.2",
    show_default=True,
    help="Comma-separated review budgets as fractions of the reviewable items.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("reports/review_simulation"),
    show_default=True,
)
@click.option("--eval-fraction", type=click.FloatRange(0.05, 0.95), default=0.6, show_default=True)
def simulate_review_cmd(demo_dir, n_items, n_annotators, seed, budgets, out_dir, eval_fraction) -> None:
    """On demo data with known truth: wrong labels fixed and downstream accuracy by review budget,
    error-model ranking vs uncertainty only vs random. Writes a CSV and a PNG and logs both to MLflow."""
    from labelcycle.demo import LABELS, generate
    from labelcycle.detection.simulate import SimulationParams, review_curve_figure, simulate_review
    from labelcycle.errors import ConfigError
    from labelcycle.readers import read_table
    from labelcycle.split import split_gold
    from labelcycle.tracking.runs import stage_run
    from labelcycle.validation import validate

    try:
        fractions = tuple(float(b) for b in budgets.split(","))
    except ValueError:
        raise ConfigError(f"--budgets {budgets!r}: give comma-separated fractions like 0,0.05,0.1") from None
    if any(not 0 <= b <= 1 for b in fractions):
        raise ConfigError(f"--budgets {budgets!r}: every budget must be a fraction in [0, 1]")
    if demo_dir is not None:
        truth_path = demo_dir / "truth" / "items.parquet"
        if not truth_path.exists():
            raise InputFileError(f"{truth_path}: missing; --demo needs a folder written by `labelcycle demo`")
        v = validate(
            read_table(demo_dir / "annotations.csv", "annotations"),
            list(LABELS),
            read_table(demo_dir / "items.csv", "items"),
            read_table(demo_dir / "gold.csv", "gold"),
        )
        annotations, items, gold = v.annotations, v.items, v.gold
        truth = pd.read_parquet(truth_path)
        source = str(demo_dir)
    else:
        d = generate(n_items=n_items, n_annotators=n_annotators, seed=seed)
        annotations, items, gold, truth = d.annotations, d.items, d.gold, d.truth_items
        source = f"generated demo (items={n_items}, annotators={n_annotators}, seed={seed})"
    eval_gold, gold_train = split_gold(gold, eval_fraction, "labelcycle-eval-v1")
    curve, message = simulate_review(
        annotations,
        items,
        gold_train,
        eval_gold,
        truth,
        LABELS,
        SimulationParams(budgets=fractions, seed=seed),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out_dir / "review_simulation.csv", index=False)
    fig = review_curve_figure(curve)
    fig.savefig(out_dir / "review_simulation.png", dpi=110, bbox_inches="tight")
    root = _maybe_root() or out_dir.resolve()
    with stage_run(root, "simulate_review", {"source": source, "budgets": budgets, "seed": seed}) as run:
        for strategy, g in curve.groupby("strategy", sort=False):
            for step, row in enumerate(g.itertuples()):
                run.log_metrics(
                    {
                        f"{strategy}.labels_fixed": row.labels_fixed,
                        f"{strategy}.accuracy": row.accuracy,
                        f"{strategy}.macro_f1": row.macro_f1,
                    },
                    step=step,
                )
        run.log_figure(fig, "review_simulation.png")
        run.log_table(curve, "review_simulation.csv")
    click.echo(f"simulate-review: {source}; {message}")
    click.echo(curve.to_string(index=False))
    click.echo(f"-> {out_dir / 'review_simulation.csv'}, {out_dir / 'review_simulation.png'} (and MLflow)")


# --- issue 7: promote, status, rollback ---


def _release_root(repo: Path | None) -> Path:
    from labelcycle.versioning.dvc import find_root

    return find_root(repo)


@main.command()
@click.argument("version", required=False)
@click.option("--dry-run", is_flag=True, help="Print the plan (gates, evidence, changes) and change nothing.")
@click.option(
    "--force", is_flag=True, help="Promote although gates failed (needs --reason; recorded as forced)."
)
@click.option("--reason", default=None, help="Why: recorded in the audit record (required with --force).")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder (default: the one holding the current folder).",
)
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
        raise ConfigError(
            "--force needs --reason TEXT: say why the failing gates may be overridden (it is audited)"
        )
    root = _release_root(repo)
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
    click.echo(
        f"promoted {rel.release_id if rel else ''}"
        + (" (FORCED)" if plan.failed else "")
        + f"; release record run {records.get('release_record')}, audit record run "
        f"{records.get('audit_record')}"
    )


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder (default: the one holding the current folder).",
)
def status(as_json, repo) -> None:
    """The production release: models, dataset version, metrics with intervals, lineage."""
    import json

    from labelcycle.tracking.promote import render_status
    from labelcycle.tracking.promote import status as release_status

    s = release_status(_release_root(repo))
    click.echo(json.dumps(s, indent=2, sort_keys=True, default=str) if as_json else render_status(s))


@main.command()
@click.option("--dry-run", is_flag=True, help="Print what would be restored and change nothing.")
@click.option("--reason", default=None, help="Why: recorded in the audit record.")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder (default: the one holding the current folder).",
)
def rollback(dry_run, reason, repo) -> None:
    """Restore the previous production release exactly (aliases, model tags, git tags); audited."""
    from labelcycle.promotion import render_plan
    from labelcycle.tracking.promote import execute, plan_rollback

    plan, ctx = plan_rollback(_release_root(repo), reason)
    click.echo(render_plan(plan, dry_run=dry_run))
    if dry_run:
        click.echo("dry run: nothing was changed")
        return
    records = execute(plan, ctx)
    click.echo(
        f"rolled back to {plan.candidate.release_id if plan.candidate else '?'}; audit record run "
        f"{records.get('audit_record')}"
    )


# --- issue 8: team scale-out ---


@main.command()
@click.option(
    "--backend-store-uri",
    default=None,
    metavar="URI",
    help="sqlite:///... or postgresql://user@host:5432/db (created if missing); "
    "default: the project's mlflow.db.",
)
@click.option(
    "--artifacts-destination",
    default=None,
    metavar="URI",
    help="Folder or s3://bucket/prefix the server stores artifacts in (set MLFLOW_S3_ENDPOINT_URL "
    "for S3-compatible stores); default: the project's mlartifacts/.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind; 0.0.0.0 opens the server to the network (see --allowed-hosts).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server worker processes (1 suits a small machine).",
)
@click.option("--allowed-hosts", default=None, help="Host headers to accept (MLflow --allowed-hosts).")
@click.option("--dry-run", is_flag=True, help="Print the server command and exit.")
@click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Project folder for the SQLite defaults (default: the one holding the current folder).",
)
def server(
    backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts, dry_run, repo
) -> None:
    """Start a lean MLflow tracking server for a team; point the pipeline at it with MLFLOW_TRACKING_URI.

    \b
    labelcycle server --backend-store-uri postgresql://postgres@127.0.0.1:5432/labelcycle
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000 && dvc repro
    """
    import contextlib
    import shlex
    import signal
    import subprocess

    from labelcycle.rdb import ensure_database
    from labelcycle.tracking.server import plan_server
    from labelcycle.versioning.dvc import find_root

    if backend_store_uri is None or artifacts_destination is None:
        root = find_root(repo)
    else:
        root = (repo or Path.cwd()).resolve()
    plan = plan_server(root, backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts)
    if dry_run:
        click.echo(shlex.join(plan.command))
        return
    if plan.needs_database and ensure_database(plan.backend_store_uri):
        from labelcycle.rdb import _safe

        click.echo(f"server: created the PostgreSQL database for {_safe(plan.backend_store_uri)}")
    click.echo(
        f"server: MLflow tracking server on {plan.url} (backend {plan.backend_store_uri.split('@')[-1]}, "
        f"artifacts {plan.artifacts_destination}); use it with: export MLFLOW_TRACKING_URI={plan.url}"
    )
    proc = subprocess.Popen(plan.command, env=plan.env, start_new_session=True)

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    rc = proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own worker processes, if any outlived it
    if rc not in (0, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM):
        raise LabelcycleError(
            f"the MLflow server exited with status {rc}; see its messages above (port {port} already in use?)"
        )


@main.command("tune-worker")
@click.option(
    "--study",
    "study_name",
    default=None,
    help="Study name shared by all workers (default: the study the tune stage opens for this data).",
)
@click.option(
    "--storage",
    default=None,
    metavar="URL",
    help="Optuna storage shared by all workers (default: params tune.storage, else sqlite:///optuna.db), "
    "e.g. postgresql://postgres@127.0.0.1:5432/optuna (created if missing).",
)
@click.option("--n-trials", type=click.IntRange(min=1), default=None, help="Trials this worker runs.")
@click.option(
    "--total-trials",
    type=click.IntRange(min=1),
    default=None,
    help="Stop once the study holds this many finished trials over all workers (default: tune.n_trials "
    "when --n-trials is not given).",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=1, show_default=True, help="LightGBM threads per trial."
)
@click.option(
    "--seed", type=int, default=None, help="Sampler seed (give each worker its own; default random)."
)
@click.option(
    "--heartbeat",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Seconds between heartbeats; a dead worker's trial is retried after heartbeat + grace.",
)
@click.option("--grace", type=click.IntRange(min=1), default=120, show_default=True)
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None)
def tune_worker(study_name, storage, n_trials, total_trials, threads, seed, heartbeat, grace, repo) -> None:
    """One Optuna worker of the tune stage's search; start several (on one or many machines) on one study.

    Same data, search space, objective and pruning as the tune stage (params `tune`): the curated data
    minus the gold eval items, validation log loss. Afterwards `dvc repro` finds the trials done, writes
    reports/best_params.json, and train_quality trains with the best params.
    """
    from labelcycle.curation import N_ANNOTATIONS
    from labelcycle.params import load
    from labelcycle.pipeline import read_parquet
    from labelcycle.quality import tuning
    from labelcycle.quality.parallel_tuning import dvc_set_args, make_storage, open_study, run_worker
    from labelcycle.rdb import ensure_database
    from labelcycle.versioning.digest import table_digest
    from labelcycle.versioning.dvc import find_root

    root = find_root(repo)
    params = load(root)
    p = params.tune
    classes = params.classes
    if n_trials is None and total_trials is None:
        total_trials = p.n_trials
    dims = tuning.parse_space(p.search_space)
    dataset = read_parquet(root / "data/curated/dataset.parquet")
    eval_split = read_parquet(root / "data/split/eval.parquet")
    rows = dataset[~dataset[schema.ITEM_ID].isin(eval_split[schema.ITEM_ID])].reset_index(drop=True)
    items = rows[[c for c in rows.columns if c not in {schema.LABEL, schema.CONFIDENCE, N_ANNOTATIONS}]]
    data = tuning.prepare_tuning_data(items, rows[schema.LABEL], classes, p.valid_fraction, p.seed)
    name = study_name or tuning.study_name(p.study, table_digest(rows), p.search_space, p.seed)
    url = storage or p.storage or f"sqlite:///{root / 'optuna.db'}"
    objective = tuning.make_objective(
        data,
        dims,
        n_estimators=p.n_estimators,
        early_stopping_rounds=p.early_stopping_rounds,
        n_jobs=threads,
        seed=p.seed,
        pruning=p.pruning,
    )
    ensure_database(url)
    study = open_study(name, make_storage(url, heartbeat, grace), seed=seed, pruning=p.pruning)
    click.echo(f"tune-worker: study {name} on {url.split('@')[-1]}")
    run_worker(study, objective, n_trials=n_trials, total_trials=total_trials)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not done:
        click.echo(f"tune-worker: study {name}: no completed trial yet")
        return
    click.echo(
        f"tune-worker: study {name}: {len(done)} completed trials; best valid log loss "
        f"{study.best_value:.5f} with {study.best_params}"
    )
    click.echo(
        "  `dvc repro` records them (reports/best_params.json) and trains with them; or try them as an "
        f"experiment: dvc exp run {dvc_set_args(study.best_params)}"
    )


if __name__ == "__main__":  # pragma: no cover
    main()
