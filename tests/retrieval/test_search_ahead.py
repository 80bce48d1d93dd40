"""BM25 searched while the query is embedded (run_ahead.py, Searcher): same results, earlier.

Invariant: a search's response (hits, every stage's score and rank, notes, fusion label) is the
same whether its BM25 search runs ahead on a worker thread or after the embedding, for every
domain, mode, tenant and filter. Real stores (the session's corpus in all three domains),
real bundled MiniLM.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.run_ahead import RunAhead
from server.retrieval.searcher import Searcher
from server.retrieval.store import HybridQuery, QueryResponse
from server.retrieval.types import SearchRequest
from tests.mcp_support import SECRET_WORD, TENANTS, index_corpus, open_retrieval, server_settings

WORDS = [
    "install", "agent", "backup", "restore", "service", "credentials", "quarter", "upgrade",
    "contract", "termination", "notice", "liability", "function", "parse", "config", "error",
    "the", "of", "404", *SECRET_WORD.values(),
]  # fmt: skip
FILTERS: list[dict[str, Any]] = [
    {},
    {"path_prefix": "/srv/acme/handbook/guides"},
    {"doc_type": "markdown"},
    {"doc_type": ["text", "markdown"]},
]


class RecordingStore(EdgeStore):
    """The embedded store, noting for each query the thread it ran on and what it asked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, HybridQuery]] = []

    def query(self, name: str, request: HybridQuery) -> QueryResponse:
        self.calls.append((threading.current_thread().name, request))
        return super().query(name, request)


def _searcher(store: Any, embedder: DenseEmbedder, threads: int) -> Searcher:
    base = server_settings(store.root)
    concurrency = base.concurrency.model_copy(update={"search_ahead_threads": threads})
    return Searcher(base.model_copy(update={"concurrency": concurrency}), store, embedder)


def _seen(searcher: Searcher, request: SearchRequest) -> dict[str, Any]:
    response = searcher.search(request)
    seen = response.model_dump(exclude={"timings", "freshness"})
    return dict(seen)


@pytest.fixture(scope="module")
def searchers(corpus_store: EdgeStore, embedder: DenseEmbedder) -> tuple[Searcher, Searcher]:
    return _searcher(corpus_store, embedder, 2), _searcher(corpus_store, embedder, 0)


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=5),
    domain=st.sampled_from(["docs", "legal", "code"]),
    mode=st.sampled_from(["hybrid", "dense", "bm25"]),
    tenant=st.sampled_from(TENANTS),
    filters=st.sampled_from(FILTERS),
    top_k=st.integers(1, 12),
)
def test_ahead_or_not_the_response_is_the_same(
    searchers: tuple[Searcher, Searcher],
    words: Sequence[str],
    domain: str,
    mode: str,
    tenant: str,
    filters: dict[str, Any],
    top_k: int,
) -> None:
    ahead, inline = searchers
    if domain != "docs":
        filters = {k: v for k, v in filters.items() if k == "path_prefix"}
    request = SearchRequest(
        " ".join(words),
        domain,
        tenant,
        top_k=top_k,
        filters=filters,
        mode=mode,  # type: ignore[arg-type]
    )
    assert _seen(ahead, request) == _seen(inline, request)


@pytest.mark.slow
def test_a_hybrid_search_runs_bm25_on_a_worker_once(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> None:
    """The BM25 search runs on a search-ahead thread as a BM25-only query that fetches nothing,
    and the hybrid query brings its list instead of searching BM25 again."""
    path = tmp_path_factory.mktemp("ahead") / "store"
    store = RecordingStore(path)
    try:
        index_corpus(open_retrieval(store, server_settings(path), embedder))
        searcher = _searcher(store, embedder, 2)
        store.calls.clear()
        response = searcher.search(SearchRequest("restore a backup", "docs", "acme", mode="hybrid"))
        assert response.hits
        [(thread, bm25), (caller, hybrid)] = store.calls
        assert thread.startswith("search-ahead") and caller == threading.current_thread().name
        assert bm25.dense is None and bm25.sparse is not None and bm25.limit == 0
        assert hybrid.dense is not None and hybrid.sparse_found is not None
        assert (bm25.sparse, bm25.candidates, bm25.filters) == (
            hybrid.sparse,
            hybrid.candidates,
            hybrid.filters,
        )
        # dense-only and BM25-only searches have nothing to overlap: one query each
        for mode in ("dense", "bm25"):
            store.calls.clear()
            searcher.search(SearchRequest("restore a backup", "docs", "acme", mode=mode))  # type: ignore[arg-type]
            assert [c[0] for c in store.calls] == [threading.current_thread().name]
    finally:
        store.close()


def test_a_call_no_worker_took_is_made_by_its_caller() -> None:
    """With every worker busy, ``result()`` cancels the queued call and makes it itself (a
    search never waits behind another search's work); errors reach the caller either way."""
    ahead = RunAhead(1)
    release = threading.Event()
    busy = ahead.start(lambda: release.wait(5))
    queued = ahead.start(lambda: threading.current_thread().name)
    assert queued.result() == threading.current_thread().name
    release.set()
    assert busy.result() is True

    def fail() -> None:
        raise ValueError("store down")

    with pytest.raises(ValueError, match="store down"):
        ahead.start(fail).result()
    ahead.close()
    assert ahead.start(lambda: 7).result() == 7  # closed: calls run in their callers
    assert RunAhead(0).start(lambda: threading.current_thread().name).result() == (
        threading.current_thread().name
    )
