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


# --- issue 8: team scale-out ---


@main.command()
@click.option("--backend-store-uri", default=None, metavar="URI",
              help="sqlite:///... or postgresql://user@host:5432/db (created if missing); "
                   "default: the project's mlflow.db.")
@click.option("--artifacts-destination", default=None, metavar="URI",
              help="Folder or s3://bucket/prefix the server stores artifacts in (set MLFLOW_S3_ENDPOINT_URL "
                   "for S3-compatible stores); default: the project's mlartifacts/.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 opens the server to the network (see --allowed-hosts).")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Server worker processes (1 suits a small machine).")
@click.option("--allowed-hosts", default=None, help="Host headers to accept (MLflow --allowed-hosts).")
@click.option("--dry-run", is_flag=True, help="Print the server command and exit.")
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Project folder for the SQLite defaults (default: the one holding the current folder).")
def server(backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts, dry_run, repo) -> None:
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
    click.echo(f"server: MLflow tracking server on {plan.url} (backend {plan.backend_store_uri.split('@')[-1]}, "
               f"artifacts {plan.artifacts_destination}); use it with: export MLFLOW_TRACKING_URI={plan.url}")
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
        raise LabelcycleError(f"the MLflow server exited with status {rc}; see its messages above "
                              f"(port {port} already in use?)")


@main.command("tune-worker")
@click.option("--study", "study_name", required=True, help="Study name shared by all workers.")
@click.option("--storage", required=True, metavar="URL",
              help="Optuna storage shared by all workers, e.g. postgresql://postgres@127.0.0.1:5432/optuna "
                   "(created if missing) or sqlite:///optuna.db for one machine.")
@click.option("--n-trials", type=click.IntRange(min=1), default=None, help="Trials this worker runs.")
@click.option("--total-trials", type=click.IntRange(min=1), default=None,
              help="Stop once the study holds this many finished trials (over all workers).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="LightGBM threads per trial.")
@click.option("--seed", type=int, default=None, help="Sampler seed (give each worker its own).")
@click.option("--heartbeat", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds between heartbeats; a dead worker's trial is retried after heartbeat + grace.")
@click.option("--grace", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--repo", type=click.Path(path_type=Path, file_okay=False), default=None)
def tune_worker(study_name, storage, n_trials, total_trials, threads, seed, heartbeat, grace, repo) -> None:
    """One Optuna worker tuning the quality model; start several (on one or many machines) on one study.

    Trains on data/curated/dataset.parquet minus the gold eval items (data/split/eval.parquet) with
    train_quality's n_estimators, early stopping and seed; minimises the validation log loss.
    """
    from labelcycle.curation import N_ANNOTATIONS
    from labelcycle.errors import ConfigError
    from labelcycle.params import IngestParams, TrainQualityParams, load_params, section
    from labelcycle.pipeline import read_parquet
    from labelcycle.quality.parallel_tuning import dvc_set_args, make_storage, objective_factory, run_worker
    from labelcycle.rdb import ensure_database
    from labelcycle.versioning.dvc import find_root

    if n_trials is None and total_trials is None:
        raise ConfigError("give --n-trials (this worker) or --total-trials (the whole study), or both")
    root = find_root(repo)
    params = load_params(root / "params.yaml")
    p = section(TrainQualityParams, params, "train_quality")
    classes = section(IngestParams, params, "ingest").labels
    dataset = read_parquet(root / "data/curated/dataset.parquet")
    eval_split = read_parquet(root / "data/split/eval.parquet")
    rows = dataset[~dataset[schema.ITEM_ID].isin(eval_split[schema.ITEM_ID])].reset_index(drop=True)
    items = rows[[c for c in rows.columns if c not in {schema.LABEL, schema.CONFIDENCE, N_ANNOTATIONS}]]
    objective = objective_factory(items, rows[schema.LABEL], classes, n_estimators=p.n_estimators,
                                  early_stopping_rounds=p.early_stopping_rounds, valid_fraction=p.valid_fraction,
                                  seed=p.seed, num_threads=threads)
    ensure_database(storage)
    study = run_worker(study_name, make_storage(storage, heartbeat, grace), objective, n_trials=n_trials,
                       total_trials=total_trials, seed=seed)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not done:
        click.echo(f"tune-worker: study {study_name}: no completed trial yet")
        return
    click.echo(f"tune-worker: study {study_name}: {len(done)} completed trials; best valid log loss "
               f"{study.best_value:.5f} with {study.best_params}")
    click.echo(f"  run the pipeline with them: dvc exp run {dvc_set_args(study.best_params)}")


if __name__ == "__main__":  # pragma: no cover
    main()
