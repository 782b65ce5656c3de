"""MLflow runs for pipeline stages and commands (the only package that imports mlflow).

Each stage run carries: its params, metrics, the git commit, DVC hashes of its inputs and outputs, its
data sets as MLflow dataset inputs with labelcycle's full-content digest, and the tag
``labelcycle.pipeline_run`` shared by every stage of one ``dvc repro`` / ``dvc exp run``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle.errors import TrackingError
from labelcycle.versioning import git

DEFAULT_EXPERIMENT = "labelcycle"
TAG_STAGE = "labelcycle.stage"
TAG_PIPELINE_RUN = "labelcycle.pipeline_run"
TAG_DVC_EXP = "dvc.exp_name"
TAG_DVC_BASELINE = "dvc.baseline_rev"


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the project's SQLite store ``mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').resolve()}"


def configure(root: Path) -> str:
    """Point MLflow at the project's store and experiment; returns the experiment id."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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
                location = (root / "mlartifacts").resolve().as_uri()
            exp_id = client.create_experiment(name, artifact_location=location)
        else:
            exp_id = exp.experiment_id
        mlflow.set_experiment(experiment_id=exp_id)
    except Exception as exc:
        raise TrackingError(
            f"cannot reach the MLflow tracking store at {uri} ({type(exc).__name__}: {exc}); "
            "start the server or unset MLFLOW_TRACKING_URI to use the local SQLite store"
        ) from exc
    return exp_id


def pipeline_run_id() -> str:
    """An id shared by every stage of one ``dvc repro`` / ``dvc exp run`` invocation.

    ``LABELCYCLE_PIPELINE_RUN`` wins when set; otherwise the id is derived from the ancestor DVC
    process (its pid and start time), which every stage of one invocation shares; outside DVC a
    fresh id is made.
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
    return uuid.uuid4().hex[:12]


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
        mlflow.log_params({k: (str(v)[:6000]) for k, v in flat.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import mlflow

        clean = {k: float(v) for k, v in metrics.items() if v is not None and pd.notna(v)}
        if clean:
            mlflow.log_metrics(clean, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_dataset(
        self, df: pd.DataFrame, name: str, context: str, digest: str, source: Path | str | None = None
    ) -> None:
        """Log a table as an MLflow dataset input with labelcycle's full-content digest."""
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
            mlflow.log_input(dataset, context=context, tags={"rows": str(len(df)), "digest": digest})
        mlflow.set_tag(f"dataset.{name}.digest", digest)
        mlflow.log_param(f"dataset.{name}.digest", digest)
        mlflow.log_metric(f"dataset.{name}.rows", len(df))

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
        all_tags = {
            "mlflow.parentRunId": self.run_id,
            "mlflow.runName": name,
            TAG_PIPELINE_RUN: self.run.data.tags.get(TAG_PIPELINE_RUN, ""),
            **(tags or {}),
        }
        child = client.create_run(
            self.run.info.experiment_id, tags={k: str(v) for k, v in all_tags.items()}, run_name=name
        )
        import time

        now = int(time.time() * 1000)
        client.log_batch(
            child.info.run_id,
            metrics=[
                Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and pd.notna(v)
            ],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[],
        )
        client.set_terminated(child.info.run_id, status=str((tags or {}).get("status", "FINISHED")))
        return child.info.run_id

    def log_figure(self, fig: Any, name: str) -> None:
        import mlflow

        mlflow.log_figure(fig, name)


@contextmanager
def stage_run(
    root: Path,
    stage: str,
    params: Mapping[str, Any] | None = None,
    run_name: str | None = None,
    nested: bool = False,
) -> Iterator[StageRun]:
    """Open an MLflow run for a stage with lineage tags; fails the run if the body raises."""
    import mlflow

    configure(root)
    commit = git.head_commit(root)
    tags = {
        TAG_STAGE: stage,
        TAG_PIPELINE_RUN: pipeline_run_id(),
        "mlflow.source.type": "JOB",
        "mlflow.source.name": f"stages/{stage}.py",
    }
    if commit:
        tags["mlflow.source.git.commit"] = commit
        tags["git.dirty"] = str(git.is_dirty(root))
        tags["git.branch"] = git.branch(root) or ""
    if os.environ.get("DVC_EXP_NAME"):
        tags[TAG_DVC_EXP] = os.environ["DVC_EXP_NAME"]
    if os.environ.get("DVC_EXP_BASELINE_REV"):
        tags[TAG_DVC_BASELINE] = os.environ["DVC_EXP_BASELINE_REV"]
    try:
        active = mlflow.start_run(run_name=run_name or stage, tags=tags, nested=nested)
    except Exception as exc:
        raise TrackingError(f"cannot start an MLflow run at {tracking_uri(root)}: {exc}") from exc
    with active as run:
        handle = StageRun(root, run)
        if params:
            handle.log_params(params)
        yield handle
