"""Builds the store and pipeline that settings describe (embedded by default, server by URL)."""

from __future__ import annotations

import logging

from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder, set_torch_threads
from server.retrieval.pipeline import RetrievalPipeline
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.store import VectorStore
from server.settings import Settings

logger = logging.getLogger(__name__)


def open_store(settings: Settings) -> VectorStore:
    """A Qdrant server store when qdrant_url is set, else the embedded Qdrant Edge store."""
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantStore.connect(settings.qdrant_url, api_key)
    return EdgeStore(settings.store_path)


def load_embedder(settings: Settings) -> DenseEmbedder:
    """The configured bi-encoder (bundled MiniLM by default)."""
    set_torch_threads(settings.torch_threads)
    return DenseEmbedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        cache_size=settings.query_cache_size,
        device=settings.device,
    )


def load_reranker(settings: Settings) -> CrossEncoderReranker | None:
    """The configured cross-encoder, or None when reranking is switched off."""
    if not settings.reranker_enabled:
        return None
    return CrossEncoderReranker(
        settings.reranker_model, batch_size=settings.rerank_batch_size, device=settings.device
    )


def build_pipeline(settings: Settings, store: VectorStore | None = None) -> RetrievalPipeline:
    """Store + models wired into a pipeline; the reranker is loaded (or found missing) now."""
    store = store if store is not None else open_store(settings)
    try:
        embedder = load_embedder(settings)
    except Exception:
        store.close()
        raise
    reranker = load_reranker(settings)
    if reranker is not None and not reranker.load():
        logger.warning("reranking is off: %s", reranker.unavailable_reason)
    return RetrievalPipeline(settings, store, embedder, reranker)
