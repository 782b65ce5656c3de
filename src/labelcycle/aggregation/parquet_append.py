"""Append the row groups of one Parquet file to a copy of another, without decoding a single page.

An incremental run's result table is the stored table of the old items followed by the new items' rows.
Re-encoding the stored rows (millions of id strings and probabilities) costs more than the fit itself;
here the output is the stored file's bytes, copied as they are (in the kernel), then the small new file's
column chunks, then one footer: the stored file's metadata with the new file's row groups added, their
byte offsets moved by where they now start.

A Parquet file is ``PAR1``, the column chunks, the footer (``FileMetaData`` in Thrift's compact
protocol), its length (4 bytes, little-endian) and ``PAR1``. Offsets inside the column chunks' pages are
relative to the page, so only the footer's absolute offsets change. The footer is decoded into a generic
tree of Thrift fields (any field this module does not know is carried through unchanged) and encoded
again; decoding and encoding an untouched footer gives back its bytes.

:func:`append` refuses (:class:`CannotAppend`, nothing written) whatever it cannot carry over exactly:
different Parquet schemas, encrypted files, page indexes or bloom filters (their offsets live outside the
footer's row groups). The caller then writes the table whole.
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

MAGIC = b"PAR1"
# Thrift compact protocol types
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)
# parquet.thrift field ids used here
_FMD_SCHEMA, _FMD_NUM_ROWS, _FMD_ROW_GROUPS, _FMD_ENCRYPTION = 2, 3, 4, 8
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_FILE_OFFSET, _CC_META, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX = 2, 3, 4, 6
_CC_CRYPTO, _CC_ENCRYPTED_META = 8, 9
_CM_OFFSETS = (9, 10, 11)  # data, index and dictionary page offsets
_CM_BLOOM = 14


class CannotAppend(ValueError):
    """The two files cannot be joined byte for byte (the caller writes the table instead)."""


# ------------------------------------------------------------------------------- Thrift compact protocol


class _Reader:
    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def byte(self) -> int:
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        out = shift = 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return out

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def take(self, n: int) -> bytes:
        out = self.buf[self.pos : self.pos + n]
        if len(out) != n:
            raise CannotAppend("the Parquet footer ends early")
        self.pos += n
        return out

    def value(self, kind: int):
        if kind == _BYTE:
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            return self.take(8)
        if kind == _BINARY:
            return self.take(self.varint())
        if kind in (_LIST, _SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            if elem in (_TRUE, _FALSE):  # booleans in a collection: one byte each
                return elem, [self.byte() for _ in range(size)]
            return elem, [self.value(elem) for _ in range(size)]
        if kind == _MAP:
            size = self.varint()
            if not size:
                return 0, 0, []
            types = self.byte()
            key, val = types >> 4, types & 0x0F
            return key, val, [(self.value(key), self.value(val)) for _ in range(size)]
        if kind == _STRUCT:
            return self.struct()
        raise CannotAppend(f"unknown Thrift type {kind} in the Parquet footer")

    def struct(self) -> list[list]:
        """A struct as ``[[field id, type, value], ...]`` in file order (booleans: value None)."""
        fields, last = [], 0
        while True:
            head = self.byte()
            if head == _STOP:
                return fields
            kind, delta = head & 0x0F, head >> 4
            fid = last + delta if delta else self.zigzag()
            fields.append([fid, kind, None if kind in (_TRUE, _FALSE) else self.value(kind)])
            last = fid


def _varint(out: bytearray, v: int) -> None:
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zigzag(out: bytearray, v: int) -> None:
    _varint(out, (v << 1) if v >= 0 else ((-v) << 1) - 1)


def _value(out: bytearray, kind: int, v) -> None:
    if kind == _BYTE:
        out.append(v)
    elif kind in (_I16, _I32, _I64):
        _zigzag(out, v)
    elif kind == _DOUBLE:
        out += v
    elif kind == _BINARY:
        _varint(out, len(v))
        out += v
    elif kind in (_LIST, _SET):
        elem, items = v
        if len(items) < 15:
            out.append(len(items) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _varint(out, len(items))
        for item in items:
            if elem in (_TRUE, _FALSE):
                out.append(item)
            else:
                _value(out, elem, item)
    elif kind == _MAP:
        key, val, items = v
        _varint(out, len(items))
        if items:
            out.append(key << 4 | val)
            for k, x in items:
                _value(out, key, k)
                _value(out, val, x)
    else:
        _struct(out, v)


def _struct(out: bytearray, fields: list[list]) -> None:
    last = 0
    for fid, kind, v in fields:
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | kind)
        else:
            out.append(kind)
            _zigzag(out, fid)
        if kind not in (_TRUE, _FALSE):
            _value(out, kind, v)
        last = fid
    out.append(_STOP)


def encode(fields: list[list]) -> bytes:
    """The compact-protocol bytes of a struct decoded by :func:`decode`."""
    out = bytearray()
    _struct(out, fields)
    return bytes(out)


def decode(buf: bytes) -> list[list]:
    """A compact-protocol struct as a tree of ``[field id, type, value]``."""
    return _Reader(buf).struct()


# ------------------------------------------------------------------------------------------- the files


def footer(path: Path) -> tuple[int, list[list]]:
    """Where the footer of the Parquet file ``path`` starts, and its decoded ``FileMetaData``."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        if size < 12:
            raise CannotAppend(f"{path}: not a Parquet file")
        f.seek(size - 8)
        tail = f.read(8)
        (length,) = struct.unpack("<I", tail[:4])
        if tail[4:] != MAGIC or length > size - 12:
            raise CannotAppend(f"{path}: not a plain Parquet file (encrypted footer or damaged)")
        start = size - 8 - length
        f.seek(start)
        return start, decode(f.read(length))


