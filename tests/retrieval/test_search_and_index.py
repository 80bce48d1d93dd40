"""Search and index end to end (Searcher, Indexer), bundled MiniLM, real Qdrant stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.cli import build_parser
from server.errors import InvalidRequestError
from server.retrieval.analysis import MAX_PARTS, part_texts
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.indexer import AVG_LEN_DRIFT
from server.retrieval.length_stats import tenant_lengths
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.searcher import (
    NO_KEYWORD_MATCH,
    NO_KEYWORD_MATCH_BM25,
    NO_QUERY_TERMS,
    NO_QUERY_TERMS_BM25,
    NOTHING_INDEXED,
)
from server.retrieval.store import VectorStore
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Domain, FusionSettings, Settings

DOCS = {
    "tea": "Green tea contains catechins, antioxidants studied for heart health.",
    "rust": "The borrow checker in Rust enforces ownership rules at compile time.",
    "bees": "Honey bees communicate the location of flowers with a waggle dance.",
    "tides": "Ocean tides are caused by the gravitational pull of the moon and sun.",
    "vaccine": "Vaccines train the immune system to recognise a pathogen's antigens.",
}


def _chunks(tenant: str, docs: dict[str, str] = DOCS) -> list[Chunk]:
    return [
        Chunk(tenant=tenant, doc_id=k, source=f"{k}.txt", text=v, metadata={"doc_type": "note"})
        for k, v in docs.items()
    ]


@pytest.fixture
def retrieval(store: VectorStore, embedder: DenseEmbedder) -> Retrieval:
    p = assemble(Settings(reranker_model="none"), store, embedder, None)
    p.indexer.index("docs", _chunks("acme"))
    p.indexer.index(
        "docs", _chunks("globex", {"moon": "The moon has no atmosphere and many craters."})
    )
    return p


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_finds_the_right_passage(retrieval: Retrieval, mode: str) -> None:
    result = retrieval.searcher.search(
        SearchRequest(
            "how do bees tell others where flowers are", domain="docs", tenant="acme", mode=mode
        )
    )
    assert result.hits[0].doc_id == "bees"
    assert result.hits[0].metadata == {"doc_type": "note"}
    assert all(h.source.endswith(".txt") for h in result.hits)


def test_hybrid_reports_every_stage(retrieval: Retrieval) -> None:
    result = retrieval.searcher.search(
        SearchRequest("moon gravity tides", domain="docs", tenant="acme", mode="hybrid")
    )
    top = result.hits[0]
    assert top.doc_id == "tides"
    assert top.stages.dense_rank == 1 and top.stages.sparse_rank == 1
    assert top.stages.fused_rank == 1 and top.stages.fused == top.score
    assert top.stages.dense is not None and top.stages.sparse is not None
    assert result.fusion == "dbsf_zero_fill"
    assert result.timings.total_ms >= result.timings.search_ms > 0


def test_tenants_never_see_each_other(retrieval: Retrieval) -> None:
    as_acme = retrieval.searcher.search(
        SearchRequest("moon craters atmosphere", domain="docs", tenant="acme")
    )
    assert "moon" not in {h.doc_id for h in as_acme.hits}
    as_globex = retrieval.searcher.search(
        SearchRequest("bees flowers", domain="docs", tenant="globex")
    )
    assert {h.doc_id for h in as_globex.hits} == {"moon"}
    nobody = retrieval.searcher.search(SearchRequest("bees", domain="docs", tenant="nobody"))
    assert nobody.hits == [] and nobody.notes == [NOTHING_INDEXED.format(domain="docs")]
    # a domain whose collection does not exist yet says the same
    empty = retrieval.searcher.search(SearchRequest("bees", domain="legal", tenant="acme"))
    assert empty.hits == [] and empty.notes == [NOTHING_INDEXED.format(domain="legal")]


def test_rerank_unavailable_is_reported_not_fatal(
    store: VectorStore, embedder: DenseEmbedder
) -> None:
    reranker = CrossEncoderReranker("/nonexistent/cross-encoder-model")
    p = assemble(Settings(), store, embedder, reranker)
    p.indexer.index("docs", _chunks("acme"))
    result = p.searcher.search(
        SearchRequest("immune system antigens", domain="docs", tenant="acme")
    )
    assert result.hits[0].doc_id == "vaccine"
    assert result.rerank_applied is False
    assert result.rerank_note and "could not be loaded" in result.rerank_note
    assert all(h.stages.rerank is None for h in result.hits)
    assert result.mode == "hybrid"  # the stages that ranked, not the mode asked for


@pytest.mark.parametrize("value", ["none", "", " ", " off "])
@pytest.mark.parametrize("source", ["--reranker", "RETRIEVAL_RERANKER_MODEL"])
def test_reranking_off_says_where_and_what_the_user_set(
    edge_store: EdgeStore,
    embedder: DenseEmbedder,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    value: str,
) -> None:
    """The note names the flag or the variable the value came from, and the value as given
    (quoted: whitespace shows)."""
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", value if source != "--reranker" else "x/y")
    flag = ["--reranker", value] if source == "--reranker" else []
    settings = Settings.from_cli(build_parser().parse_args(["search", "q", "--tenant", "t", *flag]))
    p = assemble(settings, edge_store, embedder, None)
    p.indexer.index("docs", _chunks("acme"))
    result = p.searcher.search(SearchRequest("bees", domain="docs", tenant="acme"))
    assert result.rerank_applied is False
    separator = " " if source == "--reranker" else "="
    assert result.rerank_note == f"reranking is off ({source}{separator}{value!r})"


def test_rerank_with_a_real_cross_encoder(
    edge_store: EdgeStore, embedder: DenseEmbedder, tiny_cross_encoder: Path
) -> None:
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))
    p = assemble(Settings(), edge_store, embedder, reranker)
    p.indexer.index("docs", _chunks("acme"))
    result = p.searcher.search(
        SearchRequest("rust ownership", domain="docs", tenant="acme", top_k=5)
    )
    assert result.rerank_applied and result.rerank_note is None
    assert result.mode == "hybrid+rerank"
    scores = [h.stages.rerank for h in result.hits]
    assert None not in scores and scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert [h.stages.rerank_rank for h in result.hits] == [1, 2, 3, 4, 5]
    assert all(h.score == h.stages.rerank for h in result.hits)
    # the cross-encoder only reorders the fused candidates
    assert {h.doc_id for h in result.hits} == set(DOCS)


class _DepthRecordingStore(EdgeStore):
    """An embedded store that records how deep each hybrid query asks for the fused list."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.limits: list[int] = []

    def query(self, collection, request):  # type: ignore[no-untyped-def]
        self.limits.append(request.limit)
        return super().query(collection, request)


