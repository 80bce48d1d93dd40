"""Benchmark plumbing: run a step in a fresh process and read that process's memory figures.

Each measured role (store builder, serving process, ingest) runs in its own spawned
interpreter, so its peak RSS is its own and not the harness's or another role's.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

STATUS_FILE = Path("/proc/self/status")


@dataclass(frozen=True)
class MemoryFigures:
    """Resident memory of the calling process in MiB (Linux /proc; ru_maxrss elsewhere).

    ``peak`` is the high-water mark of the resident set (VmHWM = ru_maxrss), ``current`` the
    resident set now, split into ``anon`` (heap: owned by the process) and ``file``
    (memory-mapped files such as model weights and store segments: page cache the kernel can
    reclaim).
    """

    peak: float
    current: float
    anon: float
    file: float

    def describe(self) -> str:
        """One-line rendering for the report."""
        return (
            f"peak {self.peak:6.0f} MB   (now {self.current:.0f} MB = "
            f"{self.anon:.0f} anon + {self.file:.0f} file-mapped)"
        )


def memory_figures() -> MemoryFigures:
    """The calling process's resident-memory figures."""
    fields: dict[str, float] = {}
    try:
        for line in STATUS_FILE.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in {"VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"}:
                fields[key] = float(value.split()[0]) / 1024  # kB -> MiB
    except OSError:
        pass
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    current = fields.get("VmRSS", peak)
    return MemoryFigures(
        peak=peak,
        current=current,
        anon=fields.get("RssAnon", current),
        file=fields.get("RssFile", 0.0) + fields.get("RssShmem", 0.0),
    )


def progress_line(message: str) -> None:
    """A progress line on stderr (stdout carries the report), from any bench process."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def run_in_fresh_process(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``fn`` in a newly spawned interpreter and return its (picklable) result.

    ``fn`` must be a module-level function. Exceptions raised in the child are re-raised here.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args, **kwargs).result()
