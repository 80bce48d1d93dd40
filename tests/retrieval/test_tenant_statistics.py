"""Property: nothing tenant B indexes or deletes changes a score or an order tenant A sees.

Every statistic that shapes A's scores is A's own: BM25 IDF (Qdrant, over the tenant's points),
BM25 average document length (length_stats.py), DBSF's normalisation (over A's candidate
lists). Checked through the real pipeline (bundled MiniLM, Qdrant's BM25) on every store variant
(conftest.STORE_VARIANTS, the forwarded shared store included), with B's documents far longer
than A's so that a shared average would re-weight A's vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.length_stats import tenant_lengths
from server.retrieval.store import VectorStore
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Settings

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` skips it

WORDS = [
    "vault",
    "key",
    "rotation",
    "audit",
    "backup",
    "cipher",
    "token",
    "ledger",
    "tide",
    "moon",
    "harbour",
    "crane",
    "river",
    "glacier",
    "orchard",
    "pepper",
    "lantern",
    "copper",
    "violin",
    "meadow",
]
MODES = ("bm25", "dense", "hybrid")

a_docs = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), min_size=2, max_size=8)
b_docs = st.lists(
    st.lists(st.sampled_from(WORDS), min_size=20, max_size=120), min_size=1, max_size=6
)
queries = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), min_size=1, max_size=3)


def _chunks(tenant: str, docs: list[list[str]], prefix: str) -> list[Chunk]:
    return [
        Chunk(tenant=tenant, doc_id=f"{prefix}{i}", source=f"/{prefix}/{i}.txt", text=" ".join(d))
        for i, d in enumerate(docs)
    ]


Seen = list[tuple[str, str, list[tuple[str, float | None, float | None, float | None]]]]


def _seen_by_a(retrieval: Retrieval, qs: list[list[str]]) -> Seen:
    seen: Seen = []
    for words in qs:
        for mode in MODES:
            result = retrieval.searcher.search(
                SearchRequest(
                    " ".join(words),
                    domain="docs",
                    tenant="a",
                    top_k=20,
                    mode=mode,  # type: ignore[arg-type]
                )
            )
            seen.append(
                (
                    " ".join(words),
                    mode,
                    [
                        (h.id, _r(h.score), _r(h.stages.dense), _r(h.stages.sparse))
                        for h in result.hits
                    ],
                )
            )
    return seen


def _r(score: float | None) -> float | None:
    """Scores to 5 decimals: qdrant-client's local mode (the server test double) computes
    float32 dot products over the whole point matrix, whose last bits move with its shape; the
    embedded store and Qdrant server score each point on its own."""
    return None if score is None else round(score, 5)


def _check(store: VectorStore, embedder: DenseEmbedder, a, b, qs) -> None:  # type: ignore[no-untyped-def]
    retrieval = assemble(Settings(reranker_model="none"), store, embedder, None)
    retrieval.indexer.index("docs", _chunks("a", a, "a"))
    before = _seen_by_a(retrieval, qs)
    retrieval.indexer.index("docs", _chunks("b", b, "b"))
    assert _seen_by_a(retrieval, qs) == before, "tenant b's ingest changed what tenant a sees"
    # b's average moves past the re-encode threshold: only b's vectors are re-encoded
    report = retrieval.indexer.index("docs", _chunks("b", [b[0] * 4], "b-long"))
    assert report.reencoded in (0, len(b))
    assert _seen_by_a(retrieval, qs) == before, "tenant b's re-encode changed tenant a's scores"
    retrieval.indexer.delete("docs", "b", {"source": "/b/0.txt"})
    assert _seen_by_a(retrieval, qs) == before, "tenant b's delete changed what tenant a sees"
    retrieval.indexer.delete("docs", "b")
    assert _seen_by_a(retrieval, qs) == before
    stats = tenant_lengths(store.read_meta("docs"), "b")
    assert (stats.points, stats.total_len) == (0, 0.0)


@settings(
    max_examples=6,
    deadline=None,
    # each example indexes through MiniLM: shrinking a failure costs minutes, the report is enough
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(a=a_docs, b=b_docs, qs=queries)
def test_other_tenants_never_move_a_tenants_scores(  # type: ignore[no-untyped-def]
    fresh_store: Callable[[], AbstractContextManager[VectorStore]], embedder, a, b, qs
) -> None:
    with fresh_store() as store:
        _check(store, embedder, a, b, qs)
