"""The parent MLflow run of a dataset version: one per ``dvc repro`` / ``dvc exp run``, every stage run nested.

The first stage of a pipeline run finds or creates the parent (keyed by the ``labelcycle.pipeline_run`` tag
all its stages share; race-safe: under a file lock, and should two processes still create one each, the
earliest stays and the other is deleted). The parent is named for people (:func:`version_name`: the DVC
experiment, else the short git revision and what changed; the release id once promoted, see
:func:`tag_release`) and carries the params that define the version, its data sets (MLflow dataset inputs
with labelcycle's full-content digests, and ``dataset.<name>.digest`` params so that Compare shows them),
the headline metrics with their intervals and the majority baseline, and the git and DVC lineage. Every
stage run adds the facts current when it ends (:func:`labelcycle.versioning.lineage.version_facts`); its
status follows the stages (RUNNING while one runs, FAILED when one failed).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from labelcycle.masking import mask, mask_mapping
from labelcycle.tracking.runs import TAG_PIPELINE_RUN
from labelcycle.versioning.lineage import DatasetFact, version_facts, version_name, version_params

TAG_KIND = "labelcycle.kind"
KIND_VERSION = "version"
#: the release id (``dataset/vN``) of a promoted version
TAG_RELEASE = "labelcycle.release"
#: the name the version had before it was released
TAG_VERSION_NAME = "labelcycle.version_name"
TAG_STAGES = "labelcycle.stages"
TAG_FAILED_STAGE = "labelcycle.failed_stage"
TAG_PARENT = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
TAG_NOTE = "mlflow.note.content"
#: MLflow accepts at most this many params / metrics / tags per batch request
BATCH = 100


def _search(client: Any, experiment_ids: list[str], pipeline_run: str) -> list[Any]:
    runs = client.search_runs(
        experiment_ids,
        filter_string=f"tags.`{TAG_PIPELINE_RUN}` = '{pipeline_run}' and tags.`{TAG_KIND}` = '{KIND_VERSION}'",
        max_results=50,
    )
    return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))


def find_parent(client: Any, pipeline_run: str, experiment_ids: list[str] | None = None) -> Any | None:
    """The parent run of ``pipeline_run`` (in ``experiment_ids``, default all), or None."""
    ids = experiment_ids or [e.experiment_id for e in client.search_experiments()]
    runs = _search(client, ids, pipeline_run)
    return runs[0] if runs else None


@contextlib.contextmanager
def _lock(folder: Path, pipeline_run: str) -> Iterator[None]:
    """An exclusive lock per pipeline run on this machine (a no-op where the folder cannot be written)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / f"parent-{pipeline_run}.lock").open("w")
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def open_parent(
    client: Any,
    root: Path,
    experiment_id: str,
    pipeline_run: str,
    lineage: Mapping[str, str],
    lock_dir: Path,
    exp_name: str | None = None,
) -> str:
    """Find or create the parent run of ``pipeline_run``; returns its id.

    Args:
        client: an ``MlflowClient`` on the project's store.
        root: the project (params and git are read for a new parent).
        experiment_id: the experiment the stage runs go to.
        pipeline_run: the id all stages of one ``dvc repro`` / ``dvc exp run`` share.
        lineage: git and DVC tags of the version (commit, branch, experiment name, baseline).
        lock_dir: where the per-pipeline-run lock file goes.
        exp_name: the DVC experiment name, if any (the parent's name then).
    """
    found = _search(client, [experiment_id], pipeline_run)
    if found:
        return str(found[0].info.run_id)
    with _lock(lock_dir, pipeline_run):
        found = _search(client, [experiment_id], pipeline_run)
        if found:
            return str(found[0].info.run_id)
        name = version_name(root, exp_name)
        tags = {**lineage, TAG_KIND: KIND_VERSION, TAG_PIPELINE_RUN: pipeline_run, TAG_VERSION_NAME: name}
        run = client.create_run(
            experiment_id, run_name=name, tags={k: str(v) for k, v in mask_mapping(tags).items()}
        )
        mine = str(run.info.run_id)
        # another machine may have created one in the same moment: the earliest stays, the others go
        winner = str(_search(client, [experiment_id], pipeline_run)[0].info.run_id)
        if winner != mine:
            client.delete_run(mine)
            return winner
        log_params(client, mine, version_params(root))
        return mine