@pytest.mark.parametrize("reranker", ["off", "unavailable", "tiny"])
def test_the_head_is_fetched_rerank_depth_deep_only_for_a_cross_encoder_that_scores_it(
    tmp_path: Path, embedder: DenseEmbedder, tiny_cross_encoder: Path, reranker: str
) -> None:
    """Invariant: a search fetches and decodes the fused list ``rerank_depth`` deep only when a
    cross-encoder will score that head; with reranking off or its model unavailable it costs
    what a ``top_k`` search costs (it used to fetch and decode the whole head, then drop it),
    and its hits are those of the plain hybrid search."""
    store = _DepthRecordingStore(tmp_path / "store")
    model = {"off": None, "unavailable": "/nonexistent/cross-encoder-model"}.get(
        reranker, str(tiny_cross_encoder)
    )
    p = assemble(
        Settings(reranker_model="none"),
        store,
        embedder,
        CrossEncoderReranker(model) if model else None,
    )
    docs = {f"{k}{i}": f"{v} Note {i}." for i in range(6) for k, v in DOCS.items()}
    p.indexer.index("docs", _chunks("acme", docs))
    try:
        depth = p.searcher.settings.domains[Domain.DOCS].rerank_depth
        store.limits.clear()
        asked = p.searcher.search(SearchRequest("bees and flowers", "docs", "acme", top_k=2))
        deepest = max(store.limits)
        plain = p.searcher.search(
            SearchRequest("bees and flowers", "docs", "acme", top_k=2, mode="hybrid")
        )
    finally:
        store.close()
    if reranker == "tiny":
        assert asked.rerank_applied and deepest >= depth
        return
    assert not asked.rerank_applied and deepest < depth
    assert [(h.id, h.score, h.also_in) for h in asked.hits] == [
        (h.id, h.score, h.also_in) for h in plain.hits
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "empty"),
        ({"query": "x" * 2001}, "limit"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 51}, "top_k"),
        ({"domain": "finance"}, "unknown domain"),
        ({"tenant": ""}, "tenant"),
        ({"mode": "magic"}, "unknown mode"),
    ],
)
def test_bad_input_is_a_typed_error(
    retrieval: Retrieval, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"query": "tea", "domain": "docs", "tenant": "acme", "top_k": 5}
    args.update(kwargs)
    query = args.pop("query")
    with pytest.raises(InvalidRequestError, match=message):
        retrieval.searcher.search(SearchRequest(query, **args))  # type: ignore[arg-type]


