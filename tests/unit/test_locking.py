"""The project lock: exclusive across processes, re-entrant within one, released when its holder dies,
and a clear error naming the holder when waiting times out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labelcycle import locking
from labelcycle.errors import ConfigError, StateError
from labelcycle.locking import holder, lock_if_free, lock_path, project_lock

HOLD = (
    "import sys, time; from pathlib import Path; from labelcycle.locking import project_lock\n"
    "with project_lock(Path(sys.argv[1]), 'labelcycle promote'):\n"
    "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
    "print('released', flush=True)\n"
)


def _hold(root: Path, seconds: float = 30) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.fixture
def root(tmp_path) -> Path:
    (tmp_path / ".dvc").mkdir()
    return tmp_path


def test_the_lock_lives_in_dvc_tmp_in_a_dvc_project_and_in_dot_labelcycle_otherwise(tmp_path, root):
    assert lock_path(root) == root / ".dvc" / "tmp" / "labelcycle.lock"
    plain = tmp_path / "plain"
    plain.mkdir()
    with project_lock(plain, "x"):
        assert (plain / ".labelcycle" / "labelcycle.lock").exists()


def test_waiting_for_a_held_lock_times_out_naming_the_holder_pid_command_and_since(root):
    proc = _hold(root)
    try:
        started = time.monotonic()
        with (
            pytest.raises(
                StateError, match=rf"locked by pid {proc.pid} \(labelcycle promote, since .*\).*waited 0.3 s"
            ),
            project_lock(root, "labelcycle rollback", timeout=0.3),
        ):
            pass
        assert time.monotonic() - started < 5
        assert holder(root).pid == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_waiting_command_gets_the_lock_once_the_holder_lets_go(root):
    proc = _hold(root, seconds=1.0)
    try:
        with project_lock(root, "labelcycle rollback", timeout=30):
            assert holder(root).command == "labelcycle rollback" and holder(root).pid == os.getpid()
        assert proc.stdout.readline().strip() == "released"
    finally:
        proc.wait()


def test_a_killed_holder_leaves_the_project_unlocked(root):
    proc = _hold(root)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with project_lock(root, "next", timeout=0):
        assert holder(root).command == "next"


def test_the_lock_is_reentrant_within_a_process_and_released_by_the_outermost_block(root):
    with project_lock(root, "outer", timeout=0):
        with project_lock(root, "inner", timeout=0), lock_if_free(root, "again") as free:
            assert free and holder(root).command == "outer"
        assert holder(root).command == "outer"
    assert holder(root) is None  # released: the holder's note is cleared
    proc = _hold(root)  # another process gets it at once
    proc.kill()
    proc.wait()


def test_lock_if_free_does_not_wait_for_a_held_lock(root):
    proc = _hold(root)
    try:
        started = time.monotonic()
        with lock_if_free(root, "status") as free:
            assert not free
        assert time.monotonic() - started < 1
    finally:
        proc.kill()
        proc.wait()
    with lock_if_free(root, "status") as free:
        assert free


def test_the_timeout_comes_from_the_environment_and_must_be_a_number(monkeypatch):
    monkeypatch.delenv(locking.TIMEOUT_ENV, raising=False)
    assert locking.timeout_s() == locking.DEFAULT_TIMEOUT_S
    monkeypatch.setenv(locking.TIMEOUT_ENV, "2.5")
    assert locking.timeout_s() == 2.5
    monkeypatch.setenv(locking.TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match=f"{locking.TIMEOUT_ENV}='soon' is not a number"):
        locking.timeout_s()
