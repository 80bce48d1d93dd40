"""The one place the runtime is built: store, models, and the read and write side over them.

The CLI, the MCP server (server/runtime.py), the evaluation and the tests all build through
:func:`assemble` (given parts) or :func:`build_retrieval` (from settings): embedded store by
default, a Qdrant server or cluster by URL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from server.retrieval.analysis import DomainAnalysis
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.indexer import Indexer
from server.retrieval.lazy_embedder import LazyEmbedder
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.searcher import Searcher
from server.retrieval.shared_store import SharedStore
from server.retrieval.store import VectorStore
from server.settings import Settings

logger = logging.getLogger(__name__)


def open_store(settings: Settings) -> VectorStore:
    """A Qdrant server store when qdrant_url is set, else the embedded Qdrant Edge store.

    The embedded store is shared: the first process to open it owns it and serves it to the
    others on a local socket; later processes forward to it (see shared_store.py).
    """
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantStore.connect(
            settings.qdrant_url,
            api_key,
            cluster=settings.qdrant_cluster,
            tuning=settings.store_tuning,
        )
    return SharedStore(settings.store_path, settings.disk_reserve_mb, settings.store_tuning)


def load_embedder(settings: Settings, *, lazy: bool = False) -> DenseEmbedder:
    """The configured bi-encoder (bundled MiniLM by default).

    ``lazy``: load the weights on the first embedding (token counts and the window size come
    from the tokenizer and config alone), for commands that may embed nothing (ingest).
    """
    embedder_class = LazyEmbedder if lazy else DenseEmbedder
    return embedder_class(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        cache_size=settings.query_cache_size,
        device=settings.device,
        backend=settings.inference_backend,
        model_cache=settings.model_cache_path,
        threads=settings.torch_threads,
    )


def load_reranker(settings: Settings) -> CrossEncoderReranker | None:
    """The configured cross-encoder, or None when reranking is switched off."""
    model_id = settings.reranker_model_id
    if model_id is None:
        return None
    return CrossEncoderReranker(
        model_id,
        batch_size=settings.rerank_batch_size,
        device=settings.device,
        backend=settings.inference_backend,
        model_cache=settings.model_cache_path,
        threads=settings.torch_threads,
        remedy=settings.reranker_remedy,
    )


@dataclass(frozen=True)
class Retrieval:
    """The read side and the write side over one store and one set of models."""

    settings: Settings
    store: VectorStore
    embedder: DenseEmbedder
    reranker: CrossEncoderReranker | None
    searcher: Searcher
    indexer: Indexer

    def close(self) -> None:
        """Close the store (the models need no closing)."""
        self.store.close()


def assemble(
    settings: Settings,
    store: VectorStore,
    embedder: DenseEmbedder,
    reranker: CrossEncoderReranker | None = None,
) -> Retrieval:
    """A Searcher and an Indexer sharing the given store, models and per-domain analyzers."""
    analysis = DomainAnalysis(settings, store)
    return Retrieval(
        settings=settings,
        store=store,
        embedder=embedder,
        reranker=reranker,
        searcher=Searcher(settings, store, embedder, reranker, analysis),
        indexer=Indexer(settings, store, embedder, analysis),
    )


def build_retrieval(
    settings: Settings,
    store: VectorStore | None = None,
    *,
    lazy: bool = False,
    with_reranker: bool = True,
) -> Retrieval:
    """Store + models from settings, assembled.

    The models load now (the reranker, or why it cannot, is logged once), or with ``lazy`` on
    first use: a command that may embed nothing (ingest, a BM25 search) or that checks its
    request first never waits for them. ``with_reranker=False`` for commands that never rank.
    """
    store = store if store is not None else open_store(settings)
    try:
        embedder = load_embedder(settings, lazy=lazy)
    except BaseException:
        store.close()
        raise
    reranker = load_reranker(settings) if with_reranker else None
    if reranker is not None and not lazy:
        reranker.load()  # logs once why reranking is off, if it is
    return assemble(settings, store, embedder, reranker)
