"""Raw batches: immutable, content-addressed folders under ``data/raw/`` (:data:`catalog.RAW`).

A batch is the files of one delivery (annotations, optionally items and gold), copied byte for byte
into ``data/raw/<digest>/`` with a ``manifest.json`` that records where they came from, how their
columns map onto the contract (missing-value markers included), and their sha256 checksums. A role may
be a folder of Parquet files (one data set, stored as the folder ``<role>/`` with every part listed:
:mod:`labelcycle.versioning.raw_entries`). The digest is computed from the files' content (and a
folder's file names) and the column mapping, so ingesting the same delivery twice is a no-op. Files are
made read-only.

Writing is atomic and safe to race: a batch is assembled in a staging folder outside ``data/raw``
(:func:`staging_dir`, under ``.dvc/tmp``) and renamed into place in one step, so ``data/raw`` never holds
a half-written batch or a temporary folder; of two ingests of the same delivery, the second finds the
identical batch already there. Staging folders of ingests that died are removed by the next one.

Reading verifies: :func:`read_all` (what the ingest stage reads) refuses a batch whose files no longer
match its manifest, and :func:`verify_store` lists every difference in the store (``labelcycle verify``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.compressed import InputLimits
from labelcycle.errors import WorkspaceError
from labelcycle.readers import ColumnMap, read_table
from labelcycle.validation import SOURCE_FILE
from labelcycle.versioning.raw_entries import (
    Problem,
    copy_entry,
    entry_files,
    entry_sha256,
    source_sha256,
    verify_entry,
)

#: the raw batches' folder relative to the project root (``dvc add``-ed as one output)
RAW_DIR = Path(catalog.RAW)
MANIFEST = "manifest.json"
ROLES = ("annotations", "items", "gold")
DIGEST_CHARS = 16
#: a staging folder older than this is stale even if its process id is in use again
STALE_AFTER_S = 24 * 3600
#: what to do about a batch that differs from its manifest
RESTORE_HINT = (
    f"raw batches never change after ingest: restore it with `dvc checkout {catalog.RAW}` "
    "(`labelcycle verify` checks the whole store), and bring corrected labels in as a new batch"
)


@dataclass(frozen=True)
class BatchFile:
    """One role of a delivery: a file, or a folder of Parquet files (one data set)."""

    role: str
    path: Path
    columns: ColumnMap


@dataclass(frozen=True)
class Batch:
    """A raw batch on disk."""

    digest: str
    path: Path
    manifest: dict

    def file(self, role: str) -> Path | None:
        """The role's file, or its folder of Parquet files (what :func:`~labelcycle.readers.read_table`
        reads as one table); None when the batch has no such role."""
        entry = self.manifest["files"].get(role)
        return self.path / entry["file"] if entry else None

    def files(self, role: str) -> list[Path]:
        """The role's file, or its folder's Parquet files in their stable (name) order; [] without it."""
        entry = self.manifest["files"].get(role)
        return entry_files(self.path, entry) if entry else []

    def columns(self, role: str) -> ColumnMap:
        entry = self.manifest["files"].get(role) or {}
        return ColumnMap.from_dict(entry.get("columns"))

    @property
    def ingested_at(self) -> str:
        return str(self.manifest.get("ingested_at", ""))

    @property
    def origin(self) -> dict:
        """What the batch was made from beyond its files (e.g. a review sheet), as recorded."""
        return dict(self.manifest.get("origin") or {})


def _digest(entries: list[tuple[str, str, Mapping]]) -> str:
    """Digest of ``(role, sha256, column mapping)`` entries, in role order."""
    h = hashlib.sha256()
    for role, sha, columns in sorted(entries, key=lambda e: e[0]):
        h.update(role.encode())
        h.update(str(sha).encode())
        h.update(json.dumps(columns, sort_keys=True).encode())
    return h.hexdigest()[:DIGEST_CHARS]


def batch_digest(files: list[BatchFile]) -> str:
    """Digest of a delivery: each file's role, content hash (a folder's: its parts' names and content)
    and column mapping."""
    return _digest(_hashed(files))


def _hashed(files: list[BatchFile]) -> list[tuple[str, str, Mapping]]:
    return [(f.role, source_sha256(f.path), f.columns.to_dict()) for f in files]


def read_batch_files(files: list[BatchFile], limits: InputLimits | None = None) -> dict[str, pd.DataFrame]:
    """Read every file of a delivery (file-level validation: raises on unreadable files).

    Args:
        files: the delivery.
        limits: how far a compressed file may expand (default: the environment's, else the defaults).
    """
    return {f.role: read_table(f.path, f.role, f.columns, limits) for f in files}


# -- writing ---------------------------------------------------------------------------------------------


def staging_dir(root: Path) -> Path:
    """Where batches are assembled before their rename into ``data/raw``: ``.dvc/tmp/raw-staging`` (git and
    DVC ignore it), or ``.labelcycle/raw-staging`` in a folder that is not a DVC project."""
    base = catalog.state_dir(root)
    return base / "raw-staging"


def write_batch(
    root: Path, files: list[BatchFile], row_counts: dict[str, int], origin: Mapping | None = None
) -> tuple[Batch, bool]:
    """Copy a delivery into ``data/raw/<digest>/``; returns the batch and whether it is new.

    The copy is assembled in :func:`staging_dir` and renamed into place, so neither a crash nor a full
    disk leaves anything in ``data/raw``; the copied files are made read-only. When the same delivery
    is already there (ingested before, or by a concurrent ingest that finished first), nothing is
    written and the existing batch is returned.

    Args:
        root: the project.
        files: the delivery.
        row_counts: rows read per role (recorded in the manifest).
        origin: what the batch was made from beyond its files, recorded as the manifest's ``origin``.

    Raises:
        WorkspaceError: the batch cannot be written (no space, no permission; nothing is left behind),
            or a batch in the store differs from its manifest (nothing is written, so that the
            ``dvc add`` that follows a new batch never records a changed batch).
    """
    hashed = _hashed(files)
    digest = _digest(hashed)
    raw = root / RAW_DIR
    target = raw / digest
    existing = _existing(target)
    if existing is not None:
        return existing, False
    remove_stale_staging(root)
    problems = verify_store(root)
    if problems:  # `dvc add` after this batch would record the changed files as the store's new state
        more = f" (and {len(problems) - 1} more difference(s))" if len(problems) > 1 else ""
        raise WorkspaceError(f"{problems[0]}{more}; nothing was added: {RESTORE_HINT}")
    staged = stage_batch(root, digest, files, row_counts, origin, {role: sha for role, sha, _ in hashed})
    try:
        raw.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)  # atomic; fails when another ingest put the batch there first
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        existing = _existing(target)
        if existing is not None:
            return existing, False
        raise _write_error(root, raw, exc) from None
    return load_batch(target), True


def track_batch(root: Path, batch: Batch) -> None:
    """``dvc add data/raw`` after ``batch`` was written; when that fails, the batch is taken out again, so
    ``data/raw`` stays what ``data/raw.dvc`` records (and the next ingest of the delivery is not a no-op).

    Raises:
        WorkspaceError: ``dvc add`` failed (one line: DVC's reason and what to do).
    """
    from labelcycle.versioning import dvc

    try:
        dvc.track(root, RAW_DIR)
    except WorkspaceError as exc:
        remove_batch(batch)
        reason = " ".join(str(exc).split())
        raise WorkspaceError(
            f"{reason}; batch {batch.digest} was taken out of {catalog.RAW} again, so nothing changed: "
            "fix that and run the command again"
        ) from None


def remove_batch(batch: Batch) -> None:
    """Delete a batch folder (its files are read-only; its folders are not)."""
    for child in batch.path.rglob("*"):
        if child.is_file():
            child.chmod(stat.S_IRUSR | stat.S_IWUSR)
    shutil.rmtree(batch.path, ignore_errors=True)


def stage_batch(
    root: Path,
    digest: str,
    files: list[BatchFile],
    row_counts: dict[str, int],
    origin: Mapping | None,
    expected: Mapping[str, str] | None = None,
) -> Path:
    """Assemble a batch (copies, manifest, read-only files) in a fresh folder under :func:`staging_dir`.

    Args:
        expected: the content hash per role that ``digest`` was computed from; a copy that hashes
            differently (the source changed while it was read) is refused.

    Raises:
        WorkspaceError: a write failed, or a source changed under the copy; the folder is removed again.
    """
    base = staging_dir(root)
    tmp = base / f"{digest}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    manifest: dict = {
        "batch": digest,
        "ingested_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "files": {},
    }
    if origin:
        manifest["origin"] = dict(origin)
    try:
        tmp.mkdir(parents=True)
        for f in files:
            entry = copy_entry(f.path, tmp, f.role, row_counts.get(f.role, 0), f.columns.to_dict())
            if expected is not None and entry["sha256"] != expected.get(f.role):
                shutil.rmtree(tmp, ignore_errors=True)
                raise WorkspaceError(
                    f"{f.path}: changed while it was being ingested (its copy hashes differently); nothing "
                    f"was added to {catalog.RAW}: ingest it again once it is complete"
                )
            manifest["files"][f.role] = entry
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (tmp / MANIFEST).chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(root, base, exc) from None
    return tmp


def _existing(target: Path) -> Batch | None:
    """The batch at ``target`` when it is there and intact; None when there is none.

    Raises:
        WorkspaceError: something is there but it is not the intact batch.
    """
    if not target.exists():
        return None
    if not (target / MANIFEST).is_file():
        raise WorkspaceError(
            f"{catalog.RAW}/{target.name}: exists but has no {MANIFEST} (left by a copy made by hand?); "
            "remove that folder and ingest again"
        )
    batch = load_batch(target)
    problems = verify_batch(batch)
    if problems:
        raise WorkspaceError(
            f"{problems[0]}; this delivery's batch is already there but damaged: {RESTORE_HINT}"
        )
    return batch


def _write_error(root: Path, where: Path, exc: OSError) -> WorkspaceError:
    """The one-line error for a failed write: what, where, what to do (nothing was added)."""
    rel = where.relative_to(root) if where.is_relative_to(root) else where
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WorkspaceError(
            f"no space left on the device while writing into {rel} ({reason}); nothing was added to "
            f"{catalog.RAW}: free some space and ingest again"
        )
    if exc.errno == errno.EXDEV:
        return WorkspaceError(
            f"cannot move a batch from {staging_dir(root).relative_to(root)} into {rel}: they are on different "
            f"file systems; keep {catalog.RAW} inside the project folder (DVC's cache may live elsewhere: "
            "`dvc cache dir`), then ingest again"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WorkspaceError(
            f"cannot write into {rel} ({reason}); nothing was added to {catalog.RAW}. Make it writable "
            f"(`chmod u+w {rel}`) or run as its owner, then ingest again"
        )
    return WorkspaceError(
        f"cannot write the batch into {rel} ({reason}); nothing was added to {catalog.RAW}. "
        "Check the folder and ingest again"
    )


_STAGING_PID = re.compile(r"-(\d+)(?:-[0-9a-f]{8})?$")


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove the staging folders of ingests that are no longer running (and ``.tmp-*`` folders that
    older versions left inside ``data/raw``); returns what was removed."""
    candidates = []
    if staging_dir(root).is_dir():
        candidates += list(staging_dir(root).iterdir())
    if (root / RAW_DIR).is_dir():
        candidates += [p for p in (root / RAW_DIR).iterdir() if p.name.startswith(".tmp-")]
    removed = []
    for path in candidates:
        match = _STAGING_PID.search(path.name)
        pid = int(match.group(1)) if match else None
        try:
            old = time.time() - path.stat().st_mtime > STALE_AFTER_S
        except OSError:
            continue
        if pid is None or old or not _running(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def load_batch(path: Path) -> Batch:
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkspaceError(
            f"{manifest_path}: cannot read the batch manifest ({exc}); restore the batch with `dvc checkout {catalog.RAW}`"
        ) from None
    return Batch(digest=path.name, path=path, manifest=manifest)


def list_batches(root: Path) -> list[Batch]:
    """All raw batches, oldest first (by ingestion time, then digest)."""
    raw = root / RAW_DIR
    if not raw.is_dir():
        return []
    batches = [load_batch(p) for p in raw.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(batches, key=lambda b: (b.ingested_at, b.digest))


def read_all(root: Path, roles: tuple[str, ...] = ROLES) -> dict[str, pd.DataFrame | None]:
    """Concatenate every batch's tables (oldest first) with provenance columns.

    Each batch is verified against its manifest first (every file, also of the roles not read); a
    verified file was accepted at ingest, so it is read without a decompression limit, with the
    missing-value markers declared then. ``roles``: the tables to read.

    Raises:
        WorkspaceError: a batch differs from its manifest (the message names it and what to do).
    """
    frames: dict[str, list[pd.DataFrame]] = {role: [] for role in roles}
    for batch in list_batches(root):
        problems = verify_batch(batch)
        if problems:
            more = f" (and {len(problems) - 1} more difference(s) in this batch)" if len(problems) > 1 else ""
            raise WorkspaceError(f"{problems[0]}{more}; {RESTORE_HINT}")
        for role in roles:
            path = batch.file(role)
            if path is None:
                continue
            df = read_table(path, role, batch.columns(role), InputLimits.unlimited())
            df[schema.RAW_BATCH] = batch.digest
            df[SOURCE_FILE] = str(path.relative_to(root))
            frames[role].append(df)
    return {role: _concat(fs) for role, fs in frames.items()}


def find_batch(root: Path, **origin: str) -> Batch | None:
    """The first batch whose recorded :attr:`Batch.origin` has every ``key=value`` given, or None."""
    for batch in list_batches(root):
        if all(batch.origin.get(k) == v for k, v in origin.items()):
            return batch
    return None


# -- verification --------------------------------------------------------------------------------------


def verify_batch(batch: Batch) -> list[Problem]:
    """How ``batch`` differs from its manifest: files changed, missing or added since ingest (inside a
    role's folder too), and a manifest that no longer hashes to the batch's name (edited to match a
    changed file)."""
    problems = []
    listed = {MANIFEST}
    entries = []
    for role, entry in sorted((batch.manifest.get("files") or {}).items()):
        listed.add(str(entry.get("file", "")))
        entries.append((role, entry_sha256(entry), entry.get("columns") or {}))
        problems += verify_entry(batch.digest, batch.path, entry)
    if _digest(entries) != batch.digest:
        problems.append(
            Problem(
                batch.digest,
                MANIFEST,
                "changed",
                f"changed since it was ingested (it no longer hashes to the batch name {batch.digest})",
            )
        )
    for child in sorted(batch.path.iterdir()):
        if child.name not in listed:
            problems.append(
                Problem(batch.digest, child.name, "unexpected", "not in the manifest (added after ingest)")
            )
    return problems


def verify_store(root: Path) -> list[Problem]:
    """Every difference between ``data/raw`` and its batches' manifests (empty: the store is intact)."""
    raw = root / RAW_DIR
    if not raw.is_dir():
        return []
    problems = []
    for path in sorted(raw.iterdir()):
        if path.name.startswith(".tmp-"):
            problems.append(
                Problem(path.name, "", "unexpected", "a leftover of an interrupted ingest; remove it")
            )
        elif not path.is_dir():
            problems.append(
                Problem(path.name, "", "unexpected", "not a batch folder; move it out of the store")
            )
        elif not (path / MANIFEST).is_file():
            problems.append(
                Problem(path.name, MANIFEST, "missing", "missing: not a batch (or a damaged one)")
            )
        else:
            try:
                batch = load_batch(path)
            except WorkspaceError:
                problems.append(Problem(path.name, MANIFEST, "unreadable", "cannot be read (not valid JSON)"))
                continue
            problems += verify_batch(batch)
    return problems


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
    """One table from the batches' frames; the provenance columns, one value per batch, as categoricals
    (a few bytes per row instead of a string each; validation gives ``raw_batch`` back as strings)."""
    if not frames:
        return None
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    for col in (schema.RAW_BATCH, SOURCE_FILE):
        df[col] = df[col].astype("category")
    return df
