"""Query micro-batching: concurrent queries share one embedding call, vectors unchanged."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.embedder import DenseEmbedder
from server.retrieval.query_batcher import QueryBatcher

QUERIES = [
    "how do I rotate the signing keys",
    "termination for convenience clause",
    "def parse_config(path)",
    "bees",
    "what does the retry policy do when the upstream returns 503 with a long body of text",
    "Kündigungsfrist",
]
LONG_WINDOW_S = 30.0
"""Long enough that only a full batch (never the clock) closes it: no timing in these tests."""


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def _single(embedder: DenseEmbedder, text: str) -> list[float]:
    """The vector of ``text`` embedded alone, bypassing the cache."""
    return list(embedder.embed_documents([text])[0].tolist())


def _concurrently(batcher: QueryBatcher, texts: list[str]) -> list[list[float]]:
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        return list(pool.map(batcher.embed_query, texts))


def test_concurrent_queries_share_one_call_with_the_single_call_vectors(
    embedder: DenseEmbedder,
) -> None:
    embedder.cache.clear()
    batcher = QueryBatcher(embedder, LONG_WINDOW_S, max_batch=len(QUERIES))
    vectors = _concurrently(batcher, QUERIES)
    assert batcher.batches == 1
    for text, vector in zip(QUERIES, vectors, strict=True):
        assert len(vector) == embedder.dimension
        assert _cosine(vector, _single(embedder, text)) >= 0.9999


def test_cached_queries_skip_the_batch_and_repeats_are_embedded_once(
    embedder: DenseEmbedder,
) -> None:
    embedder.cache.clear()
    batcher = QueryBatcher(embedder, LONG_WINDOW_S, max_batch=2)
    first = _concurrently(batcher, ["alpha query", "beta query"])
    assert batcher.batches == 1
    assert batcher.embed_query("alpha query") == first[0]  # from the LRU cache, no wait
    assert batcher.batches == 1
    short = QueryBatcher(embedder, 0.2, max_batch=8)
    repeated = _concurrently(short, ["gamma query", "gamma query", "gamma query"])
    assert repeated[0] == repeated[1] == repeated[2]
    assert _cosine(repeated[0], _single(embedder, "gamma query")) >= 0.9999


def test_window_zero_embeds_each_query_alone(embedder: DenseEmbedder) -> None:
    embedder.cache.clear()
    batcher = QueryBatcher(embedder, 0.0, max_batch=32)
    vectors = _concurrently(batcher, QUERIES[:3])
    assert batcher.batches == 3
    for text, vector in zip(QUERIES[:3], vectors, strict=True):
        assert _cosine(vector, _single(embedder, text)) >= 0.9999


@pytest.mark.slow
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(
        st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60),
        min_size=1,
        max_size=8,
    ),
    max_batch=st.integers(min_value=1, max_value=8),
)
def test_any_batching_gives_the_single_call_vectors(
    embedder: DenseEmbedder, texts: list[str], max_batch: int
) -> None:
    """Whatever the texts (any lengths, so any padding) and however they group into batches,
    each caller gets its own text's single-call vector."""
    embedder.cache.clear()
    batcher = QueryBatcher(embedder, 0.002, max_batch=max_batch)
    vectors = _concurrently(batcher, texts)
    for text, vector in zip(texts, vectors, strict=True):
        assert _cosine(vector, _single(embedder, text)) >= 0.9999


class _SlowFirstCall:
    """The real embedder, whose first model call waits until the test lets it go (a busy
    model, without timing)."""

    def __init__(self, real: DenseEmbedder) -> None:
        self.real = real
        self.calls: list[list[str]] = []
        self.busy = threading.Event()
        self.release = threading.Event()

    def cached_query(self, text: str) -> list[float] | None:
        return self.real.cached_query(text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        self.busy.set()
        self.release.wait()
        return self.real.embed_queries(texts)


def test_queries_arriving_while_the_model_is_busy_share_the_next_call(
    embedder: DenseEmbedder,
) -> None:
    embedder.cache.clear()
    slow = _SlowFirstCall(embedder)
    batcher = QueryBatcher(slow, 0.001, max_batch=32)
    later = QUERIES[1:5]
    with ThreadPoolExecutor(max_workers=1 + len(later)) as pool:
        first = pool.submit(batcher.embed_query, QUERIES[0])
        assert slow.busy.wait(60)
        rest = [pool.submit(batcher.embed_query, text) for text in later]
        while batcher.gathering < len(later):  # all four joined the waiting batch
            threading.Event().wait(0.01)
        slow.release.set()
        vectors = [first.result(), *(f.result() for f in rest)]
    assert len(slow.calls) == 2 and slow.calls[0] == [QUERIES[0]]
    assert sorted(slow.calls[1]) == sorted(later)
    for text, vector in zip(QUERIES[:5], vectors, strict=True):
        assert _cosine(vector, _single(embedder, text)) >= 0.9999


def test_the_only_search_in_progress_does_not_wait_for_company(embedder: DenseEmbedder) -> None:
    """Invariant: a window only ever waits for queries that could join it. With its search the
    only one in progress, a query is embedded at once, whatever the window (here an hour: a
    wait would never end within the test)."""
    embedder.cache.clear()
    batcher = QueryBatcher(embedder, 3600.0, max_batch=32)
    got: list[list[float]] = []

    def lone_search() -> None:
        with batcher.searching():
            got.append(batcher.embed_query(QUERIES[0]))

    thread = threading.Thread(target=lone_search, daemon=True)
    thread.start()
    thread.join(120)  # a model call, not the window; the window would be an hour
    assert not thread.is_alive(), "a lone search waited out the batch window"
    assert batcher.batches == 1
    assert _cosine(got[0], _single(embedder, QUERIES[0])) >= 0.9999


def test_searches_in_progress_together_still_share_one_call(embedder: DenseEmbedder) -> None:
    """Two searches in progress at once: the first query waits for the second (the window is
    long; the full batch closes it), and both are embedded in one call."""
    embedder.cache.clear()
    batcher = QueryBatcher(embedder, LONG_WINDOW_S, max_batch=2)
    both_searching = threading.Barrier(2)

    def search(text: str) -> list[float]:
        with batcher.searching():
            both_searching.wait()
            return batcher.embed_query(text)

    with ThreadPoolExecutor(max_workers=2) as pool:
        vectors = list(pool.map(search, QUERIES[:2]))
    assert batcher.batches == 1
    for text, vector in zip(QUERIES[:2], vectors, strict=True):
        assert _cosine(vector, _single(embedder, text)) >= 0.9999
