"""Dynamic micro-batching of query embeddings.

Under concurrent load each search embedding its query alone costs one model call per query;
a transformer forward pass over 16 short queries costs little more than over one. The
:class:`QueryBatcher` lets concurrent callers (tool handlers run on worker threads) share one
call: the first query to miss the cache leads a batch that every later miss joins until the
model is free to take it (while another batch is being embedded; when the model is idle, for a
short window or until ``max_batch`` have joined); the leader embeds them all in one
``embed_queries(list)`` call and hands each caller its vector. A query already in the cache
never waits, and neither does the query of the only search in progress (:meth:`searching`):
nobody could join it, so its window would be pure latency (the window, and on a loaded machine
the thread's wake-up after it).

It wraps anything with ``cached_query(text)`` and ``embed_queries(texts)``
(:class:`~server.retrieval.embedder.DenseEmbedder` and any backend with the same two methods).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Protocol


class BatchQueryEmbedder(Protocol):
    """What the batcher needs of an embedder."""

    def cached_query(self, text: str) -> list[float] | None: ...

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...


class _Batch:
    """Queries waiting for one embedding call: each distinct text once, its callers' future."""

    def __init__(self) -> None:
        self.futures: dict[str, Future[list[float]]] = {}
        self.full = False


class QueryBatcher:
    """``embed_query(text)`` with concurrent cache misses embedded together.

    A batch closes when the model is free to take it: while an embedding call runs, every
    query that misses the cache joins the next batch; when the model is idle, the batch's
    first query waits up to ``window_s`` (seconds, from ``concurrency.batch_window_ms``) for
    company, unless its search is the only one in progress (callers mark their searches with
    :meth:`searching`; a caller that marks none may have company it does not know of, and
    waits). 0 embeds each query alone, as without the batcher. ``max_batch`` (from
    ``concurrency.max_batch``): a batch that reaches it runs as soon as the model is free.
    Vectors equal the single-call ones (same model, same normalisation; padding is masked).
    An error of the embedding call is raised in every caller of the batch.
    """

    def __init__(self, embedder: BatchQueryEmbedder, window_s: float, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.embedder = embedder
        self.window_s = max(0.0, window_s)
        self.max_batch = max_batch
        self._turn = threading.Condition()
        self._open: _Batch | None = None
        self._running = 0
        self._searches = 0
        self.batches = 0
        """Embedding calls made (statistics: queries per call = misses / batches)."""

    @property
    def gathering(self) -> int:
        """Distinct queries in the batch now gathering (not yet handed to the model)."""
        with self._turn:
            return 0 if self._open is None else len(self._open.futures)

    @contextmanager
    def searching(self) -> Iterator[None]:
        """Mark one search in progress for its duration (the Searcher wraps each search in it).

        While it is the only one, its query skips the window: no other search could join.
        """
        with self._turn:
            self._searches += 1
        try:
            yield
        finally:
            with self._turn:
                self._searches -= 1

    def embed_query(self, text: str) -> list[float]:
        """The query's vector: from the cache, else from a (possibly shared) model call.

        The cache is looked up once (one hit or one miss in its counters)."""
        cached = self.cached_query(text)
        if cached is not None:
            return cached
        return self.embed_missed(text)

    def cached_query(self, text: str) -> list[float] | None:
        """The cached vector of ``text``, or None: the search's one cache lookup (counted)."""
        return self.embedder.cached_query(text)

    def embed_missed(self, text: str) -> list[float]:
        """The vector of a query the caller has just missed in the cache (:meth:`cached_query`),
        from a (possibly shared) model call; it does not look the cache up again, so a search
        is counted once, as a miss. The vector is then cached by ``embed_queries``."""
        if self.window_s <= 0 or self.max_batch == 1:
            return self._run_alone(text)
        future, batch = self._join(text)
        if batch is not None:
            self._lead(batch)
        return future.result()

    def _run_alone(self, text: str) -> list[float]:
        with self._turn:
            self.batches += 1
        return self.embedder.embed_queries([text])[0]

    def _join(self, text: str) -> tuple[Future[list[float]], _Batch | None]:
        """Add ``text`` to the open batch; returns its future and, for a new batch's first
        query, the batch this caller now leads."""
        with self._turn:
            batch, leader = self._open, None
            if batch is None:
                batch = leader = self._open = _Batch()
            future = batch.futures.get(text)
            if future is None:
                future = batch.futures[text] = Future()
                if len(batch.futures) >= self.max_batch:
                    self._open = None  # later queries start the next batch
                    batch.full = True
                    self._turn.notify_all()
            return future, leader

    def _close(self, batch: _Batch) -> list[str]:
        """Wait until the model is free (and, when it is idle and another search is in progress
        or unknown, out the window or until the batch is full), then close the batch; its
        texts."""
        with self._turn:
            alone = self._searches == 1  # the caller's own search, and no other
            deadline = time.monotonic() + (0.0 if alone else self.window_s)
            while self._running or (not batch.full and time.monotonic() < deadline):
                self._turn.wait(None if self._running else deadline - time.monotonic())
            if self._open is batch:
                self._open = None
            self._running += 1
            self.batches += 1
            return list(batch.futures)

    def _lead(self, batch: _Batch) -> None:
        """Close the batch when its turn comes, embed it in one call, answer every caller."""
        texts = self._close(batch)
        try:
            vectors = self.embedder.embed_queries(texts)
        except BaseException as exc:
            for future in batch.futures.values():
                future.set_exception(exc)
            raise
        finally:
            with self._turn:
                self._running -= 1
                self._turn.notify_all()
        for text, vector in zip(texts, vectors, strict=True):
            batch.futures[text].set_result(vector)
