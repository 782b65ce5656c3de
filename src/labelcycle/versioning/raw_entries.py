"""One role of a raw batch (annotations, items or gold): a file, or a folder of Parquet files read as one
data set, as it is copied into the batch, recorded in the manifest and checked against it.

A file is copied as ``<role><extension>`` and recorded with its sha256. A folder is copied as the folder
``<role>/`` holding its Parquet parts under their own relative names (metadata files such as ``_SUCCESS``
are not part of the data set and stay behind, see :func:`labelcycle.readers.parquet_listing`); its entry
lists each part's name, sha256, bytes and rows, and its sha256 is the *tree hash* of the parts' names and
hashes (:func:`tree_sha256`), so a renamed, added or changed part changes the batch digest while the
order in which files were found does not. Copies and hashes stream; nothing is held in memory.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from labelcycle import catalog
from labelcycle.readers import detect_format, parquet_files
from labelcycle.versioning.digest import file_sha256

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass(frozen=True)
class Problem:
    """One difference between the raw store and its manifests.

    Attributes:
        batch: the batch folder's name (or the odd entry's name in ``data/raw``).
        file: the file inside it ("" for the entry itself; ``role/part`` inside a folder).
        kind: ``changed``, ``missing``, ``unexpected`` or ``unreadable``.
        detail: what is wrong, for people.
    """

    batch: str
    file: str
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{catalog.RAW}/{self.batch}" + (f"/{self.file}" if self.file else "")
        return f"{where}: {self.detail}"


def tree_sha256(parts: Iterable[tuple[str, str]]) -> str:
    """The hash of a folder from its ``(relative name, sha256)`` pairs, in name order."""
    h = hashlib.sha256()
    for name, sha in sorted(parts):
        h.update(f"{name}\0{sha}\n".encode())
    return h.hexdigest()


def source_sha256(path: Path) -> str:
    """The content hash of a delivered file, or the tree hash of a delivered folder's Parquet parts.

    Raises:
        InputFileError: a folder without Parquet files, or with files of another format.
    """
    if not path.is_dir():
        return file_sha256(path)
    return tree_sha256((_name(p, path), file_sha256(p)) for p in parquet_files(path))


def entry_sha256(entry: Mapping) -> str:
    """The hash a manifest entry stands for: its file's sha256, or the tree hash of its listed parts
    (so that editing a part's hash in the manifest changes what the batch name is checked against)."""
    parts = entry.get("parts")
    if parts is None:
        return str(entry.get("sha256"))
    own = str(entry.get("sha256"))
    listed = tree_sha256((str(p.get("file")), str(p.get("sha256"))) for p in parts)
    return listed if listed == own else f"{own} (parts: {listed})"


def copy_entry(source: Path, into: Path, role: str, rows: int, columns: Mapping) -> dict:
    """Copy a delivered file or folder into the batch folder ``into``, read-only, and return its entry.

    Raises:
        OSError: a copy failed (the caller removes ``into``).
        InputFileError: a folder's parts changed under the copy into something that is no data set.
    """
    common = {"source_path": str(source.resolve()), "rows": int(rows), "columns": dict(columns)}
    if not source.is_dir():
        fmt, _ = detect_format(source)
        name = role + _extension(source)
        shutil.copyfile(source, into / name)
        (into / name).chmod(READ_ONLY)
        return {"file": name, **_hashed(into / name), "format": fmt, **common}
    parts = []
    for src in parquet_files(source):
        rel = _name(src, source)
        dest = into / role / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(READ_ONLY)
        parts.append({"file": rel, **_hashed(dest), "rows": _parquet_rows(dest)})
    return {
        "file": role,
        "sha256": tree_sha256((p["file"], p["sha256"]) for p in parts),
        "bytes": sum(p["bytes"] for p in parts),
        "format": "parquet",
        "parts": parts,
        **common,
    }


def entry_files(batch_path: Path, entry: Mapping) -> list[Path]:
    """The files of an entry: its file, or its folder's parts in their recorded (name) order."""
    parts = entry.get("parts")
    if parts is None:
        return [batch_path / str(entry["file"])]
    return [batch_path / str(entry["file"]) / str(p["file"]) for p in parts]


def verify_entry(batch: str, batch_path: Path, entry: Mapping) -> list[Problem]:
    """How one entry's file, or every file of its folder, differs from the manifest: changed, missing,
    and (inside a folder) unexpected files."""
    name = str(entry.get("file", ""))
    parts = entry.get("parts")
    if parts is None:
        return _verify_file(batch, batch_path / name, name, entry)
    folder = batch_path / name
    if not folder.is_dir():
        return [Problem(batch, name, "missing", "missing (its manifest lists this folder)")]
    problems = []
    for part in parts:
        rel = f"{name}/{part.get('file')}"
        problems += _verify_file(batch, batch_path / rel, rel, part)
    listed = {str(p.get("file")) for p in parts}
    for child in sorted(folder.rglob("*")):
        if child.is_file() and _name(child, folder) not in listed:
            rel = f"{name}/{_name(child, folder)}"
            problems.append(Problem(batch, rel, "unexpected", "not in the manifest (added after ingest)"))
    return problems


def _verify_file(batch: str, path: Path, name: str, entry: Mapping) -> list[Problem]:
    if not path.is_file():
        return [Problem(batch, name, "missing", "missing (its manifest lists it)")]
    now, recorded = file_sha256(path), str(entry.get("sha256"))
    if now == recorded:
        return []
    return [
        Problem(
            batch,
            name,
            "changed",
            f"changed since it was ingested (sha256 {recorded[:12]}... in the manifest, {now[:12]}... now)",
        )
    ]


def _hashed(path: Path) -> dict:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def _parquet_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer (nothing else is read)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _name(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``, with ``/`` as separator (as recorded in manifests)."""
    return path.relative_to(folder).as_posix()


def _extension(path: Path) -> str:
    """``.csv``, or ``.csv.gz`` for a compressed file."""
    suffixes = [s.lower() for s in path.suffixes]
    return (
        "".join(suffixes[-2:])
        if len(suffixes) > 1 and suffixes[-1] in (".gz", ".bz2", ".xz", ".zst")
        else (suffixes[-1] if suffixes else "")
    )
