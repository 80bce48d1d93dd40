"""The product as evaluation and benchmarks see it: the one module of ``retrieval_eval`` that
imports ``server.retrieval`` (beyond its result types) and ``server.ingest``.

Every place that builds a pipeline, indexes, ranks or writes a store directly goes through
the names below, so when the product's read and write sides change shape, this module alone
follows them. Only public names of the product are used (a test checks that no module of
``retrieval_eval`` imports an underscored name from ``server``).

The groups, in the order the rest of ``retrieval_eval`` depends on them:

- pipeline: build or assemble one, index chunks, rank a query, search as a user;
- models: the configured bi-encoder, the cross-encoder class (the bench loads its own);
- text: passage packing, the part texts and the keyword text the pipeline indexes;
- store layer: what the bench needs to write a store in the product's layout without
  embedding 100k passages (points, payload, payload indexes, BM25 statistics);
- ingest: the walk, the chunkers and the ingest job, as ``retrieval-mcp ingest`` runs them,
  and the bundled sample corpora;
- serving: the token file the HTTP transport reads (the server bench adds a tenant's token).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from server.auth import TokenFile
from server.demo import sample_folder
from server.ingest.chunking import chunk_file
from server.ingest.runner import make_budget, run_ingest
from server.ingest.walker import discover
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder, resolve_model_location
from server.retrieval.factory import build_pipeline, load_embedder, open_store
from server.retrieval.filter_fields import derived_filter_fields
from server.retrieval.length_stats import TENANTS_KEY
from server.retrieval.passages import pack_passages, split_sentences
from server.retrieval.pipeline import (
    DEFAULT_PART_SENTENCES,
    DOMAIN_PAYLOAD_INDEXES,
    RetrievalPipeline,
    part_texts,
)
from server.retrieval.query_routing import QueryFeatures, query_features
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.sparse import SparseEncoder
from server.retrieval.store import BASE_PAYLOAD_INDEXES, HybridQuery, StoredPoint, point_id
from server.retrieval.types import Chunk, IndexReport, SearchMode, SearchResult
from server.settings import Domain, Settings

__all__ = [
    "BASE_PAYLOAD_INDEXES",
    "DEFAULT_PART_SENTENCES",
    "DOMAIN_PAYLOAD_INDEXES",
    "TENANTS_KEY",
    "CrossEncoderReranker",
    "DenseEmbedder",
    "EdgeStore",
    "HybridQuery",
    "Pipeline",
    "QueryFeatures",
    "SparseEncoder",
    "StoredPoint",
    "TokenFile",
    "assemble_pipeline",
    "build_pipeline",
    "chunk_file",
    "discover",
    "index_chunks",
    "keyword_text",
    "load_embedder",
    "make_budget",
    "open_store",
    "pack_passages",
    "part_texts",
    "point_id",
    "point_payload",
    "query_features",
    "rank",
    "resolve_model_location",
    "run_ingest",
    "sample_folder",
    "search",
    "split_sentences",
]

Pipeline = RetrievalPipeline
"""The object that indexes and ranks (read and write side together, for now)."""


def assemble_pipeline(
    settings: Settings,
    store: Any,
    embedder: DenseEmbedder,
    reranker: CrossEncoderReranker | None = None,
) -> Pipeline:
    """A pipeline over an open store and an already loaded embedder (sweeps and benches load
    the model once and reuse it); no reranker unless one is given. The caller closes
    ``store``."""
    return RetrievalPipeline(settings, store, embedder, reranker)


def index_chunks(
    pipeline: Pipeline,
    domain: str | Domain,
    chunks: Sequence[Chunk],
    progress: Callable[[int], None] | None = None,
) -> IndexReport:
    """Embed, BM25-encode and upsert ``chunks`` (all of one tenant or several) into ``domain``;
    ``progress`` is called with the number of chunks written per batch."""
    return pipeline.index(domain, chunks, progress=progress)


def rank(
    pipeline: Pipeline, query: str, *, domain: str | Domain, tenant: str, limit: int, mode: str
) -> SearchResult:
    """The ranked hits of one query, ``limit`` of them (may exceed a user's top_k: the eval
    collapses passages to documents), in ``mode`` (bm25, dense, hybrid, hybrid+rerank)."""
    search_mode: SearchMode = mode  # type: ignore[assignment]
    return pipeline.rank(query, domain=domain, tenant=tenant, limit=limit, mode=search_mode)


def search(pipeline: Pipeline, query: str, *, domain: str, tenant: str, top_k: int) -> SearchResult:
    """One search exactly as a user's ``retrieval-mcp search`` runs it (default mode)."""
    return pipeline.search(query, domain=domain, tenant=tenant, top_k=top_k)


def keyword_text(title: str, text: str) -> str:
    """What BM25 reads of a chunk: the title, a newline, the text (the text alone untitled).

    Mirrors the pipeline's indexing, which has no public name for it yet.
    """
    return f"{title}\n{text}" if title else text


def point_payload(chunk: Chunk, bm25_len: int) -> dict[str, Any]:
    """The payload the pipeline stores with a chunk (metadata, derived filter fields, the chunk
    fields and its BM25 length), for the bench's directly written stores.

    Mirrors the pipeline's indexing, which has no public name for it yet.
    """
    payload: dict[str, Any] = dict(chunk.metadata)
    payload.update(derived_filter_fields(chunk.source, chunk.metadata))
    payload.update(
        tenant=chunk.tenant,
        doc_id=chunk.doc_id,
        source=chunk.source,
        chunk_index=chunk.chunk_index,
        title=chunk.title,
        text=chunk.text,
        bm25_len=bm25_len,
    )
    return payload
