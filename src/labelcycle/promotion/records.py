"""What is recorded about releases: the registry/git state, release records and the audit history.

Reads only, through the adapters (:class:`~labelcycle.tracking.registry.Registry` for MLflow,
:mod:`labelcycle.versioning.git` for tags); shared by fact gathering, execution, status and rollback.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from labelcycle import catalog
from labelcycle.errors import WorkspaceError
from labelcycle.promotion import plan as P
from labelcycle.promotion.release import RELEASE_ID_PREFIX, Release, release_number
from labelcycle.promotion.rollback import AuditEntry
from labelcycle.tracking.registry import RECORDS_EXPERIMENT, Registry, RunRef
from labelcycle.versioning import git

#: artifacts of a release record and of an audit record
MANIFEST = "manifest.json"
PREDICTIONS = Path(catalog.PREDICTIONS).name
AUDIT_PLAN = "plan.json"


def release_git_tags(root: Path) -> dict[str, str]:
    """The git tags that record releases (``dataset/vN``) -> their commits."""
    return git.tags(root, RELEASE_ID_PREFIX)


def registry_state(
    registry: Registry,
    root: Path,
    names: set[str],
    versions: set[tuple[str, str]],
    tag_keys: set[str] | None = None,
) -> P.RegistryState:
    """The ``production`` alias of each of ``names``, labelcycle's tags (and ``tag_keys``) on each of
    ``versions``, and every release's git tag."""
    aliases = {n: registry.alias(n, P.ALIAS) for n in sorted(names)}
    version_tags = {}
    for name, version in sorted(versions):
        tags = registry.version_tags(name, version)
        keys = set(tag_keys or ()) | {k for k in tags if k.startswith("labelcycle.")}
        version_tags[f"{name}/{version}"] = {k: tags.get(k) for k in sorted(keys)}
    return P.RegistryState(aliases, version_tags, release_git_tags(root))


def state_for(registry: Registry, root: Path, *states: P.RegistryState) -> P.RegistryState:
    """The state now of everything ``states`` name: their aliases, their model versions' tags (with the
    tag keys they hold), and every release's git tag."""
    names = {n for s in states for n in s.aliases}
    versions = {tuple(k.rsplit("/", 1)) for s in states for k in s.version_tags}
    keys = {k for s in states for tags in s.version_tags.values() for k in tags}
    return registry_state(registry, root, names, {(n, v) for n, v in versions}, keys)


def find_release_record(registry: Registry, rid: str) -> RunRef | None:
    """The release record of release ``rid`` (None when there is none)."""
    return next((r for r in registry.records("release") if r.tags.get(P.TAG_RELEASE) == rid), None)


def current_release_id(registry: Registry, quality_model: str) -> str | None:
    """The release whose quality model ``quality_model@production`` points at (None: no production).

    Raises:
        WorkspaceError: the alias was set outside labelcycle (its version names no release).
    """
    version = registry.alias(quality_model, P.ALIAS)
    if version is None:
        return None
    rid = registry.version_tags(quality_model, version).get(P.TAG_RELEASE)
    if not rid:
        raise WorkspaceError(
            f"{quality_model}@{P.ALIAS} points at v{version}, which carries no {P.TAG_RELEASE} tag: it was "
            "set outside labelcycle. Remove the alias or promote with labelcycle so a release record exists"
        )
    return rid


def load_release(registry: Registry, rid: str) -> tuple[Release, pd.DataFrame | None, str]:
    """Release ``rid`` from its release record: the release, its per-item predictions, the record's run id.

    Raises:
        WorkspaceError: no release record names ``rid``.
    """
    run = find_release_record(registry, rid)
    if run is None:
        raise WorkspaceError(f"no release record for {rid} in the MLflow experiment {RECORDS_EXPERIMENT!r}")
    release = Release.from_manifest(registry.read_json(run.run_id, MANIFEST))
    return release, registry.read_table(run.run_id, PREDICTIONS), run.run_id


def next_release_number(registry: Registry, root: Path) -> int:
    """One more than the highest release number any record (deleted or cut short ones too) or git tag
    uses: a number once used is never used again."""
    used = registry.search_records(
        f"tags.`{P.TAG_RELEASE}` LIKE '{RELEASE_ID_PREFIX}%'", include_deleted=True
    )
    numbers = [release_number(r.tags.get(P.TAG_RELEASE)) for r in used]
    numbers += [release_number(t) for t in release_git_tags(root)]
    return max([n for n in numbers if n is not None], default=0) + 1


def audit_history(registry: Registry) -> list[AuditEntry]:
    """Every promotion and rollback, newest first (their recorded ``before`` states are not read)."""
    return [
        AuditEntry(
            r.run_id,
            r.tags.get(P.TAG_ACTION, ""),
            r.tags.get(P.TAG_RELEASE) or None,
            r.tags.get(P.TAG_FROM) or None,
            P.RegistryState(),
            r.tags.get(P.TAG_AT, ""),
            r.tags.get(P.TAG_UNDONE) == "true",
        )
        for r in registry.records("audit")
    ]
