"""Git and DVC side of a release: ``dataset/vN`` tags, committed-data facts, the DVC remote and push.

The embedded default DVC remote is a local directory beside the project, ``../<project>-dvc-remote``
(named :data:`DEFAULT_REMOTE`). When the project has no default remote, promotion configures this one
in ``.dvc/config.local`` (machine-local: a directory remote is only reachable from this machine, and the
committed ``.dvc/config`` stays untouched). Set a shared remote with ``dvc remote add -d NAME URL`` and
promotion pushes there instead.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from labelcycle.errors import WorkspaceError
from labelcycle.promotion.gates import CommitFacts, RemoteFacts
from labelcycle.promotion.release import GIT_TAG_PREFIX
from labelcycle.versioning.digest import file_md5

DEFAULT_REMOTE = "labelcycle-local"
REQUIRED = ("dvc.lock", "data/raw.dvc")


def _git(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.setdefault("GIT_AUTHOR_NAME", "labelcycle")
    env.setdefault("GIT_AUTHOR_EMAIL", "labelcycle@localhost")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    res = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=60, env=env, check=False
    )
    if check and res.returncode != 0:
        raise WorkspaceError(
            f"git {' '.join(args)} failed in {root}: {res.stderr.strip() or res.stdout.strip()}"
        )
    return res


def dataset_tags(root: Path) -> dict[str, str]:
    """``dataset/vN`` git tag -> the commit it points at."""
    res = _git(
        root,
        "for-each-ref",
        "--format=%(refname:strip=2) %(objectname) %(*objectname)",
        f"refs/tags/{GIT_TAG_PREFIX.rsplit('/', 1)[0]}/",
    )
    out = {}
    for line in res.stdout.splitlines() if res.returncode == 0 else []:
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = parts[2] if len(parts) > 2 else parts[1]
    return out


def set_tag(root: Path, tag: str, commit: str | None, message: str = "") -> None:
    """Create (or move) an annotated tag at ``commit``; ``commit`` None deletes the tag."""
    if commit is None:
        _git(root, "tag", "-d", tag, check=True)
        return
    _git(root, "tag", "-f", "-a", tag, commit, "-m", message or tag, check=True)


def show(root: Path, rev: str, path: str) -> bytes | None:
    """A file's content at ``rev`` (None when absent)."""
    res = subprocess.run(
        ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, timeout=60, check=False
    )
    return res.stdout if res.returncode == 0 else None


def resolve(root: Path, rev: str) -> str | None:
    res = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return res.stdout.strip() if res.returncode == 0 else None


def lock_outs(lock_text: str | bytes | None) -> dict[str, str]:
    """Output path -> md5 recorded in a ``dvc.lock`` text."""
    data = yaml.safe_load(lock_text or "") or {}
    out = {}
    for stage in (data.get("stages") or {}).values():
        for entry in stage.get("outs", []) or []:
            if "md5" in entry:
                out[entry["path"]] = entry["md5"]
    return out


def dvc_file_outs(text: str | bytes | None, prefix: str) -> dict[str, str]:
    data = yaml.safe_load(text or "") or {}
    return {f"{prefix}/{e['path']}".lstrip("/"): e["md5"] for e in data.get("outs", []) or [] if "md5" in e}


def release_hashes(root: Path, rev: str | None) -> dict[str, str]:
    """DVC md5 of every ``dvc.lock`` output and of ``data/raw``, at ``rev`` (None: the workspace)."""
    if rev is None:
        lock = (root / "dvc.lock").read_text() if (root / "dvc.lock").exists() else None
        raw = (root / "data/raw.dvc").read_text() if (root / "data/raw.dvc").exists() else None
    else:
        lock, raw = show(root, rev, "dvc.lock"), show(root, rev, "data/raw.dvc")
    return {**lock_outs(lock), **dvc_file_outs(raw, "data")}


def find_commit_with_outputs(root: Path, wanted: dict[str, str]) -> str | None:
    """The newest commit whose ``dvc.lock`` records every ``path -> md5`` in ``wanted``."""
    res = _git(root, "log", "--format=%H", "--all", "--", "dvc.lock")
    for commit in res.stdout.split() if res.returncode == 0 else []:
        outs = lock_outs(show(root, commit, "dvc.lock"))
        if all(outs.get(p) == md5 for p, md5 in wanted.items()):
            return commit
    return None


