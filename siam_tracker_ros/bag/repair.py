"""Rescue the messages of an mcap bag whose recorder died: no footer, no ``metadata.yaml``.

A recorder killed by a power cut or SIGKILL leaves an mcap file that ends mid-record, without
the summary and footer readers need, and a bag directory without ``metadata.yaml``. The
records before the cut are intact: this module walks them in file order (MCAP format spec:
records are ``opcode u8, length u64, content``; chunks hold records, optionally lz4/zstd
compressed), keeps every complete message, and writes them into a new, properly closed bag.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.storage_mcap import decompress

from siam_tracker_ros.bag.bagfile import BagError, add_topic, open_writer
from siam_tracker_ros.bagtypes import typestore

MAGIC = b"\x89MCAP0\r\n"
SCHEMA, CHANNEL, MESSAGE, CHUNK = 0x03, 0x04, 0x05, 0x06


class _Cut(Exception):
    """The file ends inside a record."""


def _take(data: memoryview, at: int, size: int) -> tuple[memoryview, int]:
    if at + size > len(data):
        raise _Cut
    return data[at : at + size], at + size


def _string(data: memoryview, at: int) -> tuple[str, int]:
    raw, at = _take(data, at, 4)
    (size,) = struct.unpack("<I", raw)
    text, at = _take(data, at, size)
    return bytes(text).decode(), at


def _records(data: memoryview) -> Iterator[tuple[int, memoryview]]:
    """(opcode, content) of each complete record; stops quietly at a cut."""
    at = 0
    while at + 9 <= len(data):
        opcode, size = struct.unpack_from("<BQ", data, at)
        if at + 9 + size > len(data):
            return
        yield opcode, data[at + 9 : at + 9 + size]
        at += 9 + size


def _chunk_records(content: memoryview) -> Iterator[tuple[int, memoryview]]:
    _, _, size, crc = struct.unpack_from("<QQQI", content, 0)
    compression, at = _string(content, 28)
    (length,) = struct.unpack_from("<Q", content, at)
    records, _ = _take(content, at + 8, length)
    yield from _records(memoryview(decompress(bytes(records), compression, size, crc)))


def scan(handle: BinaryIO) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, message type, log time, CDR bytes) of every complete message, in file order."""
    data = memoryview(handle.read())
    if bytes(data[:8]) != MAGIC:
        raise BagError(f"{handle.name}: not an mcap file")
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}

    def walk(records: Iterator[tuple[int, memoryview]]) -> Iterator[tuple[str, str, int, bytes]]:
        for opcode, content in records:
            try:
                if opcode == SCHEMA:
                    (sid,) = struct.unpack_from("<H", content, 0)
                    schemas[sid], _ = _string(content, 2)
                elif opcode == CHANNEL:
                    cid, sid = struct.unpack_from("<HH", content, 0)
                    topic, _ = _string(content, 4)
                    channels[cid] = (topic, schemas.get(sid, ""))
                elif opcode == MESSAGE:
                    (cid,) = struct.unpack_from("<H", content, 0)
                    (log_ns,) = struct.unpack_from("<Q", content, 6)
                    if cid in channels:
                        yield (*channels[cid], log_ns, bytes(content[22:]))
                elif opcode == CHUNK:
                    yield from walk(_chunk_records(content))
            except (_Cut, struct.error, ReaderError):
                return

    yield from walk(_records(data[8:]))


def repair(bag: Path, out: Path, storage: str = "mcap") -> dict[str, int]:
    """Copy every complete message of ``bag``'s mcap files into a new bag ``out``."""
    files = sorted(bag.glob("*.mcap")) if bag.is_dir() else [bag]
    if not files or not all(f.is_file() for f in files):
        raise BagError(f"{bag}: no mcap file to repair")
    store = typestore()
    writer = open_writer(out, storage)
    connections: dict[str, object] = {}
    counts: dict[str, int] = {}
    try:
        for path in files:
            with path.open("rb") as handle:
                for topic, msgtype, log_ns, data in scan(handle):
                    if msgtype not in store.fielddefs:
                        counts[f"{topic} (unknown type {msgtype}, skipped)"] = 0
                        continue
                    if topic not in connections:
                        connections[topic] = add_topic(writer, topic, msgtype)
                        counts[topic] = 0
                    writer.write(connections[topic], log_ns, data)
                    counts[topic] += 1
    finally:
        writer.close()
    if not any(counts.values()):
        raise BagError(f"{bag}: no complete message to rescue")
    return counts
