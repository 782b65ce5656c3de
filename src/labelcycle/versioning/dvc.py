"""DVC access: the project root, tracking raw batches, recorded hashes, dependencies and params, the remote
and push.

Hashes come from what DVC recorded (``dvc.lock`` and ``.dvc`` files), in the workspace or at a git
revision; the remote functions open the DVC repository only when called.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from labelcycle import catalog
from labelcycle.errors import WorkspaceError
from labelcycle.versioning import git
from labelcycle.versioning.digest import file_md5

#: the folder whose ``.dvc`` files (``data/raw.dvc``) record data outside the pipeline
DATA_DIR = catalog.RAW_DVC.rpartition("/")[0]


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` that holds ``.dvc/`` (the project root)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir():
            return candidate
    raise WorkspaceError(
        f"{here} is not inside a DVC project (no .dvc/ folder found above it); run labelcycle from the "
        "project folder, or create one with `git init && dvc init`"
    )


def _repo(root: Path):
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.repo import Repo

    return Repo(str(root))


def track(root: Path, path: Path) -> None:
    """``dvc add`` a path (relative to root), staging the .dvc file in git where git is used."""
    try:
        with _repo(root) as repo:
            repo.add(str(path))
    except Exception as exc:  # DVC raises many types; turn them into one clear message
        raise WorkspaceError(f"dvc add {path} failed in {root}: {exc}") from exc


# -- recorded hashes ---------------------------------------------------------------------------------


def lock_outs(lock_text: str | bytes | None) -> dict[str, str]:
    """Output path -> md5 recorded in the text of a ``dvc.lock``."""
    data = yaml.safe_load(lock_text or "") or {}
    out = {}
    for stage in (data.get("stages") or {}).values():
        for entry in stage.get("outs", []) or []:
            if "md5" in entry:
                out[entry["path"]] = entry["md5"]
    return out


def dvc_file_outs(text: str | bytes | None, folder: str) -> dict[str, str]:
    """Output path (relative to the root) -> md5 recorded in the text of a ``.dvc`` file in ``folder``."""
    data = yaml.safe_load(text or "") or {}
    return {f"{folder}/{e['path']}".lstrip("/"): e["md5"] for e in data.get("outs", []) or [] if "md5" in e}


def _is_dvc_file(rel: str) -> bool:
    """A ``.dvc`` file at the top level or directly in the data folder."""
    folder, _, name = rel.rpartition("/")
    return name.endswith(".dvc") and folder in ("", DATA_DIR)


def _dvc_texts(root: Path, rev: str | None) -> tuple[str | bytes | None, dict[str, str | bytes | None]]:
    """The text of ``dvc.lock`` and of each top-level or data ``.dvc`` file, in the workspace or at ``rev``."""
    if rev is None:
        lock_path = root / catalog.DVC_LOCK
        lock = lock_path.read_text() if lock_path.exists() else None
        dvc_files: dict[str, str | bytes | None] = {
            str(p.relative_to(root)): p.read_text()
            for p in (*root.glob("*.dvc"), *root.glob(f"{DATA_DIR}/*.dvc"))
            if p.is_file()
        }
        return lock, dvc_files
    lock_bytes = git.show_file(root, rev, catalog.DVC_LOCK)
    files = {rel: git.show_file(root, rev, rel) for rel in git.list_files(root, rev) if _is_dvc_file(rel)}
    return lock_bytes, dict(files)


def recorded_hashes(root: Path, rev: str | None = None) -> dict[str, str]:
    """Path -> md5 of every output ``dvc.lock`` records and of every top-level or data ``.dvc`` file.

    Args:
        root: the project root.
        rev: read the files committed at this git revision (None: the workspace).
    """
    lock, dvc_files = _dvc_texts(root, rev)
    out = lock_outs(lock)
    for rel, text in sorted(dvc_files.items()):
        out.update(dvc_file_outs(text, rel.rpartition("/")[0]))
    return out


def _lock_stages(lock_text: str | bytes | None) -> dict[str, dict]:
    data = yaml.safe_load(lock_text or "") or {}
    return {str(k): v or {} for k, v in (data.get("stages") or {}).items()}


def lock_deps(lock_text: str | bytes | None) -> dict[str, dict]:
    """Dependency path -> its ``dvc.lock`` entry (``md5``, ``hash``, ``size``), over every stage."""
    return {e["path"]: e for st in _lock_stages(lock_text).values() for e in st.get("deps", []) or []}


def _tracked_roots(lock_text: str | bytes | None, dvc_files: Mapping[str, str | bytes | None]) -> list[str]:
    """Every path DVC tracks: the stages' outputs and what the ``.dvc`` files record."""
    roots = [e["path"] for st in _lock_stages(lock_text).values() for e in st.get("outs", []) or []]
    for rel, text in dvc_files.items():
        roots += list(dvc_file_outs(text, rel.rpartition("/")[0]))
    return roots


