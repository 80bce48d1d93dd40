"""Shared fixtures: real models (bundled MiniLM, a tiny random cross-encoder), real stores."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp_support import index_corpus, open_retrieval, server_settings
from qdrant_client import QdrantClient

from retrieval_eval.bench import build_test_cross_encoder
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.shared_store import SharedStore
from server.retrieval.store import VectorStore
from server.runtime import ServerRuntime
from server.settings import Settings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The suite's models run on torch, the reference (and what the `embedder` fixture loads), so
# no test pays for an export it does not check; tests/retrieval/test_inference_backends.py
# holds the exported backends (the default) to torch and exports once per session.
os.environ.setdefault("RETRIEVAL_INFERENCE_BACKEND", "torch")


@pytest.fixture(scope="session")
def embedder() -> DenseEmbedder:
    """The bundled all-MiniLM-L6-v2 (real weights, loaded once per test session)."""
    return DenseEmbedder("sentence-transformers/all-MiniLM-L6-v2", batch_size=32)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the whole session: each model is exported once."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def exported_embedders(model_cache: Path) -> dict[str, DenseEmbedder]:
    """The bundled MiniLM exported to each graph backend (onnx, openvino) in ``model_cache``."""
    return {
        backend: DenseEmbedder("bundled", backend=backend, model_cache=model_cache)
        for backend in ("onnx", "openvino")
    }


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT cross-encoder saved like a hub model."""
    return build_test_cross_encoder(
        tmp_path_factory.mktemp("tiny-cross-encoder"), layers=2, hidden=32
    )


@pytest.fixture
def edge_store(tmp_path: Path) -> Iterator[EdgeStore]:
    store = EdgeStore(tmp_path / "edge")
    yield store
    store.close()


@pytest.fixture
def qdrant_store() -> Iterator[QdrantStore]:
    store = QdrantStore(QdrantClient(location=":memory:"))
    yield store
    store.close()


STORE_VARIANTS = ("edge", "qdrant", "shared-owner", "shared-forwarded")
"""Every way the read and write side can hold a VectorStore.

``edge``: EdgeStore opened directly. ``qdrant``: QdrantStore over qdrant-client's local mode (the
server path). ``shared-owner``: the SharedStore that opened the store and serves it.
``shared-forwarded``: a second SharedStore on the same directory, whose every call goes over the
Unix socket to the owner (serving from its own threads in this process).
"""

OpenStore = Callable[[], AbstractContextManager[VectorStore]]
"""Opens a fresh, empty store of the test's variant (closed, owner last, on leaving)."""


@contextmanager
def open_store_variant(variant: str, root: Path) -> Iterator[VectorStore]:
    """A fresh store of ``variant`` (one of STORE_VARIANTS) at ``root``; closed on exit."""
    opened: list[VectorStore] = []
    try:
        if variant == "edge":
            opened.append(EdgeStore(root))
        elif variant == "qdrant":
            opened.append(QdrantStore(QdrantClient(location=":memory:")))
        elif variant in ("shared-owner", "shared-forwarded"):
            owner = SharedStore(root)
            opened.append(owner)
            assert owner.is_owner
            if variant == "shared-forwarded":
                client = SharedStore(root)
                opened.append(client)
                assert not client.is_owner and client.owner_pid == os.getpid()
        else:
            raise ValueError(f"unknown store variant {variant!r}")
        yield opened[-1]
    finally:
        for store in reversed(opened):
            store.close()


@pytest.fixture(params=STORE_VARIANTS)
def store_variant(request: pytest.FixtureRequest) -> str:
    """Each store variant in turn (tests taking it run once per variant)."""
    return str(request.param)


@pytest.fixture
def store(store_variant: str, tmp_path: Path) -> Iterator[VectorStore]:
    """An empty store of each variant in turn (contract tests run against all of them)."""
    with open_store_variant(store_variant, tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def fresh_store(store_variant: str, tmp_path_factory: pytest.TempPathFactory) -> OpenStore:
    """Opens fresh stores of each variant in turn: one per hypothesis example."""

    def opener() -> AbstractContextManager[VectorStore]:
        return open_store_variant(store_variant, tmp_path_factory.mktemp(store_variant))

    return opener


MakeRetrieval = Callable[..., Retrieval]
"""``make_retrieval(store_class=EdgeStore, **settings)``: searcher and indexer over a fresh
embedded store (``store_class`` may be an EdgeStore subclass that counts or fails calls)."""


@pytest.fixture
def make_retrieval(tmp_path: Path, embedder: DenseEmbedder) -> Iterator[MakeRetrieval]:
    """Builds searcher + indexer over fresh embedded stores in ``tmp_path`` (no reranker unless
    the settings name one); every store is closed at teardown."""
    opened: list[EdgeStore] = []

    def make(store_class: type[EdgeStore] = EdgeStore, **overrides: Any) -> Retrieval:
        path = tmp_path / f"store-{len(opened)}"
        settings = Settings(**{"store_path": path, "reranker_model": "none", **overrides})
        store = store_class(path)
        opened.append(store)
        return assemble(settings, store, embedder, None)

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def retrieval(make_retrieval: MakeRetrieval) -> Retrieval:
    """Searcher and indexer over an empty embedded store (default settings, no reranker)."""
    return make_retrieval()


@pytest.fixture(scope="session")
def corpus_store(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[EdgeStore]:
    """The two-tenant corpus of mcp_support.py in all three domains, indexed once per session
    into an embedded store that the in-process MCP tests read (never write)."""
    path = tmp_path_factory.mktemp("corpus") / "store"
    store = EdgeStore(path)
    index_corpus(open_retrieval(store, server_settings(path), embedder))
    yield store
    store.close()


@pytest.fixture(scope="module")
def runtime(corpus_store: EdgeStore, embedder: DenseEmbedder) -> ServerRuntime:
    """A server runtime over the shared corpus (reranker off); modules override it to vary
    the settings."""
    settings = server_settings(corpus_store.root)
    return ServerRuntime(settings, store=corpus_store, embedder=embedder)
