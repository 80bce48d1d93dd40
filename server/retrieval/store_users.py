"""Which processes use a store through its owner, each reported once while it does.

A connection to the owner's socket is not yet a user: liveness probes (``socket_is_live``:
doctor's lock check, an opener deciding whether a socket file is dead) connect and leave
without a request. A process counts as using the store from its first request, and is named
once however many connections it holds, until its last one closes. Before, every connection
was logged on accept, so one ``retrieval-mcp doctor`` run (a probe, then a client) showed
"pid N uses the store" twice in the owner's log.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from pathlib import Path

logger = logging.getLogger("server.retrieval.shared_store")


class StoreUsers:
    """Counts each client process's active connections that have made a request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._connections: Counter[int | None] = Counter()
        self._guard = threading.Lock()

    def arrived(self, pid: int | None) -> None:
        """A connection of ``pid`` made its first request; logs the pid's first one."""
        with self._guard:
            self._connections[pid] += 1
            first = self._connections[pid] == 1
        if first:
            logger.info("pid %s uses the store at %s through this process", pid, self.root)

    def left(self, pid: int | None) -> None:
        """A connection that :meth:`arrived` closed."""
        with self._guard:
            self._connections[pid] -= 1
            if self._connections[pid] <= 0:
                del self._connections[pid]
