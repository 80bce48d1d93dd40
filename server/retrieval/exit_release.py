"""What a store holder owns, released when the interpreter exits however it got there.

``close()`` releases the lock record and the socket on the ordinary path. A SIGTERM (raised as
:class:`~server.shutdown.Terminated`) or an error can arrive between opening a store and the
``try`` whose ``finally`` closes it (an ingest still loading its model, a constructor part-way
through): the process then exits with its record and socket left, as if killed. At exit
(``atexit``: any exit but ``os._exit`` and uncatchable signals) every owner socket still bound
by this process is unlinked (identity checked: the inode it bound), then every lock this
process still holds is released (its record truncated). Objects are held weakly: a store
closed and dropped is not kept alive.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref
from typing import Protocol


class Releasable(Protocol):
    """Anything with an idempotent ``release_at_exit()``."""

    def release_at_exit(self) -> None: ...


_sockets: weakref.WeakSet[Releasable] = weakref.WeakSet()
_locks: weakref.WeakSet[Releasable] = weakref.WeakSet()
_guard = threading.Lock()


def release_socket_at_exit(owner: Releasable) -> None:
    """Unlink ``owner``'s socket at exit if it is still bound (released before locks)."""
    with _guard:
        _sockets.add(owner)


def release_lock_at_exit(lock: Releasable) -> None:
    """Release ``lock`` at exit if it is still held."""
    with _guard:
        _locks.add(lock)


@atexit.register
def _release_all() -> None:
    with _guard:
        pending = [*_sockets, *_locks]  # sockets first: clients then find no dead owner's
    for held in pending:
        with contextlib.suppress(Exception):  # best effort, per object: the process is leaving
            held.release_at_exit()
