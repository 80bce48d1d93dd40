"""Where a store owner listens, and the one rule for removing a socket file.

The owner's socket paths are derived from the store directory itself (:func:`socket_paths_for`),
never read from the lock file: a lock file copied with the store still names the original
store's socket. A socket file is removed only when it is at one of the paths derived from the
remover's own store, belongs to this user, and nothing listens on it (a connect is refused).
A live socket is never removed, whoever it belongs to: the owner then picks its next path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import socket
import stat
import sys
import tempfile
from pathlib import Path

from server.errors import StoreError

logger = logging.getLogger(__name__)

SOCKET_DIR = ".ipc"
SOCKET_NAME = "owner.sock"
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" else 107
"""Longest socket path (bytes) that fits ``sockaddr_un.sun_path`` with its NUL."""
PROBE_TIMEOUT_S = 0.5
"""How long a liveness probe waits for a connect (a stopped owner still accepts into its
backlog, so a probe that waits longer learns nothing more)."""


def private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or check that an existing one is ours and private."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise StoreError(f"{path} is not a directory owned by this user; not sharing the store")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def socket_paths_for(root: Path) -> list[Path]:
    """Where the owner of the store at ``root`` may listen, best first.

    In the store directory when the path fits ``sun_path``; otherwise (or when the store's file
    system cannot hold a socket) a short private path named after the store.
    """
    preferred = root / SOCKET_DIR / SOCKET_NAME
    paths = [preferred] if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH else []
    digest = hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:24]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    bases = [Path(runtime) / "retrieval-mcp"] if runtime and Path(runtime).is_dir() else []
    bases += [Path(tempfile.gettempdir()) / f"retrieval-mcp-{os.getuid()}"]
    bases += [Path("/tmp") / f"retrieval-mcp-{os.getuid()}"]
    for base in bases:
        candidate = base / f"{digest}.sock"
        if len(os.fsencode(candidate)) <= MAX_SOCKET_PATH and candidate not in paths:
            paths.append(candidate)
    return paths


def socket_is_live(path: Path) -> bool:
    """True unless ``path`` provably has no listener (missing, or the connect is refused).

    Anything else (accepted, timed out, backlog full, not permitted) counts as live: the caller
    must then leave the file alone.
    """
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(PROBE_TIMEOUT_S)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    finally:
        probe.close()
    return True


def remove_dead_socket(root: Path, path: Path) -> bool:
    """Unlink the socket file at ``path`` if it is provably dead and the store's own; True if gone.

    Only paths derived from ``root`` qualify (a path from a lock file or anywhere else does
    not), only socket files of this user, and only when nothing listens on them.
    """
    if path not in socket_paths_for(root):
        return False
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid() or socket_is_live(path):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    logger.debug("removed the dead store socket %s", path)
    return True


def listen(root: Path, path: Path) -> tuple[socket.socket, int]:
    """A listening socket at ``path`` (0600 in a private directory) and the inode of its file.

    Raises StoreError when a live process listens there (it is not ours to replace) and OSError
    when the path cannot hold a socket.
    """
    private_dir(path.parent)
    if not remove_dead_socket(root, path):
        raise StoreError(f"{path} is taken (a live process listens there, or it is not our socket)")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(path))
        os.chmod(path, 0o600)  # the 0700 directory already keeps others out meanwhile
        listener.listen(32)
        inode = os.lstat(path).st_ino
    except OSError:
        listener.close()
        raise
    return listener, inode


def listen_first_free(root: Path) -> tuple[socket.socket, Path, int]:
    """Listen at the first of the store's socket paths that can take a socket.

    Returns (listener, path, inode of the socket file). Raises StoreError naming every path
    tried and why it could not be used.
    """
    failures: list[str] = []
    for path in socket_paths_for(root):
        try:
            listener, inode = listen(root, path)
        except (OSError, StoreError) as exc:
            failures.append(f"{path}: {exc}")
            continue
        return listener, path, inode
    raise StoreError("; ".join(failures) or "no socket path short enough")


def still_bound(path: Path, inode: int) -> bool:
    """True while the socket file this process bound (``inode``) is still at ``path``."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(info.st_mode) and info.st_ino == inode
