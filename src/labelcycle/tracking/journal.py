"""The open-run journal: no run stays RUNNING after its process died.

A stage run is journalled (a small JSON file under ``.dvc/tmp/``, which git and DVC ignore) when it starts,
and the entry is removed when MLflow accepted its end. If the process was killed (SIGKILL, power loss) or
the server was down when the run should have ended, the entry stays; the next stage that reaches the same
tracking store marks that run FAILED, and its version's parent run too when that still shows RUNNING.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from labelcycle import catalog

#: why a run was ended the way it was (set on FAILED runs)
TAG_END_REASON = "labelcycle.end_reason"


def journal_dir(root: Path) -> Path:
    return catalog.state_dir(root) / "open-runs"


def add(root: Path, run_id: str, uri: str, stage: str, parent_run_id: str | None = None) -> Path | None:
    """Journal a started run; None when the workspace is read-only (the journal is a safety net)."""
    try:
        import psutil

        folder = journal_dir(root)
        folder.mkdir(parents=True, exist_ok=True)
        entry = folder / f"{run_id}.json"
        entry.write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "parent_run_id": parent_run_id,
                    "tracking_uri": uri,
                    "stage": stage,
                    "pid": os.getpid(),
                    "pid_started": psutil.Process().create_time(),
                    "started": time.time(),
                }
            )
        )
        return entry
    except OSError:
        return None


def settle(entry: Path, closed: bool) -> None:
    """Drop the entry of a run the store closed; mark it abandoned (close it next time) otherwise."""
    try:
        if closed:
            entry.unlink(missing_ok=True)
        else:
            data = json.loads(entry.read_text())
            entry.write_text(json.dumps({**data, "abandoned": True}))
    except (OSError, json.JSONDecodeError):
        pass


def _process_alive(pid: int, started: float) -> bool:
    import psutil

    try:
        return abs(psutil.Process(pid).create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def close_orphaned_runs(root: Path, uri: str) -> list[str]:
    """Mark FAILED every journalled run of the store at ``uri`` whose process is gone; returns their ids."""
    folder = journal_dir(root)
    if not folder.is_dir():
        return []
    import mlflow

    closed = []
    for entry in sorted(folder.glob("*.json")):
        try:
            data = json.loads(entry.read_text())
        except (OSError, json.JSONDecodeError):
            entry.unlink(missing_ok=True)
            continue
        if data.get("tracking_uri") != uri:
            continue
        if not data.get("abandoned") and _process_alive(int(data["pid"]), float(data["pid_started"])):
            continue
        reason = "orphaned: its process ended before the run was closed; closed by a later stage"
        try:
            client = mlflow.MlflowClient(tracking_uri=uri)
            run = client.get_run(data["run_id"])
            if run.info.status == "RUNNING":
                client.set_tag(data["run_id"], TAG_END_REASON, reason)
                client.set_terminated(data["run_id"], "FAILED")
                closed.append(data["run_id"])
            parent = data.get("parent_run_id")
            if parent and client.get_run(parent).info.status == "RUNNING":
                client.set_tag(parent, TAG_END_REASON, f"stage {data.get('stage')} {reason}")
                client.set_terminated(parent, "FAILED")
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" not in str(exc) and "not found" not in str(exc).lower():
                continue  # store not answering: try again next time
        entry.unlink(missing_ok=True)
    return closed
