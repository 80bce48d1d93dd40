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
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return trim


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when the C library supports it."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
