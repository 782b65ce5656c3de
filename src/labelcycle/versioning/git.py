"""Git primitives: run git, read a file at a revision, resolve revisions, changed files, list and set tags.

:func:`git` is the one way labelcycle runs git; the other functions are small uses of it. Every call runs
in the project root with a fallback author identity, so annotated tags work in a fresh clone.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from labelcycle.errors import WorkspaceError

TIMEOUT_S = 60


def _env() -> dict[str, str]:
    env = {**os.environ}
    env.setdefault("GIT_AUTHOR_NAME", "labelcycle")
    env.setdefault("GIT_AUTHOR_EMAIL", "labelcycle@localhost")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    return env


def git(root: Path, *args: str, check: bool = False) -> str | None:
    """``git ARGS`` in ``root``: its standard output (trailing whitespace removed), or None when git failed.

    Args:
        root: the folder to run in (the project root).
        *args: git's arguments, e.g. ``"rev-parse", "HEAD"``.
        check: raise instead of returning None.

    Raises:
        WorkspaceError: with ``check``, when git is missing, timed out or exited non-zero.
    """
    try:
        res = subprocess.run(
            ["git", *args],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        if check:
            raise WorkspaceError(f"git {' '.join(args)} could not run in {root}: {exc}") from exc
        return None
    if res.returncode != 0:
        if check:
            raise WorkspaceError(
                f"git {' '.join(args)} failed in {root}: {res.stderr.strip() or res.stdout.strip()}"
            )
        return None
    return res.stdout.rstrip()


def head_commit(root: Path) -> str | None:
    """The full commit hash of HEAD, or None outside git / before the first commit."""
    return git(root, "rev-parse", "HEAD")


def is_dirty(root: Path) -> bool | None:
    """Whether tracked files have uncommitted changes (None outside git)."""
    out = git(root, "status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def branch(root: Path) -> str | None:
    """The checked-out branch (``HEAD`` when detached; None outside git)."""
    return git(root, "rev-parse", "--abbrev-ref", "HEAD")


def resolve_rev(root: Path, rev: str) -> str | None:
    """The commit a revision (hash, branch, tag, ``HEAD~2``) names, or None when it names none."""
    return git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def show_file(root: Path, rev: str, path: str) -> bytes | None:
    """The bytes of ``path`` (relative to the root) at ``rev``, or None when it is absent there."""
    try:
        res = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout if res.returncode == 0 else None


def list_files(root: Path, rev: str) -> list[str]:
    """Every file path committed at ``rev`` (empty when the revision does not exist)."""
    out = git(root, "ls-tree", "-r", "--name-only", rev)
    return out.splitlines() if out else []


def tags(root: Path, prefix: str) -> dict[str, str]:
    """Every git tag whose name starts with ``prefix`` -> the commit it points at (annotated tags peeled)."""
    folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    out = git(
        root,
        "for-each-ref",
        "--format=%(refname:strip=2) %(objectname) %(*objectname)",
        f"refs/tags/{folder}",
    )
    found = {}
    for line in (out or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(prefix):
            found[parts[0]] = parts[2] if len(parts) > 2 else parts[1]
    return found


def tag_commit(root: Path, tag: str) -> str | None:
    """The commit the tag ``tag`` points at (annotated tags peeled); None when there is no such tag."""
    return git(root, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")


def set_tag(root: Path, tag: str, commit: str | None, message: str = "") -> None:
    """Create the annotated tag ``tag`` at ``commit``; ``commit`` None deletes it. A tag is never moved.

    Creating a tag that already points at ``commit`` does nothing, so a step that is repeated (an
    interrupted promotion completed later) is harmless.

    Raises:
        WorkspaceError: the tag exists at another commit, or git refused (e.g. the commit does not
            exist, or the tag to delete is absent).
    """
    if commit is None:
        git(root, "tag", "-d", tag, check=True)
        return
    existing = tag_commit(root, tag)
    if existing is not None and existing != resolve_rev(root, commit):
        raise WorkspaceError(
            f"git tag {tag} already points at {existing[:10]}, not {commit[:10]}; a release tag is never "
            "moved. Plan the promotion again: it takes the next free release number"
        )
    if existing is None:
        git(root, "tag", "-a", tag, commit, "-m", message or tag, check=True)


def changed_paths(root: Path) -> tuple[str, ...]:
    """Every path whose working copy or index differs from HEAD, untracked files included (ignored
    files not); both sides of a rename. Empty outside git."""
    out = git(root, "status", "--porcelain", "-z", "--untracked-files=all")
    if not out:
        return ()
    fields, found, i = out.split("\0"), set(), 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        found.add(entry[3:])
        if entry[0] in "RC":  # a rename or copy: the next field is the path it came from
            found.add(fields[i])
            i += 1
    return tuple(sorted(found))


def _under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def dirty_paths(root: Path, paths: tuple[str, ...]) -> tuple[str, ...]:
    """Those changed (or untracked) files that are one of ``paths`` or lie in a folder of ``paths``.

    Paths are relative to the root; a folder such as ``src`` covers every file below it.
    """
    return tuple(p for p in changed_paths(root) if _under(p, paths))


def commits_touching(root: Path, path: str) -> list[str]:
    """Every commit on any ref that changed ``path``, newest first."""
    out = git(root, "log", "--format=%H", "--all", "--", path)
    return out.split() if out else []