def test_reindex_is_idempotent_and_delete_scoped(retrieval: Retrieval) -> None:
    collection = retrieval.settings.domains["docs"].collection
    retrieval.indexer.index("docs", _chunks("acme"))
    assert retrieval.store.count(collection, "acme") == len(DOCS)

    def recorded(tenant: str) -> int:
        return tenant_lengths(retrieval.store.read_meta(collection), tenant).points

    assert (recorded("acme"), recorded("globex")) == (len(DOCS), 1)
    assert retrieval.indexer.delete("docs", "acme", {"source": "tea.txt"}) == 1
    assert retrieval.store.count(collection, "acme") == len(DOCS) - 1
    assert retrieval.store.count(collection, "globex") == 1
    assert (recorded("acme"), recorded("globex")) == (len(DOCS) - 1, 1)


def test_bm25_average_length_tracks_the_tenant(retrieval: Retrieval) -> None:
    collection = retrieval.settings.domains["docs"].collection

    def encoded(tenant: str) -> float:
        return tenant_lengths(retrieval.store.read_meta(collection), tenant).encoded_avg_len

    before, other = encoded("acme"), encoded("globex")
    long_text = " ".join(f"word{i} topic{i % 7}" for i in range(400))
    report = retrieval.indexer.index(
        "docs", [Chunk(tenant="acme", doc_id="long", source="long.txt", text=long_text)]
    )
    after = encoded("acme")
    assert abs(after - before) / before > AVG_LEN_DRIFT
    assert report.reencoded == len(DOCS)  # acme's earlier vectors re-encoded, globex's not
    assert encoded("globex") == other
    assert report.avg_len == pytest.approx(after, rel=1e-3)
    result = retrieval.searcher.search(
        SearchRequest("waggle dance", domain="docs", tenant="acme", mode="bm25")
    )
    assert result.hits[0].doc_id == "bees"


def test_embedder_query_cache(embedder: DenseEmbedder) -> None:
    embedder.cache.clear()
    first = embedder.embed_query("cache me")
    hits = embedder.cache.hits
    assert embedder.embed_query("cache me") == first
    assert embedder.cache.hits == hits + 1
    assert len(first) == embedder.dimension == 384
    assert sum(x * x for x in first) == pytest.approx(1.0, rel=1e-4)


def test_rrf_weights_steer_the_fused_order(store: VectorStore, embedder: DenseEmbedder) -> None:
    """Qdrant's weighted RRF (k=1): the heavier stage decides the top hit."""
    docs = {
        **DOCS,
        "routine": "Rise at dawn, fall asleep by ten: twice a day, every day, a routine.",
    }
    p = assemble(Settings(reranker_model="none"), store, embedder, None)
    p.indexer.index("legal", _chunks("acme", docs))
    query = "why does the ocean rise and fall twice a day"
    dense_top = (
        p.searcher.search(SearchRequest(query, domain="legal", tenant="acme", mode="dense"))
        .hits[0]
        .doc_id
    )
    sparse_top = (
        p.searcher.search(SearchRequest(query, domain="legal", tenant="acme", mode="bm25"))
        .hits[0]
        .doc_id
    )
    assert dense_top != sparse_top  # the stages disagree, so the weights must decide
    for dense_weight, sparse_weight, expected in ((1.0, 10.0, sparse_top), (10.0, 1.0, dense_top)):
        p.settings.domains[Domain.LEGAL].fusion = FusionSettings(
            method="rrf", rrf_k=1, dense_weight=dense_weight, sparse_weight=sparse_weight
        )
        result = p.searcher.search(
            SearchRequest(query, domain="legal", tenant="acme", mode="hybrid")
        )
        assert result.hits[0].doc_id == expected
        assert result.fusion == f"rrf(k=1, weights=[{dense_weight}, {sparse_weight}])"


def test_part_texts_groups_sentences() -> None:
    text = "One. Two. Three. Four. Five."
    assert part_texts(text, 2) == ["One. Two.", "Three. Four.", "Five."]
    assert part_texts("Only one sentence here.", 2) == []
    assert part_texts("One. Two.", 2) == []  # a single group: the chunk is its own part
    many = " ".join(f"Sentence {i}." for i in range(100))
    groups = part_texts(many, 1)
    assert len(groups) <= MAX_PARTS and " ".join(groups) == many


def _cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


ABSTRACT = (
    "We surveyed coastal wetlands across three continents over a decade. "
    "Sampling followed a fixed protocol at every site. "
    "Salt marsh grasses stored more carbon per hectare than tropical forests. "
    "Funding came from several national science agencies."
)