def _is_under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def source_deps(root: Path, rev: str | None = None) -> tuple[str, ...]:
    """The dependencies ``dvc.lock`` lists that git, not DVC, holds (stage scripts, ``src/`` code).

    A dependency that is a stage's output, or lies in data a ``.dvc`` file records, is DVC's; the rest
    must be committed for a commit to describe what was built.

    Args:
        root: the project root.
        rev: read ``dvc.lock`` and the ``.dvc`` files committed at this revision (None: the workspace).
    """
    lock, dvc_files = _dvc_texts(root, rev)
    tracked = _tracked_roots(lock, dvc_files)
    return tuple(sorted(p for p in lock_deps(lock) if not _is_under(p, tracked)))


def _param(params: Any, key: str) -> tuple[bool, Any]:
    node = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _differences(key: str, recorded: Any, now: Any) -> list[str]:
    if isinstance(recorded, Mapping) and isinstance(now, Mapping):
        out = []
        for k in sorted(set(recorded) | set(now), key=str):
            if k not in now:
                out.append(f"{key}.{k} is missing (recorded {recorded[k]!r})")
            elif k not in recorded:
                out.append(f"{key}.{k} = {now[k]!r} was not recorded")
            else:
                out += _differences(f"{key}.{k}", recorded[k], now[k])
        return out
    return [] if recorded == now else [f"{key} = {now!r} (recorded {recorded!r})"]


def lock_mismatches(root: Path, rev: str) -> tuple[str, ...]:
    """Where the files committed at ``rev`` disagree with that commit's ``dvc.lock``.

    Every parameter each stage recorded must have the same value in the params file at ``rev``, and
    every file dependency git holds must have the md5 recorded for it (folders, and files git does not
    hold at ``rev``, are not compared here).
    """
    lock, dvc_files = _dvc_texts(root, rev)
    problems = []
    texts: dict[str, Any] = {}
    for stage, entry in sorted(_lock_stages(lock).items()):
        for file, recorded in sorted((entry.get("params") or {}).items()):
            if file not in texts:
                raw = git.show_file(root, rev, file)
                texts[file] = None if raw is None else (yaml.safe_load(raw) or {})
            if texts[file] is None:
                problems.append(f"stage {stage}: {file} is not committed")
                continue
            for key, value in sorted((recorded or {}).items()):
                found, now = _param(texts[file], key)
                if not found:
                    problems.append(f"stage {stage}: {file} has no {key} (recorded {value!r})")
                else:
                    problems += [f"stage {stage}: {file} {d}" for d in _differences(key, value, now)]
    tracked = _tracked_roots(lock, dvc_files)
    for path, entry in sorted(lock_deps(lock).items()):
        md5 = str(entry.get("md5") or "")
        if _is_under(path, tracked) or entry.get("hash") != "md5" or not md5 or md5.endswith(".dir"):
            continue
        raw = git.show_file(root, rev, path)
        if raw is not None and hashlib.md5(raw).hexdigest() != md5:
            problems.append(f"{path} differs from what {catalog.DVC_LOCK} recorded")
    return tuple(problems)


def find_commit_with_outputs(root: Path, wanted: Mapping[str, str]) -> str | None:
    """The newest commit whose ``dvc.lock`` records every ``path -> md5`` in ``wanted``."""
    for commit in git.commits_touching(root, catalog.DVC_LOCK):
        outs = lock_outs(git.show_file(root, commit, catalog.DVC_LOCK))
        if all(outs.get(p) == md5 for p, md5 in wanted.items()):
            return commit
    return None


