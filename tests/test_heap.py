"""release_free_heap gives fragmented free heap memory back to the OS."""

from __future__ import annotations

import sys

import pytest

from server.evaluation.bench_process import memory_figures
from server.retrieval.heap import release_free_heap


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_release_free_heap_returns_freed_holes_to_the_os() -> None:
    blocks: list[bytes] = []
    pins: list[bytes] = []
    for i in range(1500):  # 100 kB blocks (below the mmap threshold) pinned apart by small ones
        blocks.append(b"x" * 100_000)
        pins.append(b"%d" % i * 200)  # > 512 bytes: from malloc, not Python's small-object pool
    del blocks  # 150 MB of holes the allocator keeps: the pins stop it trimming the top
    before = memory_figures().anon
    assert release_free_heap()
    after = memory_figures().anon
    assert before - after > 100, (before, after)
    assert len(pins) == 1500
