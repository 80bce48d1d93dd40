"""The memory allocator of a long-running HTTP server: jemalloc where the machine has it.

Why: under many clients a server's worker threads allocate and free request-sized blocks (the
engine's result tables, JSON bodies) across glibc's per-thread arenas, and the arenas' high-water
marks rise with the requests in flight: a 5-minute soak at 16 clients grew the resident set by
1-22 MB after its first minute whatever glibc was told (capped arenas, a fixed mmap threshold,
``malloc_trim`` every 10 s; README "A long-running HTTP server: memory"). jemalloc, with a
background thread purging freed pages after a second, kept it flat in the same soak.

A process cannot change its allocator once running: ``serve`` over HTTP re-executes itself
once, same pid and arguments, with jemalloc in ``LD_PRELOAD`` (the dynamic loader's documented
way to interpose ``malloc``). OpenVINO's threading library, oneTBB, loads its topology helper
with ``RTLD_DEEPBIND``, which makes that helper free with glibc what jemalloc allocated
("free(): invalid size" at the first inference: oneTBB issues #1636 and #1645);
``TBB_ENABLE_SANITIZERS=1`` is oneTBB's documented way to load it without, so it is set too.

Setting ``mcp.allocator`` (``RETRIEVAL_MCP__ALLOCATOR``): ``auto`` (jemalloc when the C library
loader finds ``libjemalloc``, e.g. Debian's ``libjemalloc2``; glibc otherwise), ``glibc`` (never
re-execute), or the path of an allocator library to preload.
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from server.errors import InvalidRequestError

logger = logging.getLogger(__name__)

APPLIED_ENV = "RETRIEVAL_ALLOCATOR_APPLIED"
"""Set in the re-executed process: the allocator is in place, never re-execute again."""
JEMALLOC_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
"""jemalloc's ``MALLOC_CONF`` unless the user set one: a background thread returns pages
freed for a second (``dirty_decay_ms``) to the OS, skipping the lazily-freed stage (``muzzy``),
so the resident set follows what is live without a purge on the request path."""


def find_jemalloc() -> str | None:
    """The jemalloc library's name as the loader resolves it (``libjemalloc.so.2``), or None."""
    return ctypes.util.find_library("jemalloc")


def chosen_library(setting: str, preloaded: str = "") -> str | None:
    """The library ``serve`` over HTTP preloads for ``setting``, or None: ``glibc``, ``auto``
    without jemalloc on the machine, or ``auto`` with jemalloc already in ``preloaded``
    (``LD_PRELOAD``). Raises InvalidRequestError for a library path that is not a file."""
    if setting == "glibc":
        return None
    if setting == "auto":
        return None if "jemalloc" in preloaded else find_jemalloc()
    path = Path(setting).expanduser()
    if not path.is_file():
        raise InvalidRequestError(
            f"mcp.allocator {setting!r} is not a library file: give 'auto', 'glibc' or the "
            "path of an allocator library (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2)"
        )
    return str(path)


def preload_env(setting: str, env: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to re-execute ``serve`` with, or None to run as is: already re-executed,
    or no library to preload (:func:`chosen_library`, whose errors it raises)."""
    if env.get(APPLIED_ENV):
        return None
    preloaded = env.get("LD_PRELOAD", "")
    library = chosen_library(setting, preloaded)
    if library is None:
        return None
    new = {**env, APPLIED_ENV: library, "TBB_ENABLE_SANITIZERS": "1"}
    new["LD_PRELOAD"] = f"{library} {preloaded}".strip()
    if "jemalloc" in library:
        new.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return new


def use_allocator(setting: str) -> None:
    """Re-execute this process with the allocator ``setting`` names when it is not in place yet
    (:func:`preload_env`); returns only when no re-execution is needed. Logs the allocator in
    use once, in the process that serves."""
    applied = os.environ.get(APPLIED_ENV)
    if applied:
        logger.info("memory allocator: %s (mcp.allocator)", applied)
        return
    env = preload_env(setting, os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)
