"""Dataset versions on the MLflow side: pipeline runs as versions, their artefacts, the comparison run.

Every stage run of one ``dvc repro`` / ``dvc exp run`` shares the tag ``labelcycle.pipeline_run`` and is
nested under the version's parent run (:mod:`labelcycle.tracking.parents`; projects from before parent
runs have none). A version named by the parent's run id or by any stage run id is that group of runs.
The evaluate run holds ``predictions.parquet`` and the metrics; the curate run holds
``curated/labels.parquet`` and the aggregate run ``curated/annotations.parquet``; tables a run did not
log (the training sample, outputs of stages DVC did not rerun) are read from the DVC cache by the md5
the runs recorded.

:func:`resolve_version` is the one resolver of the VERSION grammar (workspace, a project folder, a git
revision or tag, a DVC experiment name, an MLflow run id) for ``compare``, ``promote``, ``status`` and
``experiments``; :func:`load_version` reads what compare needs; :func:`promotion_source` is what promote
needs.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from labelcycle import catalog
from labelcycle.errors import TrackingError, UnknownVersionError, WorkspaceError
from labelcycle.tracking.parents import KIND_VERSION, TAG_KIND, TAG_PARENT, TAG_RELEASE
from labelcycle.tracking.runs import TAG_DVC_BASELINE, TAG_DVC_EXP, TAG_PIPELINE_RUN, TAG_STAGE, configure
from labelcycle.versioning import git
from labelcycle.versioning.versions import (
    KEY_METRICS,
    KEY_PARAMS,
    WORKSPACE,
    Version,
    VersionData,
    load_local,
    predictions_md5,
    resolve_local,
)

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
COMPARISON = "comparison"
#: the tag the evaluate run's DVC md5 of the predictions is logged under
TAG_PREDICTIONS_MD5 = f"dvc.out.{catalog.PREDICTIONS}"
#: the tag prefix a parent run records its data sets' DVC md5 under (``dvc.md5.<path>``)
TAG_PARENT_MD5 = "dvc.md5."
#: what a version in the VERSION grammar can be, for messages
GRAMMAR = (
    "workspace, a project folder, a DVC experiment name, a git revision or tag (e.g. a release "
    "dataset/vN), or an MLflow run id (a version's parent run or any of its stage runs)"
)


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


def _parent_runs(client: Any, filter_string: str = "") -> list[Any]:
    """Parent runs (newest first), optionally narrowed by ``filter_string``."""
    base = f"tags.`{TAG_KIND}` = '{KIND_VERSION}'"
    return client.search_runs(
        _experiment_ids(client),
        filter_string=f"{base} and {filter_string}" if filter_string else base,
        max_results=5000,
        order_by=["attributes.start_time DESC"],
    )


def _parent_of(client: Any, group: str | None) -> Any | None:
    if not group:
        return None
    found = _parent_runs(client, f"tags.`{TAG_PIPELINE_RUN}` = '{group}'")
    return found[-1] if found else None  # the earliest: a racing duplicate is deleted, but be safe


def _version_from_runs(spec: str, kind: str, runs: list[Any], parent: Any | None = None) -> Version:
    run_ids: dict[str, str] = {}
    for r in runs:  # newest first: keep the newest run per stage
        run_ids.setdefault(r.data.tags[TAG_STAGE], r.info.run_id)
    tags: dict[str, str] = dict(parent.data.tags) if parent is not None else {}
    for r in reversed(runs):
        tags.update(r.data.tags)
    return Version(
        spec=spec,
        kind=kind,
        rev=tags.get("mlflow.source.git.commit"),
        exp_name=tags.get(TAG_DVC_EXP),
        pipeline_run=tags.get(TAG_PIPELINE_RUN),
        run_ids=run_ids,
        parent_run=parent.info.run_id if parent is not None else None,
        name=parent.info.run_name if parent is not None else None,
    )


def resolve_run(root: Path, spec: str) -> Version | None:
    """The version MLflow run ``spec`` (a parent or a stage run) belongs to; None when no such run exists."""
    if not RUN_ID.match(spec):
        return None
    client = _client(root)
    try:
        run = client.get_run(spec)
    except Exception:
        return None
    tags = run.data.tags
    group = tags.get(TAG_PIPELINE_RUN)
    if tags.get(TAG_KIND) == KIND_VERSION:
        runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` = '{group}'") if group else []
        return _version_from_runs(spec, "mlflow_run", runs, parent=run)
    if not group:
        return Version(
            spec=spec,
            kind="mlflow_run",
            rev=tags.get("mlflow.source.git.commit"),
            run_ids={tags.get(TAG_STAGE, "run"): spec},
        )
    runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` = '{group}'")
    parent = _parent_of(client, group) if tags.get(TAG_PARENT) else None
    return _version_from_runs(spec, "mlflow_run", runs, parent)


def resolve_version(root: Path, spec: str) -> Version:
    """A version name -> :class:`Version`: the one VERSION grammar (see :data:`GRAMMAR`).

    Raises:
        UnknownVersionError: ``spec`` is none of those.
    """
    version = resolve_run(root, spec) if RUN_ID.match(spec) else None
    if version is None:
        version = resolve_local(root, spec)
    if version is None:
        raise UnknownVersionError(
            f"unknown version {spec!r} in {root}: it is not {GRAMMAR}; list versions with "
            "`labelcycle experiments` (or `dvc exp show`, `git tag`)"
        )
    return version


def load_version(root: Path, version: Version) -> VersionData:
    """The artefacts compare reads of ``version``: from MLflow for a run, else from git/DVC or the folder."""
    if version.kind == "mlflow_run":
        return load_run_version(root, version)
    return load_local(root, version)


def runs_for(root: Path, version: Version) -> Version:
    """``version`` with the MLflow runs that made it (and its parent run), if any.

    The pipeline run whose evaluate run (or parent run) recorded the same DVC md5 of the predictions wins
    (exact); otherwise the newest runs tagged with the version's DVC experiment name.
    """
    try:
        client = _client(root)
        runs: list[Any] = []
        group = None
        md5 = predictions_md5(root, version)
        if md5:
            hits = _stage_runs(client, f"tags.`{TAG_PREDICTIONS_MD5}` = '{md5}'")
            if hits:
                group = hits[0].data.tags.get(TAG_PIPELINE_RUN)
            else:
                parents = _parent_runs(client, f"tags.`{TAG_PARENT_MD5}{catalog.PREDICTIONS}` = '{md5}'")
                group = parents[0].data.tags.get(TAG_PIPELINE_RUN) if parents else None
            if group:
                runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` = '{group}'")
        if not runs and version.exp_name:
            runs = _stage_runs(client, f"tags.`{TAG_DVC_EXP}` = '{version.exp_name}'")
            group = runs[0].data.tags.get(TAG_PIPELINE_RUN) if runs else None
            runs = [r for r in runs if r.data.tags.get(TAG_PIPELINE_RUN) == group]
        parent = _parent_of(client, group)
    except TrackingError:
        return version
    if not runs and parent is None:
        return version
    found = _version_from_runs(version.spec, version.kind, runs, parent)
    return replace(
        version,
        exp_name=version.exp_name or found.exp_name,
        pipeline_run=found.pipeline_run,
        run_ids=found.run_ids,
        parent_run=found.parent_run,
        name=found.name,
    )


@dataclass(frozen=True)
class PromotionSource:
    """What ``promote VERSION`` promotes, from the one VERSION grammar.

    Attributes:
        version: the resolved version.
        rev: the commit whose committed reports and ``dvc.lock`` describe it; None for the workspace.
        evaluate_run_id: the evaluate stage run that judged it, when known.
        source: how the release record names where it came from (``workspace``, ``git:<spec>``,
            ``exp:<spec>``, ``run:<evaluate run id>``).
    """

    version: Version
    rev: str | None
    evaluate_run_id: str | None
    source: str


def promotion_source(root: Path, spec: str | None) -> PromotionSource:
    """Resolve ``promote``'s VERSION (None: the workspace) to the commit and evaluate run to promote.

    A git revision at HEAD is the workspace. An MLflow run (parent or stage run) stands for its version's
    evaluate run and the commit whose ``dvc.lock`` records that run's outputs.

    Raises:
        UnknownVersionError: ``spec`` is not a version.
        WorkspaceError: a folder, a run of a version without an evaluate run, or one whose outputs no
            commit records.
    """
    from labelcycle.versioning.dvc import find_commit_with_outputs

    if not spec or spec == WORKSPACE:
        return PromotionSource(
            resolve_local(root, WORKSPACE) or Version(WORKSPACE, "workspace"), None, None, "workspace"
        )
    version = resolve_version(root, spec)
    if version.kind == "folder":
        raise WorkspaceError(
            f"{spec!r} is a folder of outputs, not a version of this project; promote the workspace, a git "
            "revision, a DVC experiment or an MLflow run"
        )
    if version.kind == "mlflow_run":
        evaluate = version.run_ids.get("evaluate")
        if not evaluate:
            raise WorkspaceError(
                f"MLflow run {spec} belongs to a version without an evaluate stage run; promote a version "
                "whose pipeline ran through evaluate (`labelcycle experiments` lists them)"
            )
        run = _client(root).get_run(evaluate)
        wanted = {
            p: run.data.tags[f"dvc.out.{p}"]
            for p in (catalog.PREDICTIONS, catalog.METRICS)
            if f"dvc.out.{p}" in run.data.tags
        }
        rev = find_commit_with_outputs(root, wanted) if wanted else None
        if rev is None:
            raise WorkspaceError(
                f"data-committed: no commit's {catalog.DVC_LOCK} records the outputs of evaluate run {evaluate} "
                f"({wanted}); commit {catalog.DVC_LOCK} (and {catalog.RAW_DVC}) after the `dvc repro` that made it"
            )
        return PromotionSource(version, rev, evaluate, f"run:{evaluate}")
    if version.rev and version.kind == "git" and version.rev == git.resolve_rev(root, "HEAD"):
        return PromotionSource(version, None, None, "workspace")
    linked = runs_for(root, version)
    kind = "exp" if version.kind == "dvc_exp" else "git"
    return PromotionSource(linked, version.rev, linked.run_ids.get("evaluate"), f"{kind}:{spec}")


def _download(client: Any, run_id: str, artifact: str) -> Path | None:
    import mlflow

    tmp = tempfile.mkdtemp(prefix="labelcycle-artifact-")
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=tmp))
    except Exception:
        return None


def _cached(root: Path, md5: str | None) -> pd.DataFrame | None:
    """A Parquet table from the local DVC cache by its md5 (None: not cached)."""
    from labelcycle.versioning.dvc import cached_file

    path = cached_file(root, md5) if md5 and not md5.endswith(".dir") else None
    return pd.read_parquet(path) if path is not None and path.is_file() else None


def _recorded_md5(runs: list[Any], path: str) -> str | None:
    """The DVC md5 of ``path`` a stage run (``dvc.out.<path>``) or parent run (``dvc.md5.<path>``) recorded."""
    for run in runs:
        for key in (f"dvc.out.{path}", f"{TAG_PARENT_MD5}{path}"):
            if run.data.tags.get(key):
                return str(run.data.tags[key])
    return None


def load_run_version(root: Path, version: Version) -> VersionData:
    """Artefacts of an MLflow-run version: downloaded from its stage runs, else from the DVC cache."""
    client = _client(root)
    data = VersionData(version=version)
    runs = {stage: client.get_run(run_id) for stage, run_id in version.run_ids.items()}
    parent = client.get_run(version.parent_run) if version.parent_run else None
    evaluate = version.run_ids.get("evaluate")
    if evaluate:
        run = runs["evaluate"]
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
    recorded = [r for r in (*runs.values(), parent) if r is not None]
    if data.labels is None:  # curate did not rerun in this pipeline run: the curated set from the DVC cache
        data.labels = _cached(
            root, _recorded_md5(recorded, catalog.LABELS) or _recorded_md5(recorded, catalog.DATASET)
        )
    data.train_sample = _cached(root, _recorded_md5(recorded, catalog.TRAIN_SAMPLE))
    data.items = _cached(root, _recorded_md5(recorded, catalog.ITEMS))
    params: dict[str, Any] = {}
    for run in runs.values():
        params.update(run.data.params)
    if parent is not None:  # the parent holds every stage's params, also of stages DVC did not rerun
        params.update(parent.data.params)
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
    """One row per version in MLflow: its parent run (id, name, release) or, for projects from before
    parent runs, its evaluate run; git commit, DVC experiment, data set digests, key params, metrics."""
    client = _client(root)
    runs = _stage_runs(client, f"tags.`{TAG_PIPELINE_RUN}` != ''")
    groups: dict[str, list[Any]] = {}
    for r in runs:
        groups.setdefault(r.data.tags[TAG_PIPELINE_RUN], []).append(r)
    parents: dict[str, Any] = {}
    for p in _parent_runs(client):  # newest first: keep the earliest per group (a racing duplicate)
        parents[p.data.tags.get(TAG_PIPELINE_RUN, "")] = p
    for group in parents:
        groups.setdefault(group, [])
    rows = []
    for group, members in groups.items():
        members.sort(key=lambda r: r.info.start_time)
        parent = parents.get(group)
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
        if parent is not None:  # the version's own record wins over what its stage runs logged
            tags.update(parent.data.tags)
            params.update(parent.data.params)
            metrics.update(parent.data.metrics)
        version = (
            parent.info.run_id if parent is not None else (stages.get("evaluate") or members[-1].info.run_id)
        )
        started = parent.info.start_time if parent is not None else members[0].info.start_time
        row: dict[str, Any] = {
            "version": version,
            "name": parent.info.run_name if parent is not None else "",
            "release": tags.get(TAG_RELEASE, ""),
            "source": "mlflow",
            "pipeline_run": group,
            "parent_run": parent.info.run_id if parent is not None else "",
            "dvc_exp": tags.get(TAG_DVC_EXP, ""),
            "git_rev": (tags.get("mlflow.source.git.commit") or "")[:10],
            "baseline_rev": (tags.get(TAG_DVC_BASELINE) or "")[:10],
            "started": pd.to_datetime(started, unit="ms", utc=True).strftime("%Y-%m-%d %H:%M"),
            "stages": ",".join(stages),
            "curated_digest": tags.get("curated_digest", "")[:12],
            "sample_digest": tags.get("train_sample_digest", "")[:12],
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
