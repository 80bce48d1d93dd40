"""Free-space checks before the embedded store writes: a full disk refuses, it never kills.

Qdrant Edge memory-maps its segment files and grows them while writing; when the file system
is full, touching a page that could not be allocated kills the process with SIGBUS (exit 135,
no message). So every write first checks the free space (``statvfs``) against a reserve and is
refused with a one-line :class:`~server.errors.DiskFullError` when it would eat into it. Reads
never check. Nothing is cached: the first write after space is freed goes through.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from server.errors import DiskFullError
from server.retrieval.store import StoredPoint

MIB = 1 << 20
WRITE_AMPLIFICATION = 4
"""Bytes on disk per byte of a batch, at most: the WAL copy, the segment's storage, its payload
index entries, and the optimizer's rewrite of the segment."""


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on ``path``'s file system (``f_bavail``)."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def batch_bytes(points: Sequence[StoredPoint]) -> int:
    """Rough size of a batch of points as written: float32 vectors, sparse pairs, JSON payload."""
    total = 0
    for point in points:
        total += 4 * len(point.dense) + 8 * len(point.sparse.indices)
        total += sum(2 * len(part) for part in point.parts or [])  # part vectors are float16
        total += len(json.dumps(point.payload, default=str, ensure_ascii=False))
    return total


@dataclass(frozen=True)
class DiskGuard:
    """Refuses writes to the store at ``root`` that would leave less than the reserve free."""

    root: Path
    reserve_bytes: int
    """From ``Settings.disk_reserve_mb`` (default 256 MiB, reasoned there); 0: no check."""

    def require(self, batch: int = 0, action: str = "write") -> None:
        """Raise DiskFullError unless ``max(reserve, WRITE_AMPLIFICATION x batch)`` bytes are free.

        ``batch``: the bytes the write adds (see :func:`batch_bytes`); ``action`` names the
        write in the message.
        """
        if self.reserve_bytes <= 0:
            return
        needed = max(self.reserve_bytes, WRITE_AMPLIFICATION * batch)
        try:
            free = free_bytes(self.root)
        except OSError:
            return  # cannot tell (e.g. the directory went away): the write reports its own error
        if free < needed:
            raise DiskFullError(
                f"not enough free disk space to {action} in the store at {self.root}: "
                f"{free / MIB:.0f} MiB free, {needed / MIB:.0f} MiB needed (reserve "
                f"RETRIEVAL_DISK_RESERVE_MB={self.reserve_bytes // MIB}); free some space and "
                "retry (a running server keeps serving searches meanwhile)"
            )
