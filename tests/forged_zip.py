"""Zip archives and `.npy` files written field by field, so that any field can lie: for the tests of
`bpgpu.load` (tests/test_checkpoint.py) and its fuzzing (tests/test_fuzz_checkpoint.py)."""

from __future__ import annotations

import dataclasses
import io
import struct
import zipfile
import zlib

import numpy as np


@dataclasses.dataclass
class Member:
    """One zip member as `forge` writes it; by default stored, with its true sizes and CRC.

    `size` is what the central directory declares (past 32 bits in a zip64 extra field), `offset`
    where it says the local header is; `local` holds local-header values that differ from the
    central ones ("flags", "version", "method").
    """

    name: str
    data: bytes
    flags: int = 0
    version: int = 20  # zip version needed to extract, in tenths
    method: int = zipfile.ZIP_STORED
    size: int | None = None
    offset: int | None = None
    local: dict[str, int] = dataclasses.field(default_factory=dict)


def forge(members: list[Member]) -> bytes:
    """A zip archive of `members`, written field by field so that any field can lie."""
    body, directory = bytearray(), bytearray()
    for m in members:
        name, crc = m.name.encode(), zlib.crc32(m.data)
        size = len(m.data) if m.size is None else m.size
        offset = len(body) if m.offset is None else m.offset
        wide = [value for value in (size, size) if value >= 0xFFFFFFFF]
        wide += [offset] if offset >= 0xFFFFFFFF else []
        extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
        size32, offset32 = min(size, 0xFFFFFFFF), min(offset, 0xFFFFFFFF)
        local = {"flags": m.flags, "version": m.version, "method": m.method, **m.local}
        body += struct.pack(
            "<4s2B4HL2L2H", b"PK\x03\x04", local["version"], 0, local["flags"], local["method"], 0, 0x21,
            crc, size32, size32, len(name), 0,
        ) + name + m.data  # fmt: skip
        directory += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, m.version, 0, m.flags, m.method, 0, 0x21, crc,
            size32, size32, len(name), len(extra), 0, 0, 0, 0, offset32,
        ) + name + extra  # fmt: skip
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0
    )
    return bytes(body + directory + end)


def npy(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """An .npy file of `header` text (padded and ended as numpy does) followed by `data`."""
    text = header.encode("latin-1" if version < (3, 0) else "utf-8")
    length = "<H" if version == (1, 0) else "<I"
    text += b" " * (-(len(text) + 11 + struct.calcsize(length)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(length, len(text)) + text + data


def npy_of(array: np.ndarray) -> bytes:
    """`array` as numpy writes it to an .npy file."""
    out = io.BytesIO()
    np.lib.format.write_array(out, array)
    return out.getvalue()


def members_of(data: bytes) -> list[Member]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [Member(info.filename, archive.read(info)) for info in archive.infolist()]


def replaced(members: list[Member], member: str, /, **changes) -> list[Member]:
    """`members` with the one named `member` changed."""
    return [dataclasses.replace(m, **changes) if m.name == member else m for m in members]
