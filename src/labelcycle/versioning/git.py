"""Git facts for lineage: the commit, whether the tree is dirty."""

from __future__ import annotations

import subprocess
from pathlib import Path


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def head_commit(root: Path) -> str | None:
    """The full commit hash of HEAD, or None outside git / before the first commit."""
    return _git(root, "rev-parse", "HEAD")


def is_dirty(root: Path) -> bool | None:
    out = _git(root, "status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def branch(root: Path) -> str | None:
    return _git(root, "rev-parse", "--abbrev-ref", "HEAD")
