"""MLflow runs for pipeline stages and commands (the only package that imports mlflow).

Each stage run carries: its params, metrics, the git commit, DVC hashes of its inputs and outputs, its
data sets as MLflow dataset inputs with labelcycle's full-content digest, and the tag
``labelcycle.pipeline_run`` shared by every stage of one ``dvc repro`` / ``dvc exp run``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle import catalog
from labelcycle.errors import TrackingError
from labelcycle.masking import mask, mask_mapping
from labelcycle.tracking import journal
from labelcycle.tracking.journal import TAG_END_REASON
from labelcycle.versioning import git

DEFAULT_EXPERIMENT = "labelcycle"
TAG_STAGE = "labelcycle.stage"
TAG_PIPELINE_RUN = "labelcycle.pipeline_run"
TAG_DVC_EXP = "dvc.exp_name"
TAG_DVC_BASELINE = "dvc.baseline_rev"

#: short HTTP retries and timeouts towards a tracking server, unless the user set their own: MLflow's
#: defaults (7 retries, backoff factor 2, 120 s timeout) make a dead server look like a hang for minutes
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the project's SQLite store (:data:`catalog.MLFLOW_DB`)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or local_store_uri(root)


def local_store_uri(root: Path) -> str:
    """The project's SQLite tracking store: ``sqlite:///<root>/mlflow.db``."""
    return f"sqlite:///{(root / catalog.MLFLOW_DB).resolve()}"


def configure(root: Path) -> str:
    """Point MLflow at the project's store and experiment; returns the experiment id.

    Also a reachability check: a tracking server that is down raises :class:`TrackingError` within
    seconds (see :data:`HTTP_DEFAULTS`), and runs an earlier process left open are closed as FAILED.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mlflow

    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    try:
        client = mlflow.MlflowClient()
        exp = client.get_experiment_by_name(name)
        if exp is None:
            location = None
            if uri.startswith("sqlite:") or "://" not in uri:
                location = (root / catalog.MLARTIFACTS).resolve().as_uri()
            try:
                exp_id = client.create_experiment(name, artifact_location=location)
            except Exception:
                # another pipeline created it at the same moment (RESOURCE_ALREADY_EXISTS): use theirs
                exp = client.get_experiment_by_name(name)
                if exp is None:
                    raise
                exp_id = exp.experiment_id
        else:
            exp_id = exp.experiment_id
        mlflow.set_experiment(experiment_id=exp_id)
    except Exception as exc:
        raise TrackingError(
            f"cannot reach the MLflow tracking store at {mask(uri)} ({describe_failure(exc)}); "
            "start the server (`labelcycle server`) or unset MLFLOW_TRACKING_URI to use the local SQLite store"
        ) from exc
    close_orphaned_runs(root, uri)
    return exp_id


def runs_table_url(base_url: str, experiment_id: str) -> str:
    """The MLflow UI's runs table of an experiment (MLflow 3 opens on a GenAI landing page otherwise)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"


def close_orphaned_runs(root: Path, uri: str | None = None) -> list[str]:
    """Mark FAILED every journalled run of this store whose process is gone; returns their ids."""
    return journal.close_orphaned_runs(root, uri or tracking_uri(root))


def describe_failure(exc: BaseException) -> str:
    """A short cause for a failed tracking request (the full chain stays in the exception's cause)."""
    text = str(exc)
    for needle, short in (
        ("Connection refused", "connection refused"),
        ("Read timed out", "read timed out"),
        ("timed out", "timed out"),
        ("Max retries exceeded", "no answer after retries"),
        ("RemoteDisconnected", "the server closed the connection"),
        ("Connection reset", "connection reset"),
        ("Connection aborted", "connection aborted"),
    ):
        if needle in text:
            return short
    first = text.strip().splitlines()[0] if text.strip() else ""
    return mask(f"{type(exc).__name__}: {first[:300]}")


def _is_tracking_failure(exc: BaseException) -> bool:
    """Whether an exception comes from talking to the tracking store (not from the stage's own work)."""
    from mlflow.exceptions import MlflowException

    try:
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return True
    except ImportError:  # pragma: no cover - requests comes with mlflow
        pass
    return isinstance(exc, MlflowException | ConnectionError | TimeoutError)


class _Terminated(SystemExit):
    """SIGTERM inside a stage run: unwinds like an exception so the run is closed as FAILED."""


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _end_run(status: str, reason: str | None) -> bool:
    """End the active run; False when the store did not accept it (the journal keeps it then)."""
    import mlflow
    from mlflow.tracking import fluent

    try:
        if reason:
            mlflow.set_tag(TAG_END_REASON, mask(reason)[:4000])
        mlflow.end_run(status)
        return True
    except Exception:
        # the run stays in the journal; pop it locally so this process does not try to end it again
        stack = fluent._active_run_stack.get()
        if stack:
            stack.pop()
        return False


