"""Compressed input files under a size limit: a decompression bomb is refused early, with little memory.

:func:`open_compressed` decompresses through a stream that counts the bytes coming out and raises
:class:`~labelcycle.errors.InputFileError` as soon as they exceed :class:`InputLimits`, so a 300 KB file
that would expand to gigabytes stops after a few megabytes instead of filling memory. The readers
(:mod:`labelcycle.readers`) read every compressed CSV, TSV and JSONL file through it, and every Parquet
file through :func:`read_parquet_limited`.

Defaults suit a machine with 2 cores and 24 GiB: at most :data:`DEFAULT_MAX_INPUT_BYTES` decompressed,
and at most :data:`MAX_RATIO` times the compressed size once past :data:`RATIO_FLOOR`. A user who
knows a file is genuine sets an explicit limit (``--max-input-size``, or the environment variable
:data:`MAX_INPUT_ENV`), which replaces both.
"""

from __future__ import annotations

import io
import lzma
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from labelcycle.errors import ConfigError, InputFileError

#: the environment variable that sets an explicit limit (like ``--max-input-size``)
MAX_INPUT_ENV = "LABELCYCLE_MAX_INPUT_BYTES"
#: default ceiling on the decompressed size of one input file: a text table this large already needs
#: most of a 24 GiB machine once parsed
DEFAULT_MAX_INPUT_BYTES = 4 * 2**30
#: default ceiling on decompressed / compressed size (tabular text compresses 3-30x) ...
MAX_RATIO = 100.0
#: ... tested above this many decompressed bytes (small files may compress as well as they like)
RATIO_FLOOR = 16 * 2**20
#: what a corrupt or truncated compressed stream raises while it is read
CORRUPT_STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)

_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_UNITS |= {f"{u}ib": _UNITS[u] for u in "kmgt"}
_UNITS |= {f"{u}b": 1000 ** "bkmgt".index(u) for u in "kmgt"}


def parse_size(text: str) -> int:
    """Bytes from ``4294967296``, ``4GiB`` or ``4G`` (binary units) or ``4GB`` (decimal units).

    Raises:
        ValueError: ``text`` is not a size.
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"not a size: {text!r}; use bytes or a unit, e.g. 4GiB or 500MB")
    return int(float(match.group(1)) * _UNITS[unit])


def human_size(n: float) -> str:
    """``512 B``, ``9.8 KiB``, ``1.5 GiB``."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024 or unit == "GiB":
            break
    return f"{n:.1f} {unit}"


@dataclass(frozen=True)
class InputLimits:
    """How far a compressed input file may expand before it is refused as a decompression bomb.

    A file is refused once its decompressed bytes exceed ``max_bytes``, or exceed both ``ratio_floor``
    and ``max_ratio`` times its compressed size.

    Attributes:
        max_bytes: decompressed bytes allowed (None: no ceiling).
        max_ratio: decompressed / compressed size allowed above ``ratio_floor`` (None: no ratio test).
        ratio_floor: decompressed bytes below which the ratio is not tested.
    """

    max_bytes: int | None = DEFAULT_MAX_INPUT_BYTES
    max_ratio: float | None = MAX_RATIO
    ratio_floor: int = RATIO_FLOOR

    @classmethod
    def explicit(cls, max_bytes: int) -> InputLimits:
        """A limit the user set: it vouches for the file up to ``max_bytes``; no ratio test."""
        return cls(max_bytes=max_bytes, max_ratio=None)

    @classmethod
    def unlimited(cls) -> InputLimits:
        """No limit: for files accepted once already (raw batches verified against their manifests)."""
        return cls(max_bytes=None, max_ratio=None)

    @classmethod
    def from_env(cls) -> InputLimits:
        """An explicit limit from :data:`MAX_INPUT_ENV` when it is set, else the defaults.

        Raises:
            ConfigError: the variable is not a size.
        """
        text = os.environ.get(MAX_INPUT_ENV, "").strip()
        if not text:
            return cls()
        try:
            return cls.explicit(parse_size(text))
        except ValueError:
            raise ConfigError(
                f"{MAX_INPUT_ENV}={text!r} is not a size; set bytes or a unit, e.g. 4GiB or 500MB"
            ) from None

    def allowed(self, compressed_bytes: int) -> tuple[int | None, str]:
        """The decompressed bytes allowed for a file of ``compressed_bytes`` (None: any), and why."""
        limits: list[tuple[int, str]] = []
        if self.max_bytes is not None:
            limits.append((self.max_bytes, "the limit for one input file"))
        if self.max_ratio is not None:
            size = human_size(compressed_bytes)
            by_ratio = int(self.max_ratio * compressed_bytes)
            if by_ratio > self.ratio_floor:
                limits.append((by_ratio, f"{self.max_ratio:g}x its compressed size of {size}"))
            else:
                limits.append((self.ratio_floor, f"over {self.max_ratio:g}x its compressed size of {size}"))
        return min(limits) if limits else (None, "")


