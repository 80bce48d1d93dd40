"""Embedded store specifics: persistence, the single-opener lock, unwritable paths, HNSW beam."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from server.errors import InvalidRequestError, StoreError, StoreLockedError
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.length_stats import tenant_lengths
from server.retrieval.sparse import SparseVector
from server.retrieval.store import HybridQuery, StoredPoint, point_id
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Settings


def test_close_and_reopen_keeps_everything(tmp_path: Path, embedder: DenseEmbedder) -> None:
    settings = Settings(reranker_model="none")
    store = EdgeStore(tmp_path / "s")
    p = assemble(settings, store, embedder)
    p.indexer.index(
        "docs",
        [Chunk(tenant="t", doc_id="a", source="a.md", text="Persistence survives restarts.")],
    )
    store.close()

    reopened = EdgeStore(tmp_path / "s")
    try:
        p2 = assemble(settings, reopened, embedder)
        result = p2.searcher.search(
            SearchRequest("restarts persistence", domain="docs", tenant="t")
        )
        assert [h.doc_id for h in result.hits] == ["a"]
        assert tenant_lengths(reopened.read_meta("docs"), "t").points == 1
    finally:
        reopened.close()


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        code = textwrap.dedent(
            f"""
            from server.errors import StoreLockedError
            from server.retrieval.edge_store import EdgeStore
            try:
                EdgeStore({str(tmp_path / "s")!r})
            except StoreLockedError as exc:
                print("LOCKED", exc)
            """
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert "LOCKED" in out.stdout
        assert f"pid {os.getpid()}" in out.stdout
        assert "RETRIEVAL_STORE_PATH" in out.stdout
    finally:
        store.close()
    # released on close: a new opener succeeds
    EdgeStore(tmp_path / "s").close()


def test_same_process_second_open_is_refused(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        with pytest.raises(StoreLockedError):
            EdgeStore(tmp_path / "s")
    finally:
        store.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(StoreError, match="not writable"):
        EdgeStore(locked / "store")


@pytest.mark.parametrize("below", ["", "store", "store/deeper"])
def test_a_store_path_at_or_under_a_file_says_so(tmp_path: Path, below: str) -> None:
    """A store path naming a file (or a path through one) said "not writable (File exists)";
    the error names the file."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / below if below else blocker
    with pytest.raises(StoreError, match=f"is not a folder: {blocker} is a file"):
        EdgeStore(path)


def test_missing_collection_reads_as_empty(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        assert not store.has_collection("docs")
        assert store.count("docs", "t") == 0
        with pytest.raises(StoreError, match="does not exist"):
            store.retrieve("docs", "t", ["x"])
    finally:
        store.close()


def test_hnsw_ef_widens_the_dense_beam(tmp_path: Path) -> None:
    """Past the full-scan threshold Qdrant searches an HNSW graph; hnsw_ef buys back recall.

    3,000 random 1024-d unit vectors (12 MB, over Qdrant's 10 MB full-scan threshold) are the
    hard case for HNSW: the default beam misses some of the exact 20 nearest, a wide one none.
    """
    n, dim, k = 3000, 1024, 20
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [point_id("t", "docs", f"s{i}", 0) for i in range(n)]
    store = EdgeStore(tmp_path / "s")
    try:
        store.ensure_collection("c", dim, BASE_PAYLOAD_INDEXES)
        payload = {"tenant": "t", "doc_id": "d", "source": "s", "chunk_index": 0}
        store.upsert(
            "c",
            [
                StoredPoint(ids[i], vectors[i].tolist(), SparseVector([i % 7], [1.0]), payload)
                for i in range(n)
            ],
        )
        store.finish_writes("c")
        queries = rng.standard_normal((20, dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)

        def recall(hnsw_ef: int | None) -> float:
            found = 0
            for q in queries:
                exact = {ids[j] for j in np.argsort(-(vectors @ q))[:k]}
                request = HybridQuery(
                    tenant="t", limit=k, candidates=k, dense=q.tolist(), hnsw_ef=hnsw_ef
                )
                found += len(exact & {p.id for p in store.query("c", request).dense})
            return found / (k * len(queries))

        default, wide = recall(None), recall(1000)
        assert default < 0.95  # the graph is in use: the default beam is approximate here
        assert wide >= 0.98
    finally:
        store.close()


def test_hnsw_ef_is_validated_and_at_least_twice_the_depth() -> None:
    with pytest.raises(InvalidRequestError, match="hnsw_ef"):
        HybridQuery(tenant="t", limit=1, candidates=1, dense=[1.0], hnsw_ef=0)

    def beam(hnsw_ef: int | None, candidates: int) -> int | None:
        query = HybridQuery(
            tenant="t", limit=1, candidates=candidates, dense=[1.0], hnsw_ef=hnsw_ef
        )
        return query.dense_beam

    assert beam(None, 100) is None  # the store's own default
    assert beam(300, 100) == 300
    assert beam(300, 212) == 424
