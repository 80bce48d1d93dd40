"""Reading what the walk found: never blocks, never follows a link, every OS error a reason.

The walk (walker.py) and the ingest job both touch the file system; both turn an ``OSError``
into the same short, readable skip reason with :func:`os_reason`, and neither ever opens
anything but a regular file (opening a FIFO for reading blocks until a writer appears; opening
a device can have side effects).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Literal

SkipKind = Literal["error", "link", "file"]
"""Why something was not ingested: ``error``, the file system refused (a folder that cannot be
listed, a file that cannot be read, an entry that vanished or changed kind while the run looked
at it); ``link``, a symbolic or hard link that is not followed (its target is taken under its
own path, or not at all); ``file``, a decision about a readable file (type, size, content)."""

_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the check must not block open()
    | getattr(os, "O_NOFOLLOW", 0)  # a link swapped in after the check is refused (ELOOP)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "vanished after it was listed",
    errno.ENOTDIR: "a folder on its path was replaced by a file",
    errno.ELOOP: "replaced by a symlink after it was listed",
    errno.EIO: "input/output error",
    errno.ENXIO: "no such device (a socket or an unplugged device)",
    errno.ENAMETOOLONG: "path too long",
}


class UnreadableSource(Exception):
    """A listed file could not be read; ``str(exc)`` is the skip reason, ``kind`` its kind."""

    def __init__(self, reason: str, kind: SkipKind = "error") -> None:
        super().__init__(reason)
        self.kind: SkipKind = kind


def os_reason(exc: OSError) -> str:
    """A short lower-case reason for an OS error (``"permission denied"``), never a traceback."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    text = exc.strerror or type(exc).__name__
    return text[:1].lower() + text[1:]


def kind_name(mode: int) -> str:
    """What an entry is, for reasons: ``"file"``, ``"folder"``, ``"FIFO"``, ``"socket"``, ..."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def human_size(size: int) -> str:
    """``"200.0 MB"``: decimal units, bytes without a fraction."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def too_large(size: int, limit: int) -> str:
    """The skip reason of a file over ``max_file_bytes``."""
    return f"too large ({human_size(size)} > {human_size(limit)} limit)"


def read_source(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``max_bytes``).

    The file may have changed since the walk listed it. Raises :class:`UnreadableSource` with a
    readable reason when it cannot be read, vanished, became a link or another kind of entry
    (which is never opened), or grew past ``max_bytes`` (kind ``file``; never truncated).
    """
    try:
        before = os.lstat(path)
    except OSError as exc:
        raise UnreadableSource(cannot_read(exc)) from None
    if not stat.S_ISREG(before.st_mode):
        raise UnreadableSource(f"replaced by a {kind_name(before.st_mode)} after it was listed")
    data = _read_regular(path, max_bytes + 1, max_bytes)
    if len(data) > max_bytes:
        limit = human_size(max_bytes)
        raise UnreadableSource(f"too large (grew past the {limit} limit while read)", kind="file")
    return data


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes (or fewer) of the regular file at ``path``, opened as
    :func:`read_source` opens it (never a FIFO, device or link swapped in after the listing).

    Raises :class:`UnreadableSource` with the reason when it cannot be read or is no longer a
    regular file.
    """
    return _read_regular(path, size)


def _read_regular(path: Path, size: int, max_bytes: int | None = None) -> bytes:
    """Up to ``size`` bytes of ``path``, opened without following a link or blocking on a FIFO,
    refused unless it is still a regular file (or, with ``max_bytes``, larger than that)."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as exc:
        raise UnreadableSource(cannot_read(exc)) from None
    with open(fd, "rb", closefd=True) as handle:
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode):
                raise UnreadableSource(
                    f"replaced by a {kind_name(now.st_mode)} after it was listed"
                )
            if max_bytes is not None and now.st_size > max_bytes:
                raise UnreadableSource(too_large(now.st_size, max_bytes), kind="file")
            return handle.read(size)
        except OSError as exc:
            raise UnreadableSource(cannot_read(exc)) from None


def cannot_read(exc: OSError) -> str:
    """The skip reason for a file that could not be stat'ed or read (``"cannot read: permission
    denied"``, ``"vanished after it was listed"``)."""
    reason = os_reason(exc)
    return reason if "after it was listed" in reason else f"cannot read: {reason}"
