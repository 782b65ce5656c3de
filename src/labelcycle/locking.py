"""The project lock: one exclusive advisory file lock per project for the commands that change releases.

``promote``, ``rollback`` (and ``status`` when it finishes an interrupted one) and ``ingest``'s batch write
hold it while they change shared state, so two of them never interleave. It is an ``fcntl.flock`` on
:func:`lock_path` (``.dvc/tmp/labelcycle.lock``, or ``.labelcycle/labelcycle.lock`` in a project without
DVC): the kernel releases it when its holder exits, even when killed, so a crashed command never leaves the
project locked. The holder writes who it is (pid, command, since) into the file, and a command that gives
up waiting names it::

    from labelcycle.locking import project_lock

    with project_lock(root, "labelcycle ingest"):
        ...  # write the batch

The lock is re-entrant within a thread: a function that takes it may call another that takes it too.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from labelcycle import catalog
from labelcycle.errors import ConfigError, StateError

LOCK_FILE = "labelcycle.lock"
#: seconds a command waits for the lock before it gives up (the environment variable overrides it)
DEFAULT_TIMEOUT_S = 300.0
TIMEOUT_ENV = "LABELCYCLE_LOCK_TIMEOUT"
POLL_S = 0.1

_held = threading.local()


def lock_dir(root: Path) -> Path:
    """The folder that holds the lock file and the promotion intent (not created here)."""
    return catalog.state_dir(root)


def lock_path(root: Path) -> Path:
    """The lock file of the project at ``root``."""
    return lock_dir(root) / LOCK_FILE


@dataclass(frozen=True)
class LockInfo:
    """Who holds (or last held) the lock.

    Attributes:
        pid: the holder's process id.
        command: what it runs (``labelcycle promote``).
        since: when it took the lock (ISO time, UTC).
    """

    pid: int
    command: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}, since {self.since})"


def holder(root: Path) -> LockInfo | None:
    """What the lock file says about its (last) holder; None when it says nothing readable."""
    try:
        data = json.loads(lock_path(root).read_text() or "null")
        return LockInfo(int(data["pid"]), str(data["command"]), str(data["since"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def timeout_s() -> float:
    """The lock timeout: ``LABELCYCLE_LOCK_TIMEOUT`` seconds, else :data:`DEFAULT_TIMEOUT_S`.

    Raises:
        ConfigError: the variable is not a number.
    """
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_TIMEOUT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ConfigError(
            f"{TIMEOUT_ENV}={raw!r} is not a number of seconds; set it to e.g. 60 or unset it"
        ) from None


def _depths() -> dict[str, int]:
    if not hasattr(_held, "depth"):
        _held.depth = {}
    return _held.depth


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StateError(
            f"cannot open the project lock {path}: {exc}; check that the project folder is writable"
        ) from exc


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        raise StateError(f"cannot lock the project lock file: {exc}") from exc


def _write_info(fd: int, command: str) -> None:
    since = datetime.now(UTC).isoformat(timespec="seconds")
    info = {"pid": os.getpid(), "command": command, "since": since}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


def _acquire(root: Path, command: str, wait_s: float | None) -> int | None:
    """The locked file descriptor, or None when it was not free within ``wait_s`` (None: forever)."""
    fd = _open(lock_path(root))
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while not _try(fd):
        if deadline is not None and time.monotonic() >= deadline:
            os.close(fd)
            return None
        time.sleep(POLL_S)
    _write_info(fd, command)
    return fd


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _command_line() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join(["labelcycle" if name in ("cli.py", "__main__.py") else name, *sys.argv[1:3]])


@contextmanager
def project_lock(root: Path, command: str | None = None, timeout: float | None = None) -> Iterator[None]:
    """Hold the project lock for the block; wait up to ``timeout`` seconds (default :func:`timeout_s`).

    Args:
        root: the project root.
        command: what the holder runs, shown to whoever waits (default: this process's command line).
        timeout: seconds to wait for the lock.

    Raises:
        StateError: the lock stayed held for ``timeout`` seconds (the message names the holder).
    """
    key = str(lock_path(root).resolve())
    depths = _depths()
    if depths.get(key):
        depths[key] += 1
        try:
            yield
        finally:
            depths[key] -= 1
        return
    wait = timeout_s() if timeout is None else timeout
    fd = _acquire(root, command or _command_line(), wait)
    if fd is None:
        who = holder(root)
        raise StateError(
            f"the project is locked by {who.describe() if who else 'another labelcycle command'} "
            f"({lock_path(root)}); waited {wait:g} s. Let it finish and run this command again "
            f"(set {TIMEOUT_ENV} to wait longer)"
        )
    depths[key] = 1
    try:
        yield
    finally:
        depths[key] = 0
        _release(fd)


@contextmanager
def lock_if_free(root: Path, command: str | None = None) -> Iterator[bool]:
    """Hold the project lock for the block if nobody holds it now (True), without waiting (False)."""
    key = str(lock_path(root).resolve())
    depths = _depths()
    if depths.get(key):
        with project_lock(root, command):
            yield True
        return
    fd = _acquire(root, command or _command_line(), 0.0)
    if fd is None:
        yield False
        return
    depths[key] = 1
    try:
        yield True
    finally:
        depths[key] = 0
        _release(fd)
