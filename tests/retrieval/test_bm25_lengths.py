"""A tenant's BM25 vectors are encoded with an average length near its points' actual one.

BM25 normalises a document's term weights by its length over the average length of the
tenant's documents (length_stats.py keeps the average per tenant). Stored vectors are encoded
with the average of their time and re-encoded when the tenant's average drifts more than
``AVG_LEN_DRIFT`` from it. Invariant: after any sequence of ingests and deletes, the average a
tenant's vectors were encoded with is within ``AVG_LEN_DRIFT`` of its points' average. Deletes
used to leave it stale: deleting a tenant's long documents left the short ones scored against
the long ones' average, so the same documents ranked differently than in a store that never
held the deleted ones.
"""

from __future__ import annotations

import pytest
from conftest import MakeRetrieval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.factory import Retrieval
from server.retrieval.indexer import AVG_LEN_DRIFT
from server.retrieval.length_stats import tenant_lengths
from server.retrieval.types import Chunk, SearchRequest

WORDS = ["harbour", "crane", "tide", "ledger", "copper", "meadow", "lantern", "orchard"]


def _doc(source: str, words: int, seed: int = 0) -> Chunk:
    text = " ".join(WORDS[(seed + i) % len(WORDS)] for i in range(words))
    return Chunk(tenant="acme", doc_id=source, source=source, text=text)


def _bm25(retrieval: Retrieval, query: str) -> list[tuple[str, float]]:
    response = retrieval.searcher.search(
        SearchRequest(query, domain="docs", tenant="acme", top_k=20, mode="bm25")
    )
    return [(h.source, round(h.score, 5)) for h in response.hits]


def test_deleting_long_documents_scores_the_rest_as_a_store_without_them(
    make_retrieval: MakeRetrieval,
) -> None:
    short = [_doc(f"short-{i}.txt", 6 + i, seed=i) for i in range(4)]
    long = [_doc(f"long-{i}.txt", 400, seed=i) for i in range(4)]
    both, never = make_retrieval(), make_retrieval()
    both.indexer.index("docs", short + long)
    never.indexer.index("docs", short)
    for doc in long:
        both.indexer.delete("docs", "acme", {"source": doc.source})
    for query in ("harbour crane", "ledger", "meadow lantern orchard"):
        assert _bm25(both, query) == _bm25(never, query)


ops = st.lists(
    st.tuples(
        st.sampled_from(["ingest", "delete"]), st.integers(0, 4), st.sampled_from([2, 12, 300])
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=ops)
def test_the_encoding_average_follows_ingests_and_deletes(
    make_retrieval: MakeRetrieval, ops: list[tuple[str, int, int]]
) -> None:
    retrieval = make_retrieval()
    collection = retrieval.settings.domains["docs"].collection
    for kind, source, words in ops:
        name = f"doc-{source}.txt"
        if kind == "ingest":
            retrieval.indexer.index("docs", [_doc(name, words, seed=source)])
        else:
            retrieval.indexer.delete("docs", "acme", {"source": name})
        stats = tenant_lengths(retrieval.store.read_meta(collection), "acme")
        if stats.points:
            drift = abs(stats.avg_len - stats.encoded_avg_len) / stats.encoded_avg_len
            assert drift <= AVG_LEN_DRIFT + 1e-9, (kind, stats)


@pytest.mark.parametrize("keep", [1, 3])
def test_a_delete_that_moves_the_average_little_re_encodes_nothing(
    make_retrieval: MakeRetrieval, keep: int
) -> None:
    """Below the drift threshold a delete writes no vectors (a re-encode reads every point)."""
    retrieval = make_retrieval()
    retrieval.indexer.index("docs", [_doc(f"d{i}.txt", 50 + i) for i in range(4)])
    collection = retrieval.settings.domains["docs"].collection
    encoded = tenant_lengths(retrieval.store.read_meta(collection), "acme").encoded_avg_len
    for i in range(4 - keep):
        retrieval.indexer.delete("docs", "acme", {"source": f"d{i}.txt"})
    after = tenant_lengths(retrieval.store.read_meta(collection), "acme")
    assert after.encoded_avg_len == encoded and after.points == keep
