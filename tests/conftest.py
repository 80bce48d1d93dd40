"""Shared fixtures: real models (bundled MiniLM, a tiny random cross-encoder), real stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from retrieval_eval.bench import build_test_cross_encoder
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.shared_store import SharedStore
from server.retrieval.store import VectorStore

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder() -> DenseEmbedder:
    """The bundled all-MiniLM-L6-v2 (real weights, loaded once per test session)."""
    return DenseEmbedder("sentence-transformers/all-MiniLM-L6-v2", batch_size=32)


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


@pytest.fixture(params=["edge", "qdrant", "forwarded"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """Each store implementation in turn (contract tests run against all of them).

    ``forwarded``: a SharedStore client whose every call goes over the Unix socket to the
    owner (another SharedStore on the same directory, serving from its own threads).
    """
    owner: SharedStore | None = None
    if request.param == "edge":
        s: VectorStore = EdgeStore(tmp_path / "edge")
    elif request.param == "forwarded":
        owner = SharedStore(tmp_path / "edge")
        client = SharedStore(tmp_path / "edge")
        assert owner.is_owner and not client.is_owner
        s = client
    else:
        s = QdrantStore(QdrantClient(location=":memory:"))
    yield s
    s.close()
    if owner is not None:
        owner.close()