def out_of_sync(root: Path) -> tuple[str, ...]:
    """Workspace outputs whose content differs from what ``dvc.lock`` records, each with what to do.

    A file output is hashed; a folder output is only checked to exist (its content is left to
    ``dvc status``).
    """
    lock_path = root / catalog.DVC_LOCK
    problems = []
    for path, md5 in lock_outs(lock_path.read_text() if lock_path.exists() else "").items():
        p = root / path
        if md5.endswith(".dir") or not p.is_file():
            if not p.exists():
                problems.append(f"{path} missing (run `dvc checkout`)")
            continue
        if file_md5(p) != md5:
            problems.append(f"{path} changed since {catalog.DVC_LOCK}")
    return tuple(problems)


def cached_file(root: Path, md5: str) -> Path:
    """Where DVC keeps the file with this md5 in the local cache."""
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


# -- the remote ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteStatus:
    """Where the DVC objects of a revision are, relative to the default remote.

    Attributes:
        name: the default remote (None: the project configures none).
        url: its location (None without a default remote).
        total: objects the revision's outputs are made of.
        to_push: objects in the local cache that the remote lacks (all cached ones without a remote).
        missing: objects in neither the local cache nor the remote.
        error: why the remote could not be reached (None: reachable, or no remote).
    """

    name: str | None
    url: str | None
    total: int
    to_push: int
    missing: tuple[str, ...] = ()
    error: str | None = None


def folder_error(url: str) -> str | None:
    """Why a local remote ``url`` cannot be written (None: it can, or it is not a local folder)."""
    if "://" in url and not url.startswith("file://"):
        return None
    probe = Path(url.removeprefix("file://"))
    while not probe.exists():
        probe = probe.parent
    if probe.is_dir() and os.access(probe, os.W_OK):
        return None
    return f"{probe} is not a writable folder"


def remote_status(root: Path, rev: str | None = None) -> RemoteStatus:
    """Which of the objects of ``rev`` (None: the workspace) the default remote lacks; changes nothing.

    Raises:
        WorkspaceError: the DVC project cannot be read.
    """
    try:
        with _repo(root) as repo:
            used = repo.used_objs(revs=[rev] if rev else None, force=True, push=True)
            ids = [h for odb, hashes in used.items() if odb is None for h in hashes]
            name = repo.config["core"].get("remote")
            if not name:
                uncached = tuple(sorted(h.value for h in ids if not repo.cache.local.exists(h.value)))
                return RemoteStatus(None, None, len(ids), len(ids) - len(uncached), uncached)
            url = str(repo.config["remote"].get(name, {}).get("url", "?"))
            error = folder_error(url)
            if error is None:
                try:
                    st = repo.cloud.status(ids, remote=name)
                except Exception as exc:  # any transport error: unreachable
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    return RemoteStatus(
                        name, url, len(ids), len(st.new), tuple(sorted(h.value for h in st.missing))
                    )
            return RemoteStatus(name, url, len(ids), len(ids), (), error)
    except WorkspaceError:
        raise
    except Exception as exc:
        raise WorkspaceError(f"cannot read the DVC project at {root}: {type(exc).__name__}: {exc}") from exc


def configure_default_remote(root: Path, name: str, url: str) -> None:
    """Add ``name -> url`` as the default remote in ``.dvc/config.local`` (machine-local)."""
    Path(url).mkdir(parents=True, exist_ok=True)
    with _repo(root) as repo, repo.config.edit("local") as conf:
        conf["remote"][name] = {"url": url}
        conf["core"]["remote"] = name


def push(root: Path, remote: str, rev: str | None) -> int:
    """``dvc push`` the objects of ``rev`` (the workspace when None or HEAD) to ``remote``; objects sent.

    Raises:
        WorkspaceError: the push failed (nothing else was changed by it).
    """
    try:
        with _repo(root) as repo:
            if rev and rev != (git.head_commit(root) or ""):
                return int(repo.push(remote=remote, revs=[rev], workspace=False) or 0)
            return int(repo.push(remote=remote) or 0)
    except Exception as exc:
        raise WorkspaceError(
            f"dvc push to {remote!r} failed: {type(exc).__name__}: {exc}; nothing else was changed"
        ) from exc
