"""Registered model versions that no ``dvc.lock`` records: found and marked, never promotable.

``train_quality`` registers its model version while it runs; ``dvc`` writes ``dvc.lock`` only once the stage
has finished. A ``dvc`` killed in between leaves a registered version that no dataset version describes.
Every version the stage registers therefore carries the workspace it came from (:data:`TAG_WORKSPACE`)
and, once the stage's report is written, the report's md5 (:data:`TAG_REPORT_MD5`), which is what
``dvc.lock`` records for ``reports/train_quality.json``. :func:`mark_unrecorded` (run by the stage before
it registers the next version) tags each version of this workspace whose report md5 no ``dvc.lock`` holds,
in the workspace or on any git ref (experiments included), with :data:`TAG_UNRECORDED` and a description
(a version found in a commit is tagged :data:`TAG_RECORDED_IN` instead and never looked up again, so each run
reads only the history its new versions need);
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
#: model version tag: the commit whose dvc.lock records the version (set once found; later runs skip it)
TAG_RECORDED_IN = "labelcycle.recorded_in"
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


def where_recorded(root: Path, wanted: set[str]) -> dict[str, str]:
    """For each md5 of ``wanted`` that a ``dvc.lock`` records for the train_quality report: ``"workspace"``
    or the newest commit (any ref, experiments included) whose ``dvc.lock`` does. Commits are read newest
    first and only until every md5 is found."""
    path = catalog.TRAIN_QUALITY_REPORT
    lock = root / catalog.DVC_LOCK
    found: dict[str, str] = {}
    md5 = dvc.lock_outs(lock.read_text() if lock.exists() else "").get(path)
    if md5 in wanted:
        found[md5] = "workspace"
    if (root / ".git").exists():
        for commit in git.commits_touching(root, catalog.DVC_LOCK):
            if wanted <= found.keys():
                break
            md5 = dvc.lock_outs(git.show_file(root, commit, catalog.DVC_LOCK)).get(path)
            if md5 in wanted and md5 not in found:
                found[md5] = commit
    return found


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
        if v.tags.get(TAG_WORKSPACE) == me
        and not {TAG_UNRECORDED, TAG_RECORDED_IN} & set(v.tags)
        and str(v.version) not in aliased
    ]
    if not mine:
        return []
    recorded = where_recorded(root, {v.tags[TAG_REPORT_MD5] for v in mine if v.tags.get(TAG_REPORT_MD5)})
    marked = []
    for v in sorted(mine, key=lambda v: int(v.version)):
        where = recorded.get(v.tags.get(TAG_REPORT_MD5, ""))
        if where == "workspace":  # checked again next time: an uncommitted dvc.lock may be replaced
            continue
        if where:  # a commit records it for good: never walked for again
            client.set_model_version_tag(name, v.version, TAG_RECORDED_IN, where)
            continue
        client.set_model_version_tag(name, v.version, TAG_UNRECORDED, UNRECORDED_WHY)
        client.update_model_version(name, v.version, description=f"Not promotable: {UNRECORDED_WHY}.")
        marked.append(str(v.version))
    return marked
