"""Registered model versions that no ``dvc.lock`` records: found and marked, never promotable.

``train_quality`` registers its model version while it runs; ``dvc`` writes ``dvc.lock`` only once the stage
has finished. A ``dvc`` killed in between leaves a registered version that no dataset version describes.
Every version the stage registers therefore carries the workspace it came from (:data:`TAG_WORKSPACE`)
and, once the stage's report is written, the report's md5 (:data:`TAG_REPORT_MD5`), which is what
``dvc.lock`` records for ``reports/train_quality.json``. :func:`mark_unrecorded` (run by the stage before
it registers the next version) tags each version of this workspace whose report md5 no ``dvc.lock`` holds,
in the workspace or on any git ref (experiments included), with :data:`TAG_UNRECORDED` and a description;
versions of other workspaces sharing the registry are left alone, and so is any version holding an alias.
Promotion refuses such a version anyway (its commit gate); the tag says why in the registry itself.
"""

from __future__ import annotations

import socket
from pathlib import Path

from labelcycle import catalog
from labelcycle.versioning import dvc, git
from labelcycle.versioning.digest import file_md5

#: model version tag: the host and folder of the workspace whose stage registered it
TAG_WORKSPACE = "labelcycle.workspace"
#: model version tag: md5 of the stage report naming the version (what dvc.lock records once the stage ends)
TAG_REPORT_MD5 = "labelcycle.train_report_md5"
#: model version tag: why no dvc.lock records the version (absent on recorded versions)
TAG_UNRECORDED = "labelcycle.unrecorded"

UNRECORDED_WHY = (
    f"no {catalog.DVC_LOCK} records this version, in the workspace or on any git ref: the dvc run that "
    f"trained it was interrupted before {catalog.DVC_LOCK} was written, or its {catalog.DVC_LOCK} was "
    "never committed and has been replaced since; no dataset version describes it and it cannot be promoted"
)


def workspace_id(root: Path) -> str:
    return f"{socket.gethostname()}:{Path(root).resolve()}"


def _client():
    import mlflow

    return mlflow.MlflowClient()


def tag_registered(root: Path, name: str, version: str) -> None:
    """Mark a version just registered by this workspace's stage (done right after registering)."""
    _client().set_model_version_tag(name, version, TAG_WORKSPACE, workspace_id(root))


def tag_report(name: str, version: str, report: Path) -> str:
    """Record the md5 of the stage report that names ``version``; returns it."""
    md5 = file_md5(report)
    _client().set_model_version_tag(name, version, TAG_REPORT_MD5, md5)
    return md5


def recorded_report_md5s(root: Path) -> set[str]:
    """md5s ``dvc.lock`` records for the train_quality report: the workspace's and every commit's."""
    path = catalog.TRAIN_QUALITY_REPORT
    lock = root / catalog.DVC_LOCK
    found = {dvc.lock_outs(lock.read_text() if lock.exists() else "").get(path)}
    if (root / ".git").exists():
        for commit in git.commits_touching(root, catalog.DVC_LOCK):
            found.add(dvc.lock_outs(git.show_file(root, commit, catalog.DVC_LOCK)).get(path))
    return {md5 for md5 in found if md5}


def mark_unrecorded(root: Path, name: str) -> list[str]:
    """Tag this workspace's versions of ``name`` that no ``dvc.lock`` records; returns the versions newly
    tagged (oldest first)."""
    client = _client()
    from mlflow.exceptions import MlflowException

    me = workspace_id(root)
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []  # nothing registered yet
        raise
    aliased = {str(v) for v in (model.aliases or {}).values()}
    mine = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if v.tags.get(TAG_WORKSPACE) == me and TAG_UNRECORDED not in v.tags and str(v.version) not in aliased
    ]
    if not mine:
        return []
    recorded = recorded_report_md5s(root)
    marked = []
    for v in sorted(mine, key=lambda v: int(v.version)):
        if v.tags.get(TAG_REPORT_MD5) in recorded:
            continue
        client.set_model_version_tag(name, v.version, TAG_UNRECORDED, UNRECORDED_WHY)
        client.update_model_version(name, v.version, description=f"Not promotable: {UNRECORDED_WHY}.")
        marked.append(str(v.version))
    return marked
