"""Raw batches: immutable, content-addressed folders under ``data/raw/`` (:data:`catalog.RAW`).

A batch is the files of one delivery (annotations, optionally items and gold), copied byte for byte
into ``data/raw/<digest>/`` with a ``manifest.json`` that records where they came from, how their
columns map onto the contract, and their checksums. The digest is computed from the files' content and
the column mapping, so ingesting the same delivery twice is a no-op. Files are made read-only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from labelcycle import catalog, schema
from labelcycle.errors import WorkspaceError
from labelcycle.readers import ColumnMap, detect_format, read_table
from labelcycle.validation import SOURCE_FILE
from labelcycle.versioning.digest import file_sha256

#: the raw batches' folder relative to the project root (``dvc add``-ed as one output)
RAW_DIR = Path(catalog.RAW)
MANIFEST = "manifest.json"
ROLES = ("annotations", "items", "gold")
DIGEST_CHARS = 16


@dataclass(frozen=True)
class BatchFile:
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
        entry = self.manifest["files"].get(role)
        return self.path / entry["file"] if entry else None

    def columns(self, role: str) -> ColumnMap:
        entry = self.manifest["files"].get(role) or {}
        return ColumnMap.from_dict(entry.get("columns"))

    @property
    def ingested_at(self) -> str:
        return str(self.manifest.get("ingested_at", ""))


def batch_digest(files: list[BatchFile]) -> str:
    """Digest of a delivery: each file's role, content hash and column mapping."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.role):
        h.update(f.role.encode())
        h.update(file_sha256(f.path).encode())
        h.update(json.dumps(f.columns.to_dict(), sort_keys=True).encode())
    return h.hexdigest()[:DIGEST_CHARS]


def read_batch_files(files: list[BatchFile]) -> dict[str, pd.DataFrame]:
    """Read every file of a delivery (file-level validation: raises on unreadable files)."""
    return {f.role: read_table(f.path, f.role, f.columns) for f in files}


def write_batch(root: Path, files: list[BatchFile], row_counts: dict[str, int]) -> tuple[Batch, bool]:
    """Copy a delivery into ``data/raw/<digest>/``; returns the batch and whether it is new.

    The copy is made in a temporary folder and renamed into place, so a crash never leaves a
    half-written batch; the copied files are made read-only.
    """
    digest = batch_digest(files)
    raw = root / RAW_DIR
    target = raw / digest
    if (target / MANIFEST).exists():
        return load_batch(target), False
    raw.mkdir(parents=True, exist_ok=True)
    tmp = raw / f".tmp-{digest}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    manifest: dict = {
        "batch": digest,
        "ingested_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "files": {},
    }
    for f in files:
        fmt, _ = detect_format(f.path)
        name = f.role + _extension(f.path)
        shutil.copyfile(f.path, tmp / name)
        manifest["files"][f.role] = {
            "file": name,
            "source_path": str(f.path.resolve()),
            "sha256": file_sha256(tmp / name),
            "bytes": (tmp / name).stat().st_size,
            "format": fmt,
            "rows": int(row_counts.get(f.role, 0)),
            "columns": f.columns.to_dict(),
        }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    for child in tmp.iterdir():
        child.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    tmp.rename(target)
    return load_batch(target), True


def _extension(path: Path) -> str:
    """``.csv``, or ``.csv.gz`` for a compressed file."""
    suffixes = [s.lower() for s in path.suffixes]
    return (
        "".join(suffixes[-2:])
        if len(suffixes) > 1 and suffixes[-1] in (".gz", ".bz2", ".xz", ".zst")
        else (suffixes[-1] if suffixes else "")
    )


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


def read_all(root: Path) -> dict[str, pd.DataFrame | None]:
    """Concatenate every batch's tables (oldest first) with provenance columns."""
    frames: dict[str, list[pd.DataFrame]] = {role: [] for role in ROLES}
    for batch in list_batches(root):
        for role in ROLES:
            path = batch.file(role)
            if path is None:
                continue
            df = read_table(path, role, batch.columns(role))
            df[schema.RAW_BATCH] = batch.digest
            df[SOURCE_FILE] = str(path.relative_to(root))
            frames[role].append(df)
    return {role: _concat(fs) for role, fs in frames.items()}


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
    """One table from the batches' frames; the provenance columns, one value per batch, as categoricals
    (a few bytes per row instead of a string each; validation gives ``raw_batch`` back as strings)."""
    if not frames:
        return None
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    for col in (schema.RAW_BATCH, SOURCE_FILE):
        df[col] = df[col].astype("category")
    return df
