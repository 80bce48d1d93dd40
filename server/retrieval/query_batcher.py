"""Dynamic micro-batching of query embeddings.

Under concurrent load each search embedding its query alone costs one model call per query;
a transformer forward pass over 16 short queries costs little more than over one. The
:class:`QueryBatcher` lets concurrent callers (tool handlers run on worker threads) share one
call: the first query to miss the cache becomes the batch's leader, waits up to ``window_s``
for others (or until ``max_batch`` have joined), embeds them all in one
``embed_queries(list)`` call and hands each caller its vector. A query already in the cache
never waits.

It wraps anything with ``cached_query(text)`` and ``embed_queries(texts)``
(:class:`~server.retrieval.embedder.DenseEmbedder` and any backend with the same two methods).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol


class BatchQueryEmbedder(Protocol):
    """What the batcher needs of an embedder."""

    def cached_query(self, text: str) -> list[float] | None: ...

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...


class _Batch:
    """Queries waiting for one embedding call: each distinct text once, its callers' future."""

    def __init__(self) -> None:
        self.futures: dict[str, Future[list[float]]] = {}
        self.full = threading.Event()


class QueryBatcher:
    """``embed_query(text)`` with concurrent cache misses embedded together.

    ``window_s`` (seconds, from ``concurrency.batch_window_ms``): how long a batch's leader
    waits for other queries; 0 embeds each query alone, as without the batcher.
    ``max_batch`` (from ``concurrency.max_batch``): a batch that reaches it runs at once.
    Vectors equal the single-call ones (same model, same normalisation; padding is masked).
    Errors of the embedding call are raised in every caller of the batch.
    """

    def __init__(self, embedder: BatchQueryEmbedder, window_s: float, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.embedder = embedder
        self.window_s = max(0.0, window_s)
        self.max_batch = max_batch
        self._guard = threading.Lock()
        self._open: _Batch | None = None
        self.batches = 0
        """Embedding calls made (statistics: queries per call = misses / batches)."""

    def embed_query(self, text: str) -> list[float]:
        """The query's vector: from the cache, else from a (possibly shared) model call."""
        cached = self.embedder.cached_query(text)
        if cached is not None:
            return cached
        if self.window_s <= 0 or self.max_batch == 1:
            return self._run_alone(text)
        future, batch = self._join(text)
        if batch is not None:
            self._lead(batch)
        return future.result()

    def _run_alone(self, text: str) -> list[float]:
        with self._guard:
            self.batches += 1
        return self.embedder.embed_queries([text])[0]

    def _join(self, text: str) -> tuple[Future[list[float]], _Batch | None]:
        """Add ``text`` to the open batch; returns its future and, for a new batch's first
        query, the batch this caller now leads."""
        with self._guard:
            batch, leader = self._open, None
            if batch is None:
                batch = leader = self._open = _Batch()
            future = batch.futures.get(text)
            if future is None:
                future = batch.futures[text] = Future()
                if len(batch.futures) >= self.max_batch:
                    self._open = None  # later queries start the next batch
                    batch.full.set()
            return future, leader

    def _lead(self, batch: _Batch) -> None:
        """Wait out the window (or a full batch), close the batch, embed it, answer all."""
        batch.full.wait(self.window_s)
        with self._guard:
            if self._open is batch:
                self._open = None
            self.batches += 1
            texts = list(batch.futures)
        try:
            vectors = self.embedder.embed_queries(texts)
        except BaseException as exc:
            for future in batch.futures.values():
                future.set_exception(exc)
            raise
        for text, vector in zip(texts, vectors, strict=True):
            batch.futures[text].set_result(vector)