def commit_facts(root: Path, rev: str | None, check_workspace: bool) -> CommitFacts:
    """Facts for the ``data-committed`` gate.

    ``rev`` is the release's commit. With ``check_workspace`` (a workspace candidate, ``rev`` = HEAD)
    the required files must also be clean, and every file output in ``dvc.lock`` must have the content
    it records (a folder output is left to ``dvc status``).
    """
    if not rev:
        return CommitFacts(None, REQUIRED)
    untracked = tuple(p for p in REQUIRED if show(root, rev, p) is None)
    dirty: tuple[str, ...] = ()
    out_of_sync: list[str] = []
    if check_workspace:
        res = _git(root, "status", "--porcelain", "--", *REQUIRED)
        dirty = tuple(sorted({line[3:].strip() for line in res.stdout.splitlines() if line.strip()}))
        for path, md5 in lock_outs(
            (root / "dvc.lock").read_text() if (root / "dvc.lock").exists() else ""
        ).items():
            p = root / path
            if md5.endswith(".dir") or not p.is_file():
                if not p.exists():
                    out_of_sync.append(f"{path} missing (run `dvc checkout`)")
                continue
            if file_md5(p) != md5:
                out_of_sync.append(f"{path} changed since dvc.lock")
    return CommitFacts(rev, REQUIRED, untracked, dirty, tuple(out_of_sync))


def default_remote_url(root: Path) -> Path:
    return root.parent / f"{root.name}-dvc-remote"


def _used(repo, rev: str | None) -> list:
    used = repo.used_objs(revs=[rev] if rev else None, force=True, push=True)
    return [h for odb, ids in used.items() if odb is None for h in ids]


def _local_path_ok(url: str) -> tuple[bool, str | None]:
    if "://" in url and not url.startswith("file://"):
        return True, None
    path = Path(url.removeprefix("file://"))
    probe = path
    while not probe.exists():
        probe = probe.parent
    if probe.is_dir() and os.access(probe, os.W_OK):
        return True, None
    return False, f"{probe} is not a writable folder"


def remote_facts(root: Path, rev: str | None = None) -> RemoteFacts:
    """Which of the release's DVC objects are in the default remote (without changing anything)."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            name = repo.config["core"].get("remote")
            ids = _used(repo, rev)
            if not name:
                url = str(default_remote_url(root))
                ok, err = _local_path_ok(url)
                missing = tuple(h.value for h in ids if not repo.cache.local.exists(h.value))
                return RemoteFacts(
                    DEFAULT_REMOTE, url, False, ok, len(ids), len(ids) - len(missing), missing, err
                )
            url = str(repo.config["remote"].get(name, {}).get("url", "?"))
            ok, err = _local_path_ok(url)
            if not ok:
                return RemoteFacts(name, url, True, False, len(ids), len(ids), (), err)
            try:
                st = repo.cloud.status(ids, remote=name)
            except Exception as exc:  # any transport error: unreachable
                return RemoteFacts(
                    name, url, True, False, len(ids), len(ids), (), f"{type(exc).__name__}: {exc}"
                )
            missing = tuple(sorted(h.value for h in st.missing))
            return RemoteFacts(name, url, True, True, len(ids), len(st.new), missing)
    except WorkspaceError:
        raise
    except Exception as exc:
        raise WorkspaceError(f"cannot read the DVC project at {root}: {type(exc).__name__}: {exc}") from exc


def configure_default_remote(root: Path, name: str, url: str) -> None:
    """Add ``name -> url`` as the default remote in ``.dvc/config.local``."""
    from dvc.repo import Repo

    Path(url).mkdir(parents=True, exist_ok=True)
    with Repo(str(root)) as repo, repo.config.edit("local") as conf:
        conf["remote"][name] = {"url": url}
        conf["core"]["remote"] = name


def push(root: Path, remote: str, rev: str | None) -> int:
    """``dvc push`` the release's objects (workspace, or the commit ``rev``); returns objects sent."""
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            if rev and rev != (resolve(root, "HEAD") or ""):
                return int(repo.push(remote=remote, revs=[rev], workspace=False) or 0)
            return int(repo.push(remote=remote) or 0)
    except Exception as exc:
        raise WorkspaceError(
            f"dvc push to {remote!r} failed: {type(exc).__name__}: {exc}; nothing else was changed"
        ) from exc


def cached_file(root: Path, md5: str) -> Path:
    """Where DVC keeps the file with this md5 in the local cache."""
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
