"""Work a search can do before its query vector exists, on a spare thread while it is embedded.

A hybrid search waits for the query embedding (one model call: most of a search) before its
dense searches can start, but its BM25 search needs only the query's terms. The machine has a
second core, and the embedding leaves the interpreter free while the model runs (OpenVINO,
onnxruntime and torch release the GIL in their kernels), so the BM25 search can run meanwhile
and its list be ready when the vector is.

:class:`RunAhead` starts such a call on one of a few worker threads; :meth:`Ahead.result`
collects it. When no worker took the call by then (all busy with other searches' calls, as
under many concurrent clients), the caller cancels it and makes the call itself: a search
never waits behind another search's work, and never pays more than the hand-off.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class Ahead(Generic[T]):
    """A call started ahead (or, with no worker, not started: made by :meth:`result`)."""

    def __init__(self, call: Callable[[], T], future: Future[T] | None) -> None:
        self._call = call
        self._future = future

    def result(self) -> T:
        """The call's value (or its exception, raised here): the worker's when it took the
        call, else the caller's own call, made now."""
        if self._future is None or self._future.cancel():
            return self._call()
        return self._future.result()


class RunAhead:
    """Calls run on up to ``workers`` threads (0: never ahead, each made by its caller).

    Threads start on first use and are shared by every search of one Searcher.
    """

    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        self.workers = workers
        self._pool = (
            ThreadPoolExecutor(workers, thread_name_prefix="search-ahead") if workers else None
        )

    def start(self, call: Callable[[], T]) -> Ahead[T]:
        """Start ``call`` on a worker when there is one; collect it with ``result()``."""
        if self._pool is None:
            return Ahead(call, None)
        return Ahead(call, self._pool.submit(call))

    def close(self) -> None:
        """Stop the workers once their calls are done (later calls run in their callers)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
