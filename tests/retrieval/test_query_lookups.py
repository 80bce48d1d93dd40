"""One search, one query-cache lookup (Searcher, QueryBatcher, DenseEmbedder's cache).

Invariant: a search looks its query up in the embedder's cache at most once and is counted once
in the cache's counters (a hit, or a miss for a query not embedded before), whatever path it
takes: a single query, with or without its BM25 list searched ahead, or queries embedded
together by the micro-batcher. A BM25-only search does not look up at all. Before, a query
embedded for the first time was looked up twice (the Searcher's fast path, then the batcher)
and counted as two misses. Real Searcher over the session's corpus store, real bundled MiniLM.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.searcher import Searcher
from server.retrieval.types import SearchRequest
from tests.mcp_support import TENANTS, server_settings

WORDS = ["install", "backup", "restore", "contract", "notice", "parse", "config", "the", "of"]
_fresh = itertools.count()  # each example's queries are new to the session's shared cache


def _searcher(store: EdgeStore, embedder: DenseEmbedder, ahead: int, window_ms: int) -> Searcher:
    base = server_settings(store.root)
    concurrency = base.concurrency.model_copy(
        update={"search_ahead_threads": ahead, "batch_window_ms": window_ms}
    )
    return Searcher(base.model_copy(update={"concurrency": concurrency}), store, embedder)


def _counters(embedder: DenseEmbedder) -> tuple[int, int]:
    return embedder.cache.hits, embedder.cache.misses


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["hybrid", "dense", "bm25", "hybrid+rerank"])),
        min_size=1,
        max_size=6,
    ),
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    ahead=st.sampled_from([0, 2]),
)
def test_each_search_looks_its_query_up_once(
    corpus_store: EdgeStore,
    embedder: DenseEmbedder,
    picks: list[tuple[int, str]],
    words: list[str],
    ahead: int,
) -> None:
    searcher = _searcher(corpus_store, embedder, ahead, window_ms=5)
    run = next(_fresh)
    hits, misses = _counters(embedder)
    seen: set[int] = set()
    expected_hits = expected_misses = 0
    for key, mode in picks:
        query = f"{' '.join(words)} lookup{run}x{key}"
        searcher.search(SearchRequest(query, "docs", TENANTS[0], top_k=3, mode=mode))
        if mode == "bm25":
            continue
        if key in seen:
            expected_hits += 1
        else:
            expected_misses += 1
            seen.add(key)
    assert _counters(embedder) == (hits + expected_hits, misses + expected_misses)


def test_queries_embedded_together_are_each_counted_once(
    corpus_store: EdgeStore, embedder: DenseEmbedder
) -> None:
    searcher = _searcher(corpus_store, embedder, ahead=2, window_ms=200)
    run = next(_fresh)
    queries = [f"backup restore batched{run}x{i}" for i in range(6)]
    hits, misses = _counters(embedder)
    batches = searcher.query_embedder.batches
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        requests = [SearchRequest(q, "docs", TENANTS[0], top_k=3) for q in queries]
        responses = list(pool.map(searcher.search, requests))
    assert all(r.hits for r in responses)
    assert _counters(embedder) == (hits, misses + len(queries))
    assert searcher.query_embedder.batches - batches <= len(queries)
    for request in requests:  # now cached: one hit each, no model call
        searcher.search(request)
    assert _counters(embedder) == (hits + len(queries), misses + len(queries))
    assert searcher.query_embedder.batches - batches <= len(queries)
