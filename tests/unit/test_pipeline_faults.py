"""A full or read-only disk under a stage's outputs ends in one `error:` line, never a traceback
(issue 16, finding 10); the stage leaves no partial output behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import pytest

from labelcycle import pipeline


@pytest.fixture(autouse=True)
def _no_tracking(monkeypatch):
    """run_stage checks the tracking store first; these faults are about the disk."""
    monkeypatch.setattr("labelcycle.tracking.runs.configure", lambda root: "0")


def _run(main) -> int:
    with pytest.raises(SystemExit) as exit_:
        pipeline.run_stage(main)
    return exit_.value.code


def test_a_full_disk_while_writing_a_stage_output_ends_in_one_error_line_and_leaves_no_output(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports" / "x.json"

    def full(p):
        p.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    def main():
        pipeline.write_json({"a": 1}, tmp_path / "reports" / "first.json")
        pipeline._atomic(out, full)

    assert _run(main) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {out}: cannot write (No space left on device)")
    assert "free disk space" in err and "Traceback" not in err
    assert list((tmp_path / "reports").iterdir()) == []


def test_a_disk_error_raised_by_stage_code_outside_the_write_helpers_is_one_error_line(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)

    def main():
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "models" / "m"))

    assert _run(main) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Read-only file system" in err and "make the folder writable" in err


def test_a_read_only_output_folder_fails_a_real_stage_process_with_one_error_line(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    reports.chmod(0o555)
    # root ignores folder modes: then the file system says read-only instead
    as_root = (
        textwrap.dedent("""
        import errno, pathlib
        def read_only(self, *a, **k):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        pathlib.Path.write_text = read_only
    """)
        if os.geteuid() == 0
        else ""
    )
    script = as_root + textwrap.dedent(f"""
        import labelcycle.tracking.runs as runs
        runs.configure = lambda root: "0"
        from pathlib import Path
        from labelcycle import pipeline
        pipeline.run_stage(lambda: pipeline.write_json({{"a": 1}}, Path({str(reports / "x.json")!r})))
    """)
    try:
        res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    finally:
        reports.chmod(0o755)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert "make the folder writable" in res.stderr
