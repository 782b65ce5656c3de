"""Dataset versions on the MLflow side: pipeline runs as versions, their artefacts, the comparison run.

Every stage run of one ``dvc repro`` / ``dvc exp run`` shares the tag ``labelcycle.pipeline_run``; a
version named by any of those run ids is the group of sibling runs. The evaluate run holds
``predictions.parquet`` and the metrics; the curate run holds ``curated/labels.parquet`` and the
aggregate run ``curated/annotations.parquet``.

:func:`resolve_version` and :func:`load_version` are the entry points for any version name: MLflow run
ids here, the others through :mod:`labelcycle.versioning.versions`.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle import catalog
from labelcycle.errors import TrackingError, UnknownVersionError
from labelcycle.tracking.runs import TAG_DVC_BASELINE, TAG_DVC_EXP, TAG_PIPELINE_RUN, TAG_STAGE, configure
from labelcycle.versioning.versions import (
    KEY_METRICS,
    KEY_PARAMS,
    Version,
    VersionData,
    load_local,
    predictions_md5,
    resolve_local,
)

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
TAG_KIND = "labelcycle.kind"
COMPARISON = "comparison"
#: the tag the evaluate run's DVC md5 of the predictions is logged under
TAG_PREDICTIONS_MD5 = f"dvc.out.{catalog.PREDICTIONS}"


def _client(root: Path) -> Any:
    import mlflow

    configure(root)
    return mlflow.MlflowClient()


def _experiment_ids(client: Any) -> list[str]:
    return [e.experiment_id for e in client.search_experiments()]


def _stage_runs(client: Any, filter_string: str) -> list[Any]:
    runs = client.search_runs(
        _experiment_ids(client),
        filter_string=filter_string,
        max_results=5000,
        order_by=["attributes.start_time DESC"],
    )
    return [r for r in runs if r.data.tags.get(TAG_STAGE) and r.data.tags.get(TAG_KIND) != COMPARISON]


def _version_from_runs(spec: str, kind: str, runs: list[Any]) -> Version:
    run_ids: dict[str, str] = {}
    for r in runs:  # newest first: keep the newest run per stage
        run_ids.setdefault(r.data.tags[TAG_STAGE], r.info.run_id)
    tags: dict[str, str] = {}
    for r in reversed(runs):
        tags.update(r.data.tags)
    return Version(
        spec=spec,
        kind=kind,
        rev=tags.get("mlflow.source.git.commit"),
        exp_name=tags.get(TAG_DVC_EXP),
        pipeline_run=tags.get(TAG_PIPELINE_RUN),
        run_ids=run_ids,
    )


def resolve_run(root: Path, spec: str) -> Version | None:
    """The pipeline-run version that MLflow run ``spec`` belongs to; None when no such run exists."""
    if not RUN_ID.match(spec):
        return None
    client = _client(root)
    try:
        run = client.get_run(spec)
    except Exception:
        return None
    group = run.data.tags.get(TAG_PIPELINE_RUN)
    if not group:
        return Version(
            spec=spec,
            kind="mlflow_run",
            rev=run.data.tags.get("mlflow.source.git.commit"),
            run_ids={run.data.tags.get(TAG_STAGE, "run"): spec},
        )
    runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` = '{group}'")
    return _version_from_runs(spec, "mlflow_run", runs)


def resolve_version(root: Path, spec: str) -> Version:
    """A version name -> :class:`Version`: workspace, folder, DVC experiment, git revision or MLflow run id.

    Raises:
        UnknownVersionError: ``spec`` is none of those.
    """
    tried = "workspace, a project folder, a DVC experiment name, a git revision or tag"
    version = resolve_run(root, spec) if RUN_ID.match(spec) else None
    if version is None:
        version = resolve_local(root, spec)
    if version is None and not RUN_ID.match(spec):
        tried += ", an MLflow run id (32 hex characters)"
    if version is None:
        raise UnknownVersionError(
            f"unknown version {spec!r} in {root}: it is not {tried}; list versions with "
            "`labelcycle experiments` (or `dvc exp show`, `git tag`)"
        )
    return version


def load_version(root: Path, version: Version) -> VersionData:
    """The artefacts compare reads of ``version``: from MLflow for a run, else from git/DVC or the folder."""
    if version.kind == "mlflow_run":
        return load_run_version(root, version)
    return load_local(root, version)


def runs_for(root: Path, version: Version) -> Version:
    """``version`` with the MLflow runs that made it, if any.

    The pipeline run whose evaluate run tagged the same DVC md5 of the predictions wins
    (exact); otherwise the newest runs tagged with the version's DVC experiment name.
    """
    try:
        client = _client(root)
        runs: list[Any] = []
        md5 = predictions_md5(root, version)
        if md5:
            hits = _stage_runs(client, f"tags.`{TAG_PREDICTIONS_MD5}` = '{md5}'")
            if hits:
                group = hits[0].data.tags.get(TAG_PIPELINE_RUN)
                runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` = '{group}'")
        if not runs and version.exp_name:
            runs = _stage_runs(client, f"tags.`{TAG_DVC_EXP}` = '{version.exp_name}'")
            latest = runs[0].data.tags.get(TAG_PIPELINE_RUN) if runs else None
            runs = [r for r in runs if r.data.tags.get(TAG_PIPELINE_RUN) == latest]
    except TrackingError:
        return version
    if not runs:
        return version
    found = _version_from_runs(version.spec, version.kind, runs)
    return Version(
        spec=version.spec,
        kind=version.kind,
        rev=version.rev,
        exp_name=version.exp_name or found.exp_name,
        pipeline_run=found.pipeline_run,
        run_ids=found.run_ids,
        path=version.path,
    )


def _download(client: Any, run_id: str, artifact: str) -> Path | None:
    import mlflow

    tmp = tempfile.mkdtemp(prefix="labelcycle-artifact-")
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp))
    except Exception:
        return None


def load_run_version(root: Path, version: Version) -> VersionData:
    """Artefacts of an MLflow-run version, downloaded from its sibling stage runs."""
    client = _client(root)
    data = VersionData(version=version)
    evaluate = version.run_ids.get("evaluate")
    if evaluate:
        run = client.get_run(evaluate)
        path = _download(client, evaluate, "predictions.parquet")
        data.predictions = pd.read_parquet(path) if path else None
        data.metrics = {**run.data.metrics, "eval_digest": run.data.tags.get("eval_digest")}
    # the curate run holds the curated labels (the aggregate run's consensus is refined by curate);
    # the aggregate run holds the clean annotations
    for role, stage, name in (
        ("labels", "curate", "curated/labels.parquet"),
        ("annotations", "aggregate", "curated/annotations.parquet"),
    ):
        run_id = version.run_ids.get(stage)
        path = _download(client, run_id, name) if run_id else None
        if path:
            setattr(data, role, pd.read_parquet(path))
    params: dict[str, Any] = {}
    for run_id in version.run_ids.values():
        params.update(client.get_run(run_id).data.params)
    data.params = _nest(params)
    return data


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"aggregate.method": "x"}`` -> ``{"aggregate": {"method": "x"}}`` (first dot only)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        head, _, tail = key.partition(".")
        if tail and not head.startswith("dataset"):
            out.setdefault(head, {})
            if isinstance(out[head], dict):
                out[head][tail] = value
        else:
            out[key] = value
    return out


def pipeline_versions(root: Path) -> pd.DataFrame:
    """One row per pipeline run in MLflow: ids, git commit, DVC experiment, dataset digests, key params, metrics."""
    client = _client(root)
    runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` != ''")
    groups: dict[str, list[Any]] = {}
    for r in runs:
        groups.setdefault(r.data.tags[TAG_PIPELINE_RUN], []).append(r)
    rows = []
    for group, members in groups.items():
        members.sort(key=lambda r: r.info.start_time)
        tags: dict[str, str] = {}
        params: dict[str, str] = {}
        metrics: dict[str, float] = {}
        stages: dict[str, str] = {}
        for r in members:
            tags.update(r.data.tags)
            params.update(r.data.params)
            stages[r.data.tags[TAG_STAGE]] = r.info.run_id
            if r.data.tags[TAG_STAGE] == "evaluate":
                metrics = dict(r.data.metrics)
        version = stages.get("evaluate") or members[-1].info.run_id
        row: dict[str, Any] = {
            "version": version,
            "source": "mlflow",
            "pipeline_run": group,
            "dvc_exp": tags.get(TAG_DVC_EXP, ""),
            "git_rev": (tags.get("mlflow.source.git.commit") or "")[:10],
            "baseline_rev": (tags.get(TAG_DVC_BASELINE) or "")[:10],
            "started": pd.to_datetime(members[0].info.start_time, unit="ms", utc=True).strftime(
                "%Y-%m-%d %H:%M"
            ),
            "stages": ",".join(stages),
            "curated_digest": tags.get("curated_digest", "")[:12],
            "eval_digest": tags.get("eval_digest", "")[:12],
        }
        for k in KEY_PARAMS:
            row[k] = params.get(k, "")
        for k in KEY_METRICS:
            row[k] = metrics.get(k)
        rows.append(row)
    return pd.DataFrame(rows)


def log_comparison(
    root: Path,
    summary: Mapping[str, Any],
    tags: Mapping[str, str],
    metrics: Mapping[str, float],
    html: str | None,
) -> str:
    """Log a finished comparison as its own MLflow run linking both versions; returns its run id."""
    import mlflow

    configure(root)
    try:
        with mlflow.start_run(
            run_name=f"compare {tags.get('compare.base', '')} -> {tags.get('compare.candidate', '')}",
            tags={TAG_STAGE: "compare", TAG_KIND: COMPARISON, **tags},
        ) as run:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None and pd.notna(v)})
            mlflow.log_dict(json.loads(json.dumps(summary, default=str)), "comparison.json")
            if html is not None:
                mlflow.log_text(html, "comparison.html")
            return str(run.info.run_id)
    except Exception as exc:
        raise TrackingError(f"cannot log the comparison to MLflow ({type(exc).__name__}: {exc})") from exc
