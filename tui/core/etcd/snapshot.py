"""Verify an etcd snapshot file as ``etcdutl snapshot restore`` does.

etcd streams its bbolt database and then the SHA-256 of it (32 bytes); ``etcdctl snapshot
save`` keeps both.  A file is good when the trailing 32 bytes are the SHA-256 of the rest
and the rest starts with a bbolt meta page (magic ``0xED0CDAED`` at offset 16).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

BOLT_MAGIC = 0xED0CDAED
HASH_SIZE = 32


@dataclass(frozen=True)
class SnapshotCheck:
    """The verdict on one snapshot file."""

    ok: bool
    detail: str
    db_size: int = 0


def verify_snapshot(path: Path) -> SnapshotCheck:
    """Check the appended SHA-256 and the bbolt magic of ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return SnapshotCheck(False, f"cannot read {path}: {exc.strerror or exc}")
    if len(data) <= HASH_SIZE + 20:
        return SnapshotCheck(False, f"{path} holds only {len(data)} bytes")
    db, trailer = data[:-HASH_SIZE], data[-HASH_SIZE:]
    if hashlib.sha256(db).digest() != trailer:
        return SnapshotCheck(False, f"the SHA-256 appended to {path} does not match its "
                                    "content (truncated or corrupted)")
    (magic,) = struct.unpack_from("<I", db, 16)
    if magic != BOLT_MAGIC:
        return SnapshotCheck(False, f"{path} is not a bbolt database (magic {magic:#x})")
    return SnapshotCheck(True, f"SHA-256 and bbolt header verified ({len(db)} bytes of "
                               "database)", len(db))


__all__ = ["SnapshotCheck", "verify_snapshot"]
