"""Team commands: ``server`` (a shared MLflow tracking server), ``ui`` (the MLflow UI opened on the
project's runs), ``tune-worker`` (one of many Optuna workers on the tune stage's study)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import click

from labelcycle import catalog
from labelcycle.cli.options import count_option, repo_option
from labelcycle.errors import ConfigError, LabelcycleError
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
@count_option("--workers", low=1, default=1, help="Server worker processes (1 suits a small machine).")
@click.option("--allowed-hosts", default=None, help="Host headers to accept (MLflow --allowed-hosts).")
@click.option(
    "--cors-allowed-origins", default=None, help="Origins allowed cross-site (MLflow --cors-allowed-origins)."
)
@click.option(
    "--auth/--no-auth",
    default=None,
    help="MLflow basic auth (default: on when --host is not loopback). The admin password comes from "
    "MLFLOW_AUTH_ADMIN_PASSWORD or --admin-password-file; clients set MLFLOW_TRACKING_USERNAME/PASSWORD.",
)
@click.option(
    "--admin-password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="File holding the basic-auth admin password (first line).",
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Serve beyond loopback WITHOUT authentication (anyone reaching it can replace models).",
)
@click.option("--dry-run", is_flag=True, help="Print the server command (secrets masked) and exit.")
@repo_option("Project folder for the SQLite defaults (default: the one holding the current folder).")
def server(admin_password_file, dry_run, repo, **options) -> None:
    """Start a lean MLflow tracking server for a team; point the pipeline at it with MLFLOW_TRACKING_URI.

    \b
    labelcycle server --backend-store-uri postgresql://postgres@127.0.0.1:5432/labelcycle
    export MLFLOW_TRACKING_URI=http://127.0.0.1:5000 && dvc repro
    """
    from labelcycle.databases import ensure_database
    from labelcycle.tracking.server import plan_server
    from labelcycle.versioning.dvc import find_root

    if options["backend_store_uri"] is None or options["artifacts_destination"] is None:
        root = find_root(repo)
    else:
        root = (repo or Path.cwd()).resolve()
    password = None
    if admin_password_file is not None:
        lines = admin_password_file.read_text().splitlines()
        password = lines[0].strip() if lines else ""
        if not password:
            raise ConfigError(f"{admin_password_file}: empty; write the admin password on its first line")
    # options: backend_store_uri, artifacts_destination, host, port, workers, allowed_hosts,
    # cors_allowed_origins, auth, insecure_no_auth (plan_server's own names)
    plan = plan_server(root, admin_password=password, **options)
    if not plan.auth and options["insecure_no_auth"]:
        click.echo(
            f"warning: the server on {options['host']} has NO authentication: anyone who reaches port "
            f"{options['port']} can read "
            "runs and replace registered models",
            err=True,
        )
    if dry_run:
        click.echo(plan.shown())
        return
    if plan.auth_config is not None:
        ini, text = plan.auth_config
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text(text)
    if plan.secret_key is not None:
        key_file, key = plan.secret_key
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(key + "\n")
    if plan.needs_database and ensure_database(plan.backend_store_uri):
        click.echo(f"server: created the PostgreSQL database for {mask(plan.backend_store_uri)}")
    auth_note = "; basic auth on: set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD" if plan.auth else ""
    click.echo(
        f"server: MLflow tracking server on {plan.url} (backend {mask(plan.backend_store_uri)}, "
        f"artifacts {plan.artifacts_destination}{auth_note}); use it with: export MLFLOW_TRACKING_URI={plan.url}"
    )
    _serve(plan.command, plan.env, options["port"])


def _serve(command: list[str], env: dict[str, str], port: int) -> None:
    """Run the MLflow server in the foreground under a guard in its own session; SIGTERM, SIGINT and
    SIGHUP stop it all, and so does this process dying, even by SIGKILL (see tracking.server.guard)."""
    import signal
    import subprocess

    from labelcycle.tracking.server import guard_command

    proc = subprocess.Popen(guard_command(command), env=env, start_new_session=True)

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    rc = proc.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own worker processes, if any outlived it
    if rc not in (0, *(128 + s for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)), -signal.SIGTERM):
        raise LabelcycleError(
            f"the MLflow server exited with status {rc}; see its messages above (e.g. port {port} already in use)"
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
        click.echo(plan.shown())
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
@count_option("--threads", low=1, default=1, help="LightGBM threads per trial.")
@click.option(
    "--seed", type=int, default=None, help="Sampler seed (give each worker its own; default random)."
)
@count_option(
    "--heartbeat",
    low=1,
    default=30,
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
    from labelcycle.databases import ensure_database, refuse_password
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
    url = storage or refuse_password(p.storage_url(root), "tune.storage")
    ensure_database(url)
    study = open_study(name, make_storage(url, heartbeat, grace), seed=seed, pruning=p.pruning)
    click.echo(f"tune-worker: study {name} on {mask(url)}")
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
