"""BM25 length statistics stay exact under concurrent indexers and heal after a crash."""

from __future__ import annotations

import threading
from pathlib import Path

from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.length_stats import TENANTS_KEY, tenant_lengths
from server.retrieval.shared_store import SharedStore
from server.retrieval.store import StoredPoint, VectorStore, point_id
from server.retrieval.types import Chunk
from server.settings import Domain, Settings

TOPICS = ["tea", "tides", "bees", "rust", "moons", "ferns", "lakes", "clocks"]


def _chunks(tenant: str, source: str, count: int) -> list[Chunk]:
    return [
        Chunk(
            tenant=tenant,
            doc_id=source,
            source=source,
            chunk_index=i,
            text=" ".join([TOPICS[i % len(TOPICS)]] * (1 + i % 5) + [source, str(i)]),
        )
        for i in range(count)
    ]


def _truth(store: VectorStore, collection: str) -> dict[str, tuple[int, float]]:
    page, _ = store.scroll(collection, None, limit=10_000)
    tenants = sorted({str(p.payload["tenant"]) for p in page})
    return {
        t: (
            sum(1 for p in page if p.payload["tenant"] == t),
            float(sum(p.payload["bm25_len"] for p in page if p.payload["tenant"] == t)),
        )
        for t in tenants
    }


def _recorded(store: VectorStore, collection: str) -> dict[str, tuple[int, float]]:
    meta = store.read_meta(collection)
    tenants = sorted(meta.get(TENANTS_KEY, {}))
    recorded = {t: tenant_lengths(meta, t) for t in tenants}
    return {t: (s.points, s.total_len) for t, s in recorded.items() if s.points}


def test_concurrent_indexers_through_a_shared_store_keep_exact_counts(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    settings = Settings(reranker_model="none")
    collection = settings.domains["docs"].collection
    owner = SharedStore(tmp_path / "store")
    clients = [SharedStore(tmp_path / "store") for _ in range(2)]
    errors: list[BaseException] = []

    def run(client: SharedStore, tenant: str) -> None:
        try:
            retrieval = assemble(settings, client, embedder, None)
            for round_ in range(3):  # re-indexing replaces points: deltas net to zero
                retrieval.indexer.index(
                    "docs", _chunks(tenant, f"{tenant}.txt", 24 + round_), batch_size=4
                )
            retrieval.indexer.delete("docs", tenant, {"source": f"{tenant}.txt"})
            retrieval.indexer.index("docs", _chunks(tenant, f"{tenant}-2.txt", 10), batch_size=3)
        except BaseException as exc:
            errors.append(exc)

    try:
        threads = [
            threading.Thread(target=run, args=(c, t))
            for c, t in zip(clients, ["acme", "globex"], strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert owner.count(collection, None) == 20
        assert _recorded(owner, collection) == _truth(owner, collection)
    finally:
        for client in clients:
            client.close()
        owner.close()


def test_an_interrupted_index_is_recounted_on_the_next_run(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    store = SharedStore(tmp_path / "store")
    try:
        retrieval = assemble(Settings(reranker_model="none"), store, embedder, None)
        collection = retrieval.settings.domains["docs"].collection
        retrieval.indexer.index("docs", _chunks("acme", "a.txt", 6))
        # a batch that reached the store but not the statistics (kill -9 in between)
        encoder = retrieval.searcher.analysis.sparse_encoder(Domain.DOCS)
        lost = [
            StoredPoint(
                id=point_id("acme", "docs", "lost.txt", i),
                dense=embedder.embed_query(f"lost {i}"),
                sparse=encoder.encode_document(f"lost {i}", 3.0),
                payload={
                    "tenant": "acme",
                    "source": "lost.txt",
                    "chunk_index": i,
                    "doc_id": "lost.txt",
                    "text": f"lost {i}",
                    "bm25_len": 40 + i,
                },
            )
            for i in range(3)
        ]
        store.upsert(collection, lost)
        assert _recorded(store, collection) != _truth(store, collection)

        retrieval.indexer.index("docs", _chunks("acme", "b.txt", 2))
        assert store.count(collection, None) == 11
        assert _recorded(store, collection) == _truth(store, collection)
    finally:
        store.close()
