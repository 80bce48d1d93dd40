"""Give freed heap memory back to the OS after bursts of large temporary allocations.

A cross-encoder pass allocates activation tensors of varying size; glibc keeps the freed
memory in its arenas (fragmented), so a long-running server's resident set creeps up after
each rerank. ``malloc_trim(0)`` returns those free pages; measured on 15 reranks of 20 pairs
it kept ~170 MB out of the resident set. It is a no-op where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading
import time
from collections.abc import Callable

M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the most malloc arenas (malloc.h)."""


@functools.cache
def _libc_function(name: str) -> Callable[..., int] | None:
    """A glibc function by name, or None where the C library lacks it (musl, macOS)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        function: Callable[..., int] = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None
    return function


def _malloc_trim() -> Callable[[int], int] | None:
    return _libc_function("malloc_trim")


def limit_malloc_arenas(arenas: int) -> bool:
    """Cap glibc's malloc arenas at ``arenas`` (``mallopt(M_ARENA_MAX)``) for the rest of the
    process; 0 leaves glibc's default (8 per core). True when the cap was set.

    Call it before the worker threads start: a thread keeps the arena it got first, and
    arenas already made stay. Why (``RETRIEVAL_CONCURRENCY__MALLOC_ARENAS``, default 2): with
    one arena per busy thread up to 8 per core, the same request-sized blocks are allocated
    and freed in a different arena each time a worker thread moves, so each of the 16 arenas
    a 2-core machine allows grows to its own high-water mark over minutes, and the resident
    set with them, though what is live stays flat (measured in "A long-running HTTP server:
    memory" in README.md).
    """
    mallopt = _libc_function("mallopt")
    if arenas <= 0 or mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when the C library supports it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


TRIM_EVERY_SECONDS = 10.0
"""How often a serving process gives free heap back (:func:`trim_periodically`). A trim took
5 ms the first time and under 1 ms after (embedder loaded, 8 threads embedding), so every 10 s
costs nothing measurable, and heap freed by a burst is back with the OS within seconds."""


def trim_periodically(seconds: float = TRIM_EVERY_SECONDS) -> threading.Thread | None:
    """A started daemon thread calling :func:`release_free_heap` every ``seconds``; None where
    the C library has no ``malloc_trim``.

    Why: a server's many worker threads allocate and free request-sized blocks (JSON bodies,
    query vectors, search results) across glibc's per-thread arenas; the free space left
    between live blocks stays resident, and under 16 clients it grew the resident set by a few
    MB a minute after the first (a 5-minute soak: 29 -> 32 MB free in the arenas, the resident
    set +9 MB). Trimming hands those free pages back, so the resident set follows what is live.
    """
    if _malloc_trim() is None:
        return None

    def trim_forever() -> None:
        while True:
            time.sleep(seconds)
            release_free_heap()

    thread = threading.Thread(target=trim_forever, name="retrieval-mcp-heap-trim", daemon=True)
    thread.start()
    return thread