def _field(fields: list[list], fid: int):
    return next((f for f in fields if f[0] == fid), None)


def _shifted(group: list[list], delta: int, ordinal: int) -> list[list]:
    """A row group of the appended file with its absolute offsets moved by ``delta`` bytes."""
    for f in group:
        if f[0] == _RG_FILE_OFFSET:
            f[2] += delta
        elif f[0] == _RG_ORDINAL:
            f[2] = ordinal
    for chunk in _field(group, _RG_COLUMNS)[2][1]:
        for f in chunk:
            if f[0] in (_CC_OFFSET_INDEX, _CC_COLUMN_INDEX, _CC_CRYPTO, _CC_ENCRYPTED_META):
                raise CannotAppend("page indexes or encrypted columns")
            if f[0] == _CC_FILE_OFFSET and f[2]:
                f[2] += delta
        meta = _field(chunk, _CC_META)
        if meta is None:
            raise CannotAppend("a column chunk without its metadata")
        for f in meta[2]:
            if f[0] == _CM_BLOOM:
                raise CannotAppend("bloom filters")
            if f[0] in _CM_OFFSETS:
                f[2] += delta
    return group


def append(first: Path, second: Path, out: Path) -> int:
    """Write to ``out`` the rows of the Parquet file ``first`` then those of ``second``; returns the rows.

    Both files must have the same Parquet schema; the footer's other metadata (key-value metadata such as
    the Arrow schema, created_by) is ``first``'s. Nothing is written when :class:`CannotAppend` is raised.
    """
    start1, meta1 = footer(first)
    start2, meta2 = footer(second)
    for meta in (meta1, meta2):
        if _field(meta, _FMD_ENCRYPTION) is not None:
            raise CannotAppend("encrypted files")
    if _field(meta1, _FMD_SCHEMA) != _field(meta2, _FMD_SCHEMA):
        raise CannotAppend("the two files have different Parquet schemas")
    groups1 = _field(meta1, _FMD_ROW_GROUPS)
    groups2 = _field(meta2, _FMD_ROW_GROUPS)
    for i, group in enumerate(groups1[2][1]):
        _shifted(group, 0, i)  # refuses page indexes and bloom filters in the first file too
    delta = start1 - len(MAGIC)  # second's bytes after its magic start where first's footer did
    added = [_shifted(g, delta, len(groups1[2][1]) + i) for i, g in enumerate(groups2[2][1])]
    groups1[2] = (groups1[2][0], groups1[2][1] + added)
    rows = _field(meta1, _FMD_NUM_ROWS)
    rows[2] += _field(meta2, _FMD_NUM_ROWS)[2]
    tail = encode(meta1)
    with open(second, "rb") as f:
        f.seek(len(MAGIC))
        body = f.read(start2 - len(MAGIC))
    shutil.copyfile(first, out)  # in the kernel (sendfile), no pass through Python
    with open(out, "r+b") as f:
        f.seek(start1)
        f.write(body)
        f.write(tail)
        f.write(struct.pack("<I", len(tail)))
        f.write(MAGIC)
        f.truncate()
    return rows[2]