def log_params(client: Any, run_id: str, params: Mapping[str, Any]) -> None:
    """Log ``params`` the run lacks (secrets masked, values cut to MLflow's 6000 characters), in batches."""
    from mlflow.entities import Param

    have = client.get_run(run_id).data.params
    todo = [Param(k, str(mask(v))[:6000]) for k, v in params.items() if k not in have]
    for i in range(0, len(todo), BATCH):
        client.log_batch(run_id, params=todo[i : i + BATCH])


def stage_started(client: Any, parent_id: str) -> None:
    """The parent shows RUNNING while a stage runs."""
    client.update_run(parent_id, status="RUNNING")


def stage_ended(client: Any, root: Path, parent_id: str, stage: str, ok: bool) -> None:
    """Record a stage's end on the parent: the facts now current (when ``ok``), the stages that ran, status.

    Raises:
        Exception: whatever the tracking store raises (the caller turns it into a TrackingError).
    """
    from mlflow.entities import Metric, RunTag

    run = client.get_run(parent_id)
    tags = dict(run.data.tags)
    stages = [s for s in tags.get(TAG_STAGES, "").split(",") if s]
    new_tags = {TAG_STAGES: ",".join(dict.fromkeys([*stages, stage]))}
    if ok:
        have = {i.dataset.name for i in (run.inputs.dataset_inputs if run.inputs else [])}
        facts = version_facts(root, stage, skip=have)
        log_datasets(client, parent_id, facts.datasets)
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in facts.metrics.items()]
        for i in range(0, len(metrics), BATCH):
            client.log_batch(parent_id, metrics=metrics[i : i + BATCH])
        new_tags.update(facts.tags)
        if tags.get(TAG_FAILED_STAGE) == stage:
            new_tags[TAG_FAILED_STAGE] = ""
    else:
        new_tags[TAG_FAILED_STAGE] = stage
    client.log_batch(parent_id, tags=[RunTag(k, str(mask(v))) for k, v in new_tags.items()])
    refreshed = client.get_run(parent_id)
    client.set_tag(
        parent_id,
        TAG_NOTE,
        describe(refreshed.info.run_name, refreshed.data.params, refreshed.data.metrics, refreshed.data.tags),
    )
    failed = (not ok) or bool(refreshed.data.tags.get(TAG_FAILED_STAGE))
    client.set_terminated(parent_id, status="FAILED" if failed else "FINISHED")


def log_datasets(client: Any, run_id: str, datasets: tuple[DatasetFact, ...]) -> None:
    """Each data set as an MLflow dataset input (no table is read: digest, rows and source only), and as
    ``dataset.<name>.digest`` param and ``dataset.<name>.rows`` metric (shown by the runs Compare page)."""
    if not datasets:
        return
    from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

    inputs = []
    for d in datasets:
        profile = json.dumps({"num_rows": d.rows} if d.rows is not None else {})
        source = json.dumps({"uri": d.path, **({"dvc_md5": d.dvc_md5} if d.dvc_md5 else {})})
        tags = [InputTag("mlflow.data.context", d.context), InputTag("digest", d.digest)]
        if d.rows is not None:
            tags.append(InputTag("rows", str(d.rows)))
        inputs.append(DatasetInput(Dataset(d.name, d.digest, "local", source, None, profile), tags))
    client.log_inputs(run_id, datasets=inputs)
    log_params(client, run_id, {f"dataset.{d.name}.digest": d.digest for d in datasets})
    now = int(time.time() * 1000)
    rows = [Metric(f"dataset.{d.name}.rows", float(d.rows), now, 0) for d in datasets if d.rows is not None]
    if rows:
        client.log_batch(run_id, metrics=rows)


