"""release_free_heap gives fragmented free heap memory back to the OS."""

from __future__ import annotations

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