class _LimitedReader(io.RawIOBase):
    """A binary stream over a decompressing one that raises once more than ``limit`` bytes came out."""

    def __init__(self, raw: io.IOBase, path: Path, limit: int | None, why: str) -> None:
        super().__init__()
        self._raw, self._path, self._limit, self._why = raw, path, limit, why
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        want = len(buffer) if self._limit is None else min(len(buffer), self._limit + 1 - self._count)
        data = self._raw.read(max(want, 1))
        self._count += len(data)
        if self._limit is not None and self._count > self._limit:
            raise InputFileError(
                f"{self._path}: decompresses to more than {human_size(self._limit)} ({self._why}); refused "
                "as a possible decompression bomb. If the file is genuine, raise the limit with "
                f"--max-input-size SIZE (or the environment variable {MAX_INPUT_ENV}), e.g. 8GiB"
            )
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_compressed(path: Path, compression: str, limits: InputLimits) -> io.BufferedReader:
    """``path`` decompressed (``gzip``, ``bz2``, ``xz`` or ``zstd``) as a binary stream that stops at ``limits``.

    Raises:
        InputFileError: the stream expands past ``limits`` (when read), or zstd is not installed.
    """
    import bz2
    import gzip

    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            raise InputFileError(
                f"{path}: reading .zst files needs the zstandard package, which is not installed; "
                "decompress it first (`zstd -d`) or compress it with gzip instead"
            ) from None
        raw: io.IOBase = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True)
    else:
        raw = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}[compression](path, "rb")
    limit, why = limits.allowed(path.stat().st_size)
    return io.BufferedReader(_LimitedReader(raw, path, limit, why), buffer_size=1 << 20)


def _is_text(t) -> bool:
    import pyarrow as pa

    return any(
        f(t)
        for f in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary)
    )


def read_parquet_limited(path: Path, limits: InputLimits):
    """The Parquet file at ``path`` as an Arrow table, refused once its data in memory passes
    ``limits.max_bytes`` (:func:`parquet_row_groups`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if limits.max_bytes is None:  # nothing to count (a raw batch verified against its manifest)
        return pq.read_table(path)
    forced: list[str] = []
    groups = list(parquet_row_groups(path, limits, forced))
    table = pa.concat_tables(groups) if groups else pq.read_schema(path).empty_table()
    for name in forced:
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            decoded = pa.chunked_array([c.dictionary_decode() for c in col.chunks], col.type.value_type)
            table = table.set_column(table.schema.get_field_index(name), name, decoded)
    return table


def parquet_row_groups(path: Path, limits: InputLimits, forced: list[str] | None = None):
    """The row groups of the Parquet file at ``path``, one at a time, with every string column kept
    dictionary-encoded; raises once the data they hold in memory passes ``limits.max_bytes``.

    Parquet compresses inside the file (dictionary and run-length encodings as well as codecs), so a small
    file may hold gigabytes. A dictionary-encoded column's decoded size is counted from the dictionary
    before anything is expanded: memory stays near the file's own size until the data is known to fit
    (and near one row group when the caller keeps none). The ratio test of compressed text files does not
    apply (genuine tables of repeated categories exceed it); the ceiling does.

    Args:
        path: the file.
        limits: the ceiling.
        forced: filled with the names of the string columns read dictionary-encoded.

    Raises:
        InputFileError: the data would exceed the limit.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    original = pq.read_schema(path)
    text = [f.name for f in original if _is_text(f.type)]
    if forced is not None:
        forced[:] = text
    pf = pq.ParquetFile(path, read_dictionary=text)
    limit, total = limits.max_bytes, 0
    for i in range(pf.num_row_groups):
        group = pf.read_row_group(i)
        for name in group.column_names:
            col = group.column(name)
            if pa.types.is_dictionary(col.type) and _is_text(col.type.value_type):
                # counted as the values it stands for (categorical columns are expanded later too)
                for chunk in col.chunks:
                    lengths = pc.binary_length(chunk.dictionary)
                    total += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + 8 * len(chunk)
            else:
                total += col.nbytes
        if limit is not None and total > limit:
            raise InputFileError(
                f"{path}: holds more than {human_size(limit)} of data once read (row group {i + 1} of "
                f"{pf.num_row_groups}); refused as a possible decompression bomb. If the file is genuine, "
                f"raise the limit with --max-input-size SIZE (or the environment variable {MAX_INPUT_ENV})"
            )
        yield group


def decompression_failed(path: Path, exc: BaseException) -> InputFileError:
    """The error for a compressed file whose stream is corrupt or cut short."""
    return InputFileError(
        f"{path}: cannot decompress the file ({exc}); is it complete and not corrupt? Compress it again"
    )
