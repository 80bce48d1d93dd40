"""release_free_heap gives fragmented free heap memory back to the OS."""

from __future__ import annotations

import os
import sys
import time

import pytest

from retrieval_eval.bench_process import memory_figures, run_in_fresh_process
from server.retrieval.heap import release_free_heap, trim_periodically


def fragment_then_measure(trim: bool, trimmer_seconds: float = 0.0) -> tuple[float, float]:
    """Anon MiB before and after freeing 150 MB of pinned-apart heap blocks (and trimming)."""
    blocks: list[bytes] = []
    pins: list[bytes] = []
    for i in range(1500):  # 100 kB blocks (below the mmap threshold) pinned apart by small ones
        blocks.append(b"x" * 100_000)
        pins.append(b"%d" % i * 200)  # > 512 bytes: from malloc, not Python's small-object pool
    del blocks  # 150 MB of holes the allocator keeps: the pins stop it trimming the top
    before = memory_figures().anon
    if trimmer_seconds:
        assert trim_periodically(trimmer_seconds) is not None
        time.sleep(trimmer_seconds * 20)
    elif trim:
        assert release_free_heap()
    after = memory_figures().anon
    assert len(pins) == 1500
    return before, after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_release_free_heap_returns_freed_holes_to_the_os() -> None:
    # A fresh interpreter: the test session's own heap history must not decide the outcome.
    before, after = run_in_fresh_process(fragment_then_measure, True)
    assert before - after > 100, (before, after)
    kept_before, kept_after = run_in_fresh_process(fragment_then_measure, False)
    assert kept_before - kept_after < 20, (kept_before, kept_after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_the_periodic_trimmer_returns_freed_holes_without_being_asked() -> None:
    """What a serving process runs (serve_http starts it): freed heap goes back on its own."""
    before, after = run_in_fresh_process(fragment_then_measure, False, 0.05)
    assert before - after > 100, (before, after)


def arenas_after_threads(cap: int, threads: int = 8) -> tuple[bool, int]:
    """(cap set, malloc arenas glibc reports) after ``threads`` threads, alive at once, each
    allocated and freed request-sized blocks (below the mmap threshold, so from an arena)."""
    import ctypes
    import tempfile
    import threading
    from pathlib import Path

    from server.retrieval.heap import limit_malloc_arenas

    capped = limit_malloc_arenas(cap)
    together = threading.Barrier(threads)

    def work() -> None:
        together.wait()  # all alive at once: none can inherit an arena another one let go of
        for _ in range(200):
            blocks = [bytearray(20_000) for _ in range(20)]  # > 512 bytes: malloc, not pymalloc
            del blocks
        together.wait()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    libc = ctypes.CDLL("libc.so.6")
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "malloc_info.xml"
        stream = libc.fopen(str(report).encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        return capped, report.read_text().count("<heap nr=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_limit_malloc_arenas_caps_the_arenas_worker_threads_spread_over() -> None:
    """The serving process's cap: 8 threads allocating at once share at most 2 arenas; without
    it (0: glibc's default) each gets its own (up to 8 per core)."""
    capped, arenas = run_in_fresh_process(arenas_after_threads, 2)
    assert capped
    assert arenas <= 2, arenas
    default_set, default_arenas = run_in_fresh_process(arenas_after_threads, 0)
    assert not default_set
    assert default_arenas >= min(8, 8 * (os.cpu_count() or 1)), default_arenas
