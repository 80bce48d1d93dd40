"""Concurrent searches of two tenants never cross, and give what they give alone.

The invariant: whatever the interleaving (queries of both tenants batched into one embedding
call, store reads running side by side in the owner), each caller gets exactly the answer it
would get alone, and only its own tenant's data. Checked over random mixes of searches,
source listings and chunk reads run on threads against a real shared store (the owner, whose
reads run in parallel) and the real MiniLM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_support import SECRET_WORD, TENANTS, index_corpus, open_retrieval, server_settings

from server.retrieval import browse
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval
from server.retrieval.shared_store import SharedStore
from server.retrieval.types import SearchRequest
from server.settings import Domain

QUERIES = (
    "install the agent",
    "nightly backups to object storage",
    "rotate credentials",
    "termination notice",
    "parse the configuration file",
    "zephyrium",
    "quasarite",
)


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[Retrieval]:
    root = tmp_path_factory.mktemp("concurrent") / "store"
    store = SharedStore(root)
    assert store.is_owner
    overrides = {"concurrency": {"batch_window_ms": 5.0, "max_batch": 8}}
    retrieval = open_retrieval(store, server_settings(root, **overrides), embedder)
    index_corpus(retrieval)
    yield retrieval
    store.close()


Op = tuple[str, str, Domain, str]
"""(kind, tenant, domain, query): kind is 'search', 'sources' or 'chunk'."""


def _run(retrieval: Retrieval, op: Op) -> list[str]:
    """The op's answer as the sources it shows, in order (chunks: the window's sources)."""
    kind, tenant, domain, query = op
    if kind == "sources":
        listed = browse.list_sources(retrieval.store, retrieval.settings, tenant, domain)
        return [entry.source for entry in listed.sources]
    request = SearchRequest(query=query, domain=domain, tenant=tenant, top_k=4)
    response = retrieval.searcher.search(request)
    if kind == "search" or not response.hits:
        return [f"{hit.source}#{hit.id}" for hit in response.hits]
    window = browse.read_chunk(retrieval.store, retrieval.settings, tenant, response.hits[0].id, 1)
    return [view.source for view in [*window.before, window.chunk, *window.after]]


def _foreign(tenant: str) -> str:
    return next(t for t in TENANTS if t != tenant)


ops = st.lists(
    st.tuples(
        st.sampled_from(["search", "search", "sources", "chunk"]),
        st.sampled_from(TENANTS),
        st.sampled_from(list(Domain)),
        st.sampled_from(QUERIES),
    ),
    min_size=2,
    max_size=16,
)


@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mix=ops, workers=st.integers(min_value=2, max_value=8))
def test_concurrent_mixes_answer_as_alone_and_never_cross(
    shared: Retrieval, mix: list[Op], workers: int
) -> None:
    shared.embedder.cache.clear()  # cold: concurrent misses batch together
    run: Callable[[Op], list[str]] = lambda op: _run(shared, op)  # noqa: E731
    with ThreadPoolExecutor(max_workers=workers) as pool:
        together = list(pool.map(run, mix))
    for op, answer in zip(mix, together, strict=True):
        tenant = op[1]
        assert all(item.startswith(f"/srv/{tenant}/") for item in answer), (op, answer)
        assert not any(f"/srv/{_foreign(tenant)}/" in item for item in answer)
        assert answer == run(op), op  # the same answer as the op alone


def test_the_owner_serves_reads_side_by_side(shared: Retrieval, tmp_path: Path) -> None:
    """A second process-side view (a forwarding SharedStore) still reads the same data while
    the owner's own threads search: forwarding and parallel owner reads coexist."""
    forwarded = SharedStore(shared.store.root)  # type: ignore[attr-defined]
    try:
        assert not forwarded.is_owner
        collection = shared.settings.domains[Domain.DOCS].collection
        expected = {t: shared.store.count(collection, t) for t in TENANTS}
        request = SearchRequest(query=SECRET_WORD["acme"], domain="docs", tenant="acme", top_k=3)
        with ThreadPoolExecutor(max_workers=6) as pool:
            searches = [pool.submit(shared.searcher.search, request) for _ in range(6)]
            counts = {t: pool.submit(forwarded.count, collection, t) for t in TENANTS}
            assert {t: c.result() for t, c in counts.items()} == expected
            assert all(s.result().hits[0].source.startswith("/srv/acme/") for s in searches)
    finally:
        forwarded.close()