def dvc_pipeline_run() -> str | None:
    """The id of the ``dvc repro`` / ``dvc exp run`` this process is a stage of, or None outside DVC.

    ``LABELCYCLE_PIPELINE_RUN`` wins when set; otherwise the id is derived from the ancestor DVC process
    (its pid and start time), which every stage of one invocation shares.
    """
    explicit = os.environ.get("LABELCYCLE_PIPELINE_RUN")
    if explicit:
        return explicit
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            cmd = " ".join(proc.cmdline())
            if "dvc" in cmd and any(w in cmd for w in (" repro", " exp ", " exp", "queue")):
                seed = f"{socket.gethostname()}:{proc.pid}:{proc.create_time()}"
                return hashlib.sha1(seed.encode()).hexdigest()[:12]
            proc = proc.parent()
    except Exception:  # psutil can fail on exotic platforms; grouping is a convenience
        pass
    return None


def pipeline_run_id() -> str:
    """An id shared by every stage of one ``dvc repro`` / ``dvc exp run`` invocation (see
    :func:`dvc_pipeline_run`); outside DVC a fresh id is made."""
    return dvc_pipeline_run() or uuid.uuid4().hex[:12]


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


class StageRun:
    """What a stage logs into its run; a thin layer over mlflow so stages never import it."""

    def __init__(self, root: Path, run: Any) -> None:
        self.root = root
        self.run = run
        self.run_id: str = run.info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        flat: dict[str, Any] = {}
        _flatten("", params, flat)
        mlflow.log_params({k: (str(v)[:6000]) for k, v in mask_mapping(flat).items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import mlflow

        clean = {k: float(v) for k, v in metrics.items() if v is not None and pd.notna(v)}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in mask_mapping(tags).items()})

    def log_dataset(
        self,
        df: pd.DataFrame,
        name: str,
        context: str,
        digest: str,
        source: Path | str | None = None,
        rows: int | None = None,
    ) -> None:
        """Log a table as an MLflow dataset input with labelcycle's full-content digest.

        ``rows``: the table's row count when ``df`` is only its first rows (a table never loaded whole).
        """
        rows = len(df) if rows is None else int(rows)
        import mlflow

        src = None
        if source is not None:
            p = Path(source)
            src = str(p if p.is_absolute() else (self.root / p).resolve())
        import warnings

        sample = df.head(1000)
        with warnings.catch_warnings():
            # "source can be interpreted in multiple ways" and integer-schema hints: metadata only
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_pandas(sample, source=src, name=name, digest=digest)
            mlflow.log_input(dataset, context=context, tags={"rows": str(rows), "digest": digest})
        mlflow.set_tag(f"dataset.{name}.digest", digest)
        mlflow.log_param(f"dataset.{name}.digest", digest)
        mlflow.log_metric(f"dataset.{name}.rows", rows)

    def log_training_data(
        self, sample: pd.DataFrame, rows: pd.DataFrame, rows_digest: str, curated_digest: str | None
    ) -> None:
        """What a model trained on, named apart from the curated set the sample was drawn from.

        Logs ``train_sample`` (the sample stage's output, with its own digest) and ``train_rows`` (the rows
        fitted: the sample less the gold eval items) as dataset inputs, and the tags ``sample_digest``,
        ``train_rows_digest`` and ``curated_digest`` (the curated set's, from the sample stage's report).
        """
        from labelcycle.versioning.digest import table_digest

        sample_digest = table_digest(sample)
        self.log_dataset(sample, "train_sample", "training", sample_digest, catalog.TRAIN_SAMPLE)
        self.log_dataset(rows, "train_rows", "training", rows_digest, catalog.TRAIN_SAMPLE)
        tags = {"sample_digest": sample_digest, "train_rows_digest": rows_digest}
        if curated_digest:
            tags["curated_digest"] = curated_digest
        self.set_tags(tags)

    def log_dvc_hashes(self, deps: list[str], outs: list[str]) -> None:
        """DVC md5 of each dependency and output (files hashed directly; folders from DVC's records)."""
        from labelcycle.versioning.digest import file_md5
        from labelcycle.versioning.dvc import recorded_hashes

        recorded = recorded_hashes(self.root)
        tags = {}
        for kind, paths in (("dep", deps), ("out", outs)):
            for rel in paths:
                p = self.root / rel
                md5 = file_md5(p) if p.is_file() else recorded.get(rel)
                if md5:
                    tags[f"dvc.{kind}.{rel}"] = md5
        self.set_tags(tags)

    def log_artifact(self, path: Path | str, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        import mlflow

        mlflow.log_dict(dict(data), name)

    def log_table(self, df: pd.DataFrame, name: str) -> None:
        """Log a DataFrame as a Parquet (and small ones also CSV) artifact."""
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            if path.suffix == ".csv":
                df.to_csv(path, index=False)
            else:
                df.to_parquet(path, index=False)
            mlflow.log_artifact(str(path))

    def log_child(
        self,
        name: str,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        """A finished child run nested under this one (works from any process: parent id as a tag)."""
        import mlflow
        from mlflow.entities import Metric, Param

        client = mlflow.MlflowClient()
        all_tags = mask_mapping(
            {
                "mlflow.parentRunId": self.run_id,
                "mlflow.runName": name,
                TAG_PIPELINE_RUN: self.run.data.tags.get(TAG_PIPELINE_RUN, ""),
                **(tags or {}),
            }
        )
        child = client.create_run(
            self.run.info.experiment_id, tags={k: str(v) for k, v in all_tags.items()}, run_name=name
        )

        now = int(time.time() * 1000)
        client.log_batch(
            child.info.run_id,
            metrics=[
                Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and pd.notna(v)
            ],
            params=[Param(k, str(v)) for k, v in mask_mapping(params).items()],
            tags=[],
        )
        client.set_terminated(child.info.run_id, status=str((tags or {}).get("status", "FINISHED")))
        return child.info.run_id

    def log_figure(self, fig: Any, name: str) -> None:
        import mlflow

        mlflow.log_figure(fig, name)


def _open_parent(root: Path, exp_id: str, pipeline_run: str, tags: Mapping[str, str]) -> str:
    """The parent run of this stage's version (see :mod:`labelcycle.tracking.parents`), marked RUNNING."""
    import mlflow

    from labelcycle.tracking import parents

    client = mlflow.MlflowClient()
    lineage = {k: v for k, v in tags.items() if k not in (TAG_STAGE, "mlflow.source.name")}
    parent = parents.open_parent(
        client, root, exp_id, pipeline_run, lineage, catalog.state_dir(root) / "locks", tags.get(TAG_DVC_EXP)
    )
    parents.stage_started(client, parent)
    return parent


def _parent_ended(root: Path, parent: str | None, stage: str, ok: bool) -> None:
    import mlflow

    from labelcycle.tracking import parents

    if parent is not None:
        parents.stage_ended(mlflow.MlflowClient(), root, parent, stage, ok)


@contextmanager
def stage_run(
    root: Path,
    stage: str,
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    nested: bool = False,
) -> Iterator[StageRun]:
    """Open an MLflow run for a stage with lineage tags; fails the run if the body raises.

    Inside ``dvc repro`` / ``dvc exp run`` (or with ``LABELCYCLE_PIPELINE_RUN`` set) the run is nested under
    its version's parent run, which it updates when it ends (:mod:`labelcycle.tracking.parents`).
    """
    import mlflow

    exp_id = configure(root)
    commit = git.head_commit(root)
    pipeline = dvc_pipeline_run()
    tags = {
        TAG_STAGE: stage,
        TAG_PIPELINE_RUN: pipeline or pipeline_run_id(),
        "mlflow.source.type": "JOB",
        "mlflow.source.name": f"{catalog.STAGES_DIR}/{stage}.py",
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.dirty"] = str(git.is_dirty(root))
        tags["git.branch"] = git.branch(root) or ""
    if os.environ.get("DVC_EXP_NAME"):
        tags[TAG_DVC_EXP] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        tags[TAG_DVC_BASELINE] = os.environ["DVC_EXP_BASELINE_REV"]
    uri = tracking_uri(root)
    parent = None
    try:
        if pipeline and not nested:
            parent = _open_parent(root, exp_id, pipeline, tags)
            tags["mlflow.parentRunId"] = parent
        run = mlflow.start_run(run_name=run_name or stage, tags=tags, nested=nested)
    except Exception as exc:
        raise TrackingError(f"cannot start an MLflow run at {mask(uri)}: {describe_failure(exc)}") from exc
    entry = journal.add(root, run.info.run_id, uri, stage, parent)
    try:
        with _sigterm_unwinds():
            handle = StageRun(root, run)
            if params:
                handle.log_params(params)
            yield handle
            _parent_ended(root, parent, stage, ok=True)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            reason = (
                "interrupted (SIGTERM)"
                if isinstance(exc, _Terminated)
                else f"interrupted ({type(exc).__name__})"
            )
        else:
            reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        closed = _end_run("FAILED", reason)
        with contextlib.suppress(Exception):  # the store may be what failed: the journal closes it later
            _parent_ended(root, parent, stage, ok=False)
        if entry is not None:
            journal.settle(entry, closed)
        if isinstance(exc, Exception) and not isinstance(exc, TrackingError) and _is_tracking_failure(exc):
            state = (
                "is marked FAILED"
                if closed
                else "could not be closed; the next stage that reaches the store marks it FAILED"
            )
            raise TrackingError(
                f"stage {stage}: the MLflow tracking store at {mask(uri)} failed mid-run ({describe_failure(exc)}); "
                f"run {run.info.run_id} {state}. Nothing of this stage is recorded in {catalog.DVC_LOCK}; once "
                "the store is back, rerun `dvc repro`"
            ) from exc
        raise
    finished = _end_run("FINISHED", None)
    if entry is not None:
        journal.settle(entry, finished)
    if not finished:
        raise TrackingError(
            f"stage {stage}: the MLflow tracking store at {mask(uri)} did not accept the end of run {run.info.run_id}; "
            f"nothing of this stage is recorded in {catalog.DVC_LOCK}; once the server is back, rerun `dvc repro`"
        )
