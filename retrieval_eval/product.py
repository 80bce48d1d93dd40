"""The product as evaluation and benchmarks see it: the one module of ``retrieval_eval`` that
imports ``server.retrieval`` (beyond its result types) and ``server.ingest``.

Every place that builds a pipeline, indexes, ranks or writes a store directly goes through
the names below, so when the product's read and write sides change shape, this module alone
follows them. Only public names of the product are used (a test checks that no module of
``retrieval_eval`` imports an underscored name from ``server``).

The groups, in the order the rest of ``retrieval_eval`` depends on them:

- pipeline: build or assemble one, index chunks, rank a query, search as a user, place the
  definitions of a name first;
- models: the configured bi-encoder, the cross-encoder class (the bench loads its own);
- text: passage packing, the part texts and the keyword text the pipeline indexes;
- store layer: what the bench needs to write a store in the product's layout without
  embedding 100k passages (points, payload, payload indexes, BM25 statistics);
- ingest: the walk, the chunkers and the ingest job, as ``retrieval-mcp ingest`` runs them,
  and the bundled sample corpora;
- serving: the token file the HTTP transport reads (the server bench adds a tenant's token)
  and the allocator an HTTP server runs on (the concurrency bench names it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from server.allocator import chosen_library
from server.auth import TokenFile
from server.demo import sample_folder
from server.ingest.budget import TokenBudget
from server.ingest.chunking import chunk_file
from server.ingest.runner import make_budget, run_ingest
from server.ingest.walker import discover
from server.retrieval.analysis import (
    DEFAULT_PART_SENTENCES,
    chunk_keyword_text,
    keyword_text,
    part_texts,
    resolve_domain,
)
from server.retrieval.boundaries import split_sentences
from server.retrieval.chunk_record import payload_indexes
from server.retrieval.chunk_record import to_payload as point_payload
from server.retrieval.definitions import asked_name, definitions_first
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder, resolve_model_location
from server.retrieval.factory import (
    Retrieval,
    assemble,
    build_retrieval,
    load_embedder,
    load_reranker,
    open_store,
)
from server.retrieval.inference import InferenceBackend
from server.retrieval.length_stats import TENANTS_KEY
from server.retrieval.query_routing import QueryFeatures, query_features
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.results import SearchHit, SearchResponse
from server.retrieval.sparse import SparseEncoder, SparseVector, normalize_text
from server.retrieval.store import HybridQuery, ScoredPoint, StoredPoint, point_id
from server.retrieval.types import Chunk, IndexReport, SearchMode, SearchRequest
from server.settings import Domain, DomainSettings, Settings

__all__ = [
    "DEFAULT_PART_SENTENCES",
    "TENANTS_KEY",
    "CrossEncoderReranker",
    "DenseEmbedder",
    "EdgeStore",
    "HybridQuery",
    "InferenceBackend",
    "Pipeline",
    "QueryFeatures",
    "ScoredPoint",
    "SearchHit",
    "SparseEncoder",
    "SparseVector",
    "StoredPoint",
    "TokenFile",
    "asked_name",
    "assemble_pipeline",
    "build_pipeline",
    "chosen_library",
    "chunk_file",
    "chunk_keyword_text",
    "definitions_first",
    "delete",
    "discover",
    "domain_settings",
    "index_chunks",
    "keyword_text",
    "load_embedder",
    "load_reranker",
    "make_budget",
    "normalize_text",
    "open_store",
    "pack_passages",
    "part_texts",
    "payload_indexes",
    "point_id",
    "point_payload",
    "query_features",
    "rank",
    "resolve_model_location",
    "run_ingest",
    "sample_folder",
    "search",
    "sparse_encoder",
    "split_sentences",
    "texts_to_embed",
]

Pipeline = Retrieval
"""The product's read side (``searcher``) and write side (``indexer``) over one store."""


def build_pipeline(settings: Settings) -> Pipeline:
    """Store and models from settings, as every ``retrieval-mcp`` command builds them."""
    return build_retrieval(settings)


def assemble_pipeline(
    settings: Settings,
    store: Any,
    embedder: DenseEmbedder,
    reranker: CrossEncoderReranker | None = None,
) -> Pipeline:
    """Searcher and indexer over an open store and an already loaded embedder (sweeps and
    benches load the model once and reuse it); no reranker unless one is given. The caller
    closes ``store``."""
    return assemble(settings, store, embedder, reranker)


def domain_settings(pipeline: Pipeline, domain: str | Domain) -> tuple[Domain, DomainSettings]:
    """The validated domain and its settings."""
    return resolve_domain(pipeline.settings, domain)


def sparse_encoder(pipeline: Pipeline, domain: Domain) -> SparseEncoder:
    """The domain's BM25 analyzer, as indexing and search use it."""
    return pipeline.searcher.analysis.sparse_encoder(domain)


def index_chunks(
    pipeline: Pipeline,
    domain: str | Domain,
    chunks: Sequence[Chunk],
    progress: Callable[[int], None] | None = None,
) -> IndexReport:
    """Embed, BM25-encode and upsert ``chunks`` (all of one tenant or several) into ``domain``;
    ``progress`` is called with the number of chunks written per batch."""
    return pipeline.indexer.index(domain, chunks, progress=progress)


def texts_to_embed(
    pipeline: Pipeline, domain: str | Domain, chunks: Sequence[Chunk]
) -> tuple[list[str], list[list[str]]]:
    """The chunk texts and part texts indexing embeds for ``chunks``."""
    return pipeline.indexer.texts_to_embed(domain, chunks)


def delete(pipeline: Pipeline, domain: str | Domain, tenant: str) -> int:
    """Delete every point of ``tenant`` in ``domain``; returns how many."""
    return pipeline.indexer.delete(domain, tenant)


def rank(
    pipeline: Pipeline, query: str, *, domain: str | Domain, tenant: str, limit: int, mode: str
) -> SearchResponse:
    """The ranked hits of one query, ``limit`` of them (may exceed a user's top_k: the eval
    collapses passages to documents), in ``mode`` (bm25, dense, hybrid, hybrid+rerank)."""
    search_mode: SearchMode = mode  # type: ignore[assignment]
    request = SearchRequest(query, domain, tenant, top_k=limit, mode=search_mode)
    return pipeline.searcher.rank(request)


def search(
    pipeline: Pipeline, query: str, *, domain: str, tenant: str, top_k: int
) -> SearchResponse:
    """One search exactly as a user's ``retrieval-mcp search`` runs it (default mode)."""
    return pipeline.searcher.search(SearchRequest(query, domain, tenant, top_k=top_k))


def pack_passages(
    text: str, budget: int, count: Callable[[str], int], title: str = ""
) -> list[str]:
    """``text`` in passages of at most ``budget`` tokens together with ``title``: the ingest
    packer (whole sentences, an over-long one cut into windows, no text lost) over the one
    sentence splitter, without overlap, as a plain-text record is chunked."""
    return TokenBudget(count, budget).pack(split_sentences(text), title=title, sep=" ")