def describe(
    name: str, params: Mapping[str, str], metrics: Mapping[str, float], tags: Mapping[str, str]
) -> str:
    """The parent's description (Markdown, shown on its run page): what the version is, in words."""
    lines = [f"**Dataset version {name}**"]
    if tags.get(TAG_RELEASE):
        lines.append(f"Released as `{tags[TAG_RELEASE]}` (was `{tags.get(TAG_VERSION_NAME, name)}`).")
    method = params.get("aggregate.method")
    action = params.get("curate.action")
    if method:
        lines.append(f"Labels by `{method}`" + (f", curated with `{action}`." if action else "."))
    for ds, what in (
        ("raw", "raw annotations"),
        ("curated", "curated items"),
        ("train_sample", "items trained on"),
        ("eval", "gold eval items"),
    ):
        digest = params.get(f"dataset.{ds}.digest")
        if digest:
            rows = metrics.get(f"dataset.{ds}.rows")
            count = f"{int(rows)} " if rows is not None else ""
            lines.append(f"- {count}{what} (`{ds}`, digest `{digest}`)")
    shown = []
    for m in ("macro_f1", "accuracy"):
        if m in metrics:
            ci = (
                f" [{metrics[f'{m}_ci_low']:.4f}, {metrics[f'{m}_ci_high']:.4f}]"
                if f"{m}_ci_low" in metrics and f"{m}_ci_high" in metrics
                else ""
            )
            base = (
                f" (majority baseline {metrics[f'baseline.{m}']:.4f})" if f"baseline.{m}" in metrics else ""
            )
            shown.append(f"{m} {metrics[m]:.4f}{ci}{base}")
    if shown:
        lines.append("Eval: " + "; ".join(shown) + ".")
    commit = tags.get("mlflow.source.git.commit")
    if commit:
        exp = tags.get("dvc.exp_name")
        lines.append(
            f"git {commit[:10]}"
            + (f", DVC experiment `{exp}`" if exp else "")
            + (f"; stages run: {tags[TAG_STAGES]}" if tags.get(TAG_STAGES) else "")
        )
    if tags.get(TAG_FAILED_STAGE):
        lines.append(f"Stage `{tags[TAG_FAILED_STAGE]}` FAILED.")
    return "\n\n".join(lines)


def tag_release(root_or_client: Path | Any, pipeline_run: str | None, release_id: str) -> str | None:
    """Name the parent run of ``pipeline_run`` after its release (``dataset/vN``) and tag it.

    Promotion calls this once the release is recorded. Versions of older projects have no parent run:
    then nothing happens and None is returned; otherwise the parent's run id.

    Args:
        root_or_client: the project root (its tracking store is used) or an ``MlflowClient``.
        pipeline_run: the ``labelcycle.pipeline_run`` tag of the release's evaluate run.
        release_id: e.g. ``dataset/v3``.
    """
    if not pipeline_run:
        return None
    if isinstance(root_or_client, Path):
        import mlflow

        from labelcycle.tracking.runs import configure

        configure(root_or_client)
        client = mlflow.MlflowClient()
    else:
        client = root_or_client
    parent = find_parent(client, pipeline_run)
    if parent is None:
        return None
    run_id = str(parent.info.run_id)
    tags = dict(parent.data.tags)
    client.set_tag(run_id, TAG_VERSION_NAME, tags.get(TAG_VERSION_NAME) or parent.info.run_name)
    client.set_tag(run_id, TAG_RELEASE, release_id)
    client.update_run(run_id, name=release_id)
    fresh = client.get_run(run_id)
    client.set_tag(
        run_id, TAG_NOTE, describe(release_id, fresh.data.params, fresh.data.metrics, fresh.data.tags)
    )
    return run_id