def test_docs_dense_stage_blends_chunk_and_part_vectors(
    store: VectorStore, embedder: DenseEmbedder
) -> None:
    settings = Settings(reranker_model="none")
    docs = settings.domains[Domain.DOCS]
    assert docs.part_sentences == 2
    p = assemble(settings, store, embedder, None)
    p.indexer.index(
        "docs", [Chunk(tenant="t", doc_id="w", source="w.txt", text=ABSTRACT, title="Wetlands")]
    )
    query = "salt marsh carbon storage compared with forests"
    [hit] = p.searcher.search(SearchRequest(query, domain="docs", tenant="t", mode="dense")).hits
    q = embedder.embed_documents([query])[0].tolist()
    chunk = embedder.embed_documents([f"Wetlands\n{ABSTRACT}"])[0].tolist()
    parts = embedder.embed_documents(part_texts(ABSTRACT, 2))
    expected = (1 - docs.part_weight) * _cosine(q, chunk) + docs.part_weight * max(
        _cosine(q, v.tolist()) for v in parts
    )
    assert hit.score == pytest.approx(expected, abs=2e-3)  # parts are stored as float16
    assert hit.score > _cosine(q, chunk) + 0.02  # the matching sentence pair lifts the chunk


def test_collection_without_parts_is_searched_with_chunk_vectors(
    edge_store: EdgeStore, embedder: DenseEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    old = Settings(reranker_model="none")
    old.domains[Domain.DOCS].part_sentences = 0
    assemble(old, edge_store, embedder, None).indexer.index("docs", _chunks("acme"))
    assert not edge_store.has_part_vectors("docs")
    current = assemble(Settings(reranker_model="none"), edge_store, embedder, None)
    current.indexer.index("docs", _chunks("acme", {"wetlands": ABSTRACT}))  # still no part vectors
    with caplog.at_level("WARNING"):
        result = current.searcher.search(
            SearchRequest("bee waggle dance", domain="docs", tenant="acme", mode="hybrid")
        )
        current.searcher.search(
            SearchRequest("bee waggle dance", domain="docs", tenant="acme", mode="hybrid")
        )
    assert result.hits[0].doc_id == "bees"
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "without part vectors" in caplog.records[0].message


def test_keyword_stage_says_when_it_matched_nothing(retrieval: Retrieval) -> None:
    miss = retrieval.searcher.search(
        SearchRequest("xylophone zeppelin", domain="docs", tenant="acme", mode="hybrid")
    )
    assert miss.hits and NO_KEYWORD_MATCH in miss.notes  # ranked by meaning alone
    assert all(h.stages.sparse is None for h in miss.hits)
    bm25 = retrieval.searcher.search(
        SearchRequest("xylophone zeppelin", domain="docs", tenant="acme", mode="bm25")
    )
    assert bm25.hits == [] and NO_KEYWORD_MATCH_BM25 in bm25.notes
    stopwords = retrieval.searcher.search(
        SearchRequest("the of and", domain="docs", tenant="acme", mode="hybrid")
    )
    assert stopwords.hits and stopwords.notes == [NO_QUERY_TERMS]
    only_bm25 = retrieval.searcher.search(
        SearchRequest("the of and", domain="docs", tenant="acme", mode="bm25")
    )
    assert only_bm25.hits == [] and only_bm25.notes == [NO_QUERY_TERMS_BM25]
    hit = retrieval.searcher.search(
        SearchRequest("waggle dance", domain="docs", tenant="acme", mode="hybrid")
    )
    assert hit.notes == []


def test_identical_passages_collapse_into_one_hit(
    store: VectorStore, embedder: DenseEmbedder
) -> None:
    policy = "Rotate credentials every 90 days and never share security keys."
    copies = {
        name: policy
        for name in ("archive/2025/security", "team1/security", "team0/security", "old/a/security")
    }
    docs = {**copies, **DOCS}
    chunks = _chunks("acme", docs)
    retrieval = assemble(Settings(reranker_model="none"), store, embedder, None)
    retrieval.indexer.index("docs", chunks)
    result = retrieval.searcher.search(
        SearchRequest("how often to rotate credentials", domain="docs", tenant="acme", top_k=3)
    )
    top = result.hits[0]
    assert top.text == policy
    assert sorted([top.source] + [c.source for c in top.also_in]) == sorted(
        f"{k}.txt" for k in copies
    )
    assert len(result.hits) == 3 and len({h.text for h in result.hits}) == 3
    # the copy shown does not depend on store order: nearest the root, then by name
    assert top.source == "team0/security.txt"
    # its stage ranks follow the same order: the copy shown is first in each stage too
    assert top.stages.dense_rank == 1 and top.stages.sparse_rank == 1
    off = assemble(
        Settings(reranker_model="none", collapse_duplicates=False), store, embedder, None
    )
    plain = off.searcher.search(
        SearchRequest("how often to rotate credentials", domain="docs", tenant="acme", top_k=3)
    )
    assert [h.text for h in plain.hits] == [policy] * 3 and not plain.hits[0].also_in
