"""Snapshots: the engine's whole state at one sequence number, written atomically.

File: `<dir>/snapshot-<seq>.snap` = magic, u64 payload length, u32 crc32, then
the JSON of `dump_state`. Written to a temporary file, fsynced, renamed into
place and the directory fsynced, so a crash leaves either the old set of
snapshots or the new one. Loading tries the newest first and falls back to an
older one when a file is damaged.
"""

import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

MAGIC = b"EXSNAP01"
HEADER = struct.Struct("<QI")
KEEP = 3


class SnapshotDamaged(ValueError):
    pass


def snapshot_files(directory: Path) -> list[Path]:
    """Newest first."""
    return sorted(directory.glob("snapshot-*.snap"), reverse=True)


def write_snapshot(directory: Path, seq: int, payload: bytes, keep: int = KEEP) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"snapshot-{seq:020d}.snap"
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        f.write(MAGIC + HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    for old in snapshot_files(directory)[keep:]:
        old.unlink()
    return path


def read_snapshot(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + HEADER.size:
        raise SnapshotDamaged(f"{path.name}: not a snapshot")
    length, crc = HEADER.unpack_from(data, len(MAGIC))
    payload = data[len(MAGIC) + HEADER.size :]
    if len(payload) != length or zlib.crc32(payload) != crc:
        raise SnapshotDamaged(f"{path.name}: checksum or length mismatch")
    state: dict[str, Any] = orjson.loads(payload)
    return state


def newest_valid(directory: Path, at_most_seq: int | None = None) -> dict[str, Any] | None:
    """The newest undamaged snapshot (with seq <= at_most_seq if given), or None."""
    for path in snapshot_files(directory):
        if at_most_seq is not None and int(path.stem.split("-")[1]) > at_most_seq:
            continue
        try:
            return read_snapshot(path)
        except (SnapshotDamaged, orjson.JSONDecodeError, OSError) as exc:
            log.warning(
                "skipping damaged snapshot", extra={"snapshot": path.name, "error": str(exc)}
            )
    return None
