"""Team commands: ``server`` (a shared MLflow tracking server), ``ui`` (the MLflow UI opened on the
project's runs), ``tune-worker`` (one of many Optuna workers on the tune stage's study)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from labelcycle import catalog
from labelcycle.cli.options import repo_option
from labelcycle.errors import LabelcycleError
from labelcycle.masking import mask


@click.command()
@click.option(
    "--backend-store-uri",
    default=None,
    metavar="URI",
    help="sqlite:///... or postgresql://user@host:5432/db (created if missing); "
    f"default: the project's {catalog.MLFLOW_DB}.",
)
@click.option(
    "--artifacts-destination",
    default=None,
    metavar="URI",
    help="Folder or s3://bucket/prefix the server stores artifacts in (set MLFLOW_S3_ENDPOINT_URL "
    f"for S3-compatible stores); default: the project's {catalog.MLARTIFACTS}/.",
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
@repo_option("Project folder for the SQLite defaults (default: the one holding the current folder).")
def server(
    backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts, dry_run, repo
) -> None:
    """Start a lean MLflow tracking server for a team; point the pipeline at it with MLFLOW_TRACKING_URI.

    \b
    labelcycle server --backend-store-uri postgresql://postgres@127.0.0.1:5432/labelcycle
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000 && dvc repro
    """
    import shlex

    from labelcycle.databases import ensure_database
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
        click.echo(f"server: created the PostgreSQL database for {mask(plan.backend_store_uri)}")
    click.echo(
        f"server: MLflow tracking server on {plan.url} (backend {plan.backend_store_uri.split('@')[-1]}, "
        f"artifacts {plan.artifacts_destination}); use it with: export MLFLOW_TRACKING_URI={plan.url}"
    )
    _serve(plan.command, plan.env, port)


def _serve(command: list[str], env: dict[str, str], port: int) -> None:
    """Run the MLflow server in the foreground in its own process group; Ctrl-C / SIGTERM stop it all."""
    import signal
    import subprocess

    proc = subprocess.Popen(command, env=env, start_new_session=True)

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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True)
@click.option("--dry-run", is_flag=True, help="Print the server command and the runs table URL, and exit.")
@repo_option()
def ui(host, port, dry_run, repo) -> None:
    """Open the MLflow UI on the project's runs: one row per dataset version, its stages nested under it.

    Starts a lean MLflow server (one worker, job execution off) on the project's tracking store and prints
    the URL of the project experiment's runs table (not MLflow's landing page). Select two versions and
    press Compare to see their params, metrics and data sets side by side. With MLFLOW_TRACKING_URI set to
    a tracking server, prints that server's runs table URL instead of starting one.
    """
    import shlex

    from labelcycle.tracking.runs import configure, runs_table_url, tracking_uri
    from labelcycle.tracking.server import plan_server
    from labelcycle.versioning.dvc import find_root

    root = find_root(repo)
    uri = tracking_uri(root)
    experiment = configure(root)
    if uri.startswith(("http://", "https://")):
        click.echo(f"ui: the project's runs on the tracking server {uri}: {runs_table_url(uri, experiment)}")
        return
    plan = plan_server(root, uri, None, host, port, 1, None)
    url = runs_table_url(plan.url, experiment)
    if dry_run:
        click.echo(shlex.join(plan.command))
        click.echo(url)
        return
    click.echo(f"ui: MLflow UI on {mask(uri)}; the project's runs: {url}  (Ctrl-C stops it)")
    _serve(plan.command, plan.env, port)


@click.command("tune-worker")
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
    help="Optuna storage shared by all workers (default: params tune.storage, else "
    f"sqlite:///{catalog.OPTUNA_DB}), "
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
@repo_option()
def tune_worker(study_name, storage, n_trials, total_trials, threads, seed, heartbeat, grace, repo) -> None:
    """One Optuna worker of the tune stage's search; start several (on one or many machines) on one study.

    Same data, search space, objective and pruning as the tune stage (params `tune`): the curated training
    sample minus the gold eval items, validation log loss. Afterwards `dvc repro` finds the trials done,
    writes reports/best_params.json, and train_quality trains with the best params.
    """
    from labelcycle.catalog import Catalog
    from labelcycle.databases import ensure_database
    from labelcycle.params import load
    from labelcycle.pipeline import read_parquet
    from labelcycle.quality.data import training_rows
    from labelcycle.quality.parallel_tuning import dvc_set_args, make_storage, run_worker
    from labelcycle.quality.tuning import open_study, search_for
    from labelcycle.versioning.dvc import find_root

    root = find_root(repo)
    cat = Catalog(root)
    params = load(root)
    p = params.tune
    if n_trials is None and total_trials is None:
        total_trials = p.n_trials
    # exactly the tune stage's rows and search (stages/tune.py), so the workers fill the study it opens
    train = training_rows(read_parquet(cat.path(catalog.TRAIN_SAMPLE)), read_parquet(cat.path(catalog.EVAL)))
    search = search_for(train, params.classes, p, n_jobs=threads, features=params.features)
    name = study_name or search.study
    url = storage or p.storage_url(root)
    ensure_database(url)
    study = open_study(name, make_storage(url, heartbeat, grace), seed=seed, pruning=p.pruning)
    click.echo(f"tune-worker: study {name} on {url.split('@')[-1]}")
    run_worker(study, search.objective, n_trials=n_trials, total_trials=total_trials)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not done:
        click.echo(f"tune-worker: study {name}: no completed trial yet")
        return
    click.echo(
        f"tune-worker: study {name}: {len(done)} completed trials; best valid log loss "
        f"{study.best_value:.5f} with {study.best_params}"
    )
    click.echo(
        f"  `dvc repro` records them ({catalog.BEST_PARAMS}) and trains with them; or try them as an "
        f"experiment: dvc exp run {dvc_set_args(study.best_params)}"
    )


COMMANDS = [server, ui, tune_worker]
