"""Collection layout and quantized search (store_tuning.py) on the embedded and server stores.

A new collection gets int8 copies of its dense vectors with the originals on disk; dense searches
rescore the quantized candidates with the original vectors, so reported scores are the exact
cosines; a collection created before (no quantization, vectors in RAM) opens and searches as it
did.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from server.retrieval import edge_convert, qdrant_convert, qdrant_tuning
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.query_plan import NeighbourSearch, QueryPlan
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    HybridQuery,
    StoredPoint,
    point_id,
)
from server.retrieval.store_tuning import StoreTuning

PAYLOAD = {"tenant": "t", "doc_id": "d", "source": "s", "chunk_index": 0}


def _points(vectors: np.ndarray) -> list[StoredPoint]:
    return [
        StoredPoint(
            point_id("t", "docs", f"s{i}", 0), v.tolist(), SparseVector([i % 7], [1.0]), PAYLOAD
        )
        for i, v in enumerate(vectors)
    ]


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _request(tenant: str = "t", **extra: object) -> HybridQuery:
    return HybridQuery(
        tenant=tenant,
        limit=5,
        candidates=5,
        dense=[1.0, 0.0, 0.0, 0.0],
        sparse=SparseVector([1], [1.0]),
        part_weight=0.5,
        hnsw_ef=64,
        **extra,  # type: ignore[arg-type]
    )


def test_new_edge_collection_is_quantized_with_vectors_on_disk(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        store.ensure_collection("c", 4, BASE_PAYLOAD_INDEXES, part_vectors=True)
    finally:
        store.close()
    config = json.loads((tmp_path / "s" / "c" / "edge_config.json").read_text())
    dense, parts = config["vectors"][DENSE_VECTOR], config["vectors"][PARTS_VECTOR]
    assert dense["memory"] == parts["memory"] == "cold"
    assert dense["quantization_config"]["scalar"] == {
        "type": "int8",
        "quantile": 0.99,
        "memory": "pinned",
    }
    assert parts["quantization_config"]["scalar"]["memory"] == "cold"
    assert parts["datatype"] == "float16"
    hnsw = config["hnsw_config"]
    # Qdrant's multitenancy layout: no collection-wide graph, one of degree 16 per tenant
    assert (hnsw["m"], hnsw["payload_m"], hnsw["ef_construct"]) == (0, 16, 100)
    assert config["sparse_vectors"][SPARSE_VECTOR]["memory"] == "cold"
    assert config["optimizers"]["max_segment_size"] == 512 * 1024


def test_only_the_tenant_index_grows_graphs_and_indexes_live_on_disk(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "s")
    try:
        store.ensure_collection("c", 4, BASE_PAYLOAD_INDEXES)
        schema = store._shard("c").info().payload_schema
    finally:
        store.close()
    tenant = schema["tenant"].params
    assert tenant is not None and tenant.is_tenant and tenant.memory is None  # in RAM
    for field in set(BASE_PAYLOAD_INDEXES) - {"tenant"}:
        params = schema[field].params
        assert params is not None and params.enable_hnsw is False, field
        assert params.memory == qe.Memory.Cold, field


@pytest.mark.slow
def test_tenant_graphs_find_the_exact_top_inside_the_tenant(tmp_path: Path) -> None:
    """Two tenants of 2,600 1024-d vectors each (10.6 MB, past Qdrant's full-scan threshold,
    so each gets its own graph): a tenant's HNSW search returns only its points, and nearly
    the exact top 10."""
    n, dim, k = 2600, 1024, 10
    rng = np.random.default_rng(11)
    store = EdgeStore(tmp_path / "s")
    try:
        store.ensure_collection("c", dim, BASE_PAYLOAD_INDEXES)
        vectors = {t: _unit(rng, n, dim) for t in ("acme", "globex")}
        for tenant, block in vectors.items():
            store.upsert("c", [_tenant_point(tenant, i, v) for i, v in enumerate(block)])
        store.finish_writes("c")
        segments = (tmp_path / "s" / "c" / "segments").iterdir()
        configs = [json.loads((d / "segment.json").read_text())["config"] for d in segments]
        indexes = [c["vector_data"][DENSE_VECTOR]["index"] for c in configs if c["vector_data"]]
        graphs = [i["options"] for i in indexes if i["type"] == "hnsw"]
        assert graphs and all((g["m"], g["payload_m"]) == (0, 16) for g in graphs), indexes
        acme_ids = {point_id("acme", "docs", f"s{i}", 0) for i in range(n)}
        found = 0
        for q in _unit(rng, 10, dim):
            request = HybridQuery(tenant="acme", limit=k, candidates=k, dense=q.tolist())
            approx = store.query("c", HybridQuery(**{**request.__dict__, "hnsw_ef": 256})).dense
            exact = store.query("c", HybridQuery(**{**request.__dict__, "exact": True})).dense
            assert len(approx) == k and {p.id for p in approx} <= acme_ids, approx
            assert [p.id for p in exact] == [
                point_id("acme", "docs", f"s{j}", 0) for j in np.argsort(-(vectors["acme"] @ q))[:k]
            ]
            found += len({p.id for p in approx} & {p.id for p in exact})
        assert found / (10 * k) >= 0.9, found
    finally:
        store.close()


def _tenant_point(tenant: str, i: int, vector: np.ndarray) -> StoredPoint:
    payload = {**PAYLOAD, "tenant": tenant, "source": f"s{i}"}
    return StoredPoint(
        point_id(tenant, "docs", f"s{i}", 0), vector.tolist(), SparseVector([i % 7], [1.0]), payload
    )


def test_unquantized_tuning_keeps_the_plain_layout(tmp_path: Path) -> None:
    tuning = StoreTuning(quantization="none", vectors_on_disk=False, hnsw_m=32)
    store = EdgeStore(tmp_path / "s", tuning=tuning)
    try:
        store.ensure_collection("c", 4, BASE_PAYLOAD_INDEXES)
    finally:
        store.close()
    config = json.loads((tmp_path / "s" / "c" / "edge_config.json").read_text())
    dense = config["vectors"][DENSE_VECTOR]
    assert dense.get("quantization_config") is None and dense.get("memory") is None
    assert config["hnsw_config"]["payload_m"] == 32  # the degree of each tenant's graph


def test_one_collection_wide_graph_when_tenant_graphs_are_off(tmp_path: Path) -> None:
    tuning = StoreTuning(tenant_graphs=False, payload_indexes_on_disk=False)
    store = EdgeStore(tmp_path / "s", tuning=tuning)
    try:
        store.ensure_collection("c", 4, BASE_PAYLOAD_INDEXES)
        schema = store._shard("c").info().payload_schema
    finally:
        store.close()
    config = json.loads((tmp_path / "s" / "c" / "edge_config.json").read_text())
    assert config["hnsw_config"]["m"] == 16 and config["hnsw_config"].get("payload_m") is None
    assert schema["doc_id"].params is None  # a plain keyword index, in RAM


def _round_one_params(
    backend: str, searches: list[NeighbourSearch], tuning: StoreTuning
) -> list[object]:
    """The search params of these searches' requests as the backend's converter builds them."""
    if backend == "edge":
        return [r.params for r in edge_convert.round_one(searches, tuning).queries]
    return [r.params for r in qdrant_convert.round_one(searches, tuning)]


def _blend_input_params(backend: str, plan: QueryPlan, tuning: StoreTuning) -> list[object]:
    """The params of round 2's blend inputs (the chunk and part reruns) as converted."""
    a, b = point_id("t", "docs", "a", 0), point_id("t", "docs", "b", 0)
    second = plan.round_two([[(a, 0.9)], [(b, 0.8)], []])  # chunk, parts, BM25
    blend = second.requests[0]
    if backend == "edge":
        [request] = edge_convert.round_two([blend], tuning).queries
        return [p.params for p in request.prefetches]
    [client_request] = qdrant_convert.round_two([blend], tuning)
    return [p.params for p in client_request.prefetch or []]  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["edge", "qdrant"])
def test_dense_searches_rescore_and_exact_ones_skip_quantization(backend: str) -> None:
    tuning = StoreTuning(oversampling=3.0)
    plan = QueryPlan.build(_request())
    assert [s.stage for s in plan.round_one] == ["chunk", "parts", "sparse"]
    chunk, parts, sparse = _round_one_params(backend, list(plan.round_one), tuning)
    for dense in (chunk, parts):
        assert dense.quantization.rescore is True  # type: ignore[attr-defined]
        assert dense.quantization.oversampling == 3.0  # type: ignore[attr-defined]
        assert not dense.exact  # type: ignore[attr-defined]
    assert sparse.quantization is None  # type: ignore[attr-defined]
    exact = QueryPlan.build(_request(exact=True))
    for dense in _round_one_params(backend, list(exact.round_one[:2]), tuning):
        assert dense.exact and dense.quantization.ignore  # type: ignore[attr-defined]
    # round 2 scores the ids it reruns exactly: the same cosines rescoring gives, no int8 pass
    for rerun in _blend_input_params(backend, plan, tuning):
        assert rerun.exact and rerun.quantization.ignore  # type: ignore[attr-defined]


@pytest.mark.slow
def test_quantized_search_reports_exact_cosines_and_finds_the_exact_top(tmp_path: Path) -> None:
    """3,000 1024-d vectors (12 MB, past Qdrant's indexing threshold) get an HNSW graph over
    int8 copies. Rescored, every score is the float cosine; without rescoring the int8 scores
    show (so the quantized copies are in use); exact search is the brute-force top."""
    n, dim, k = 3000, 1024, 10
    rng = np.random.default_rng(3)
    vectors = _unit(rng, n, dim)
    ids = [point_id("t", "docs", f"s{i}", 0) for i in range(n)]
    store = EdgeStore(tmp_path / "s")
    try:
        store.ensure_collection("c", dim, BASE_PAYLOAD_INDEXES)
        store.upsert("c", _points(vectors))
        store.finish_writes("c")
        queries = _unit(rng, 10, dim)
        unrescored = 0
        for q in queries:
            cosines = vectors @ q
            request = HybridQuery(tenant="t", limit=k, candidates=k, dense=q.tolist(), hnsw_ef=400)
            found = store.query("c", request).dense
            for point in found:
                assert point.score == pytest.approx(float(cosines[ids.index(point.id)]), abs=1e-4)
            exact = store.query("c", HybridQuery(**{**request.__dict__, "exact": True})).dense
            assert [p.id for p in exact] == [ids[j] for j in np.argsort(-cosines)[:k]]
            store.tuning = StoreTuning(rescore=False)
            raw = store.query("c", request).dense
            store.tuning = StoreTuning()
            unrescored += sum(abs(p.score - float(cosines[ids.index(p.id)])) > 1e-4 for p in raw)
        assert unrescored > 0
    finally:
        store.close()


def _old_edge_collection(path: Path, dim: int) -> None:
    """A collection as stores made it before the tuning: plain float vectors in RAM."""
    config = qe.EdgeConfig(
        vectors={DENSE_VECTOR: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )
    qe.EdgeShard.create(str(path), config).close()


def test_edge_collection_made_before_the_tuning_opens_and_searches(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    vectors = _unit(rng, 40, 8)
    root = tmp_path / "s"
    root.mkdir()
    _old_edge_collection(root / "c", 8)
    before = (root / "c" / "edge_config.json").read_text()
    store = EdgeStore(root)
    try:
        store.ensure_collection("c", 8, BASE_PAYLOAD_INDEXES)
        store.upsert("c", _points(vectors))
        store.finish_writes("c")
        request = HybridQuery(tenant="t", limit=3, candidates=3, dense=vectors[7].tolist())
        top = store.query("c", request).dense
        assert top[0].id == point_id("t", "docs", "s7", 0)
        assert top[0].score == pytest.approx(1.0, abs=1e-5)
        assert store.count("c", "t") == 40
    finally:
        store.close()
    config = json.loads((root / "c" / "edge_config.json").read_text())
    assert config["vectors"] == json.loads(before)["vectors"]  # layout kept, not migrated
    assert config["vectors"][DENSE_VECTOR].get("quantization_config") is None


def test_new_qdrant_collection_is_quantized_with_vectors_on_disk() -> None:
    store = QdrantStore(QdrantClient(location=":memory:"))
    try:
        store.ensure_collection("c", 4, BASE_PAYLOAD_INDEXES, part_vectors=True)
        config = store.client.get_collection("c").config
        vectors = config.params.vectors
        assert isinstance(vectors, dict)
        for name, in_ram in ((DENSE_VECTOR, True), (PARTS_VECTOR, False)):
            params = vectors[name]
            assert params.on_disk is True
            assert isinstance(params.quantization_config, models.ScalarQuantization)
            scalar = params.quantization_config.scalar
            assert scalar.type == models.ScalarType.INT8 and bool(scalar.always_ram) is in_ram
        assert config.hnsw_config.ef_construct == 100
        # (local mode reports its own optimizer defaults; a server keeps max_segment_size)
    finally:
        store.close()


def test_qdrant_collection_made_before_the_tuning_opens_and_searches() -> None:
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "c",
        vectors_config={DENSE_VECTOR: models.VectorParams(size=8, distance=models.Distance.COSINE)},
        sparse_vectors_config={
            SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
        },
    )
    store = QdrantStore(client)
    try:
        vectors = _unit(np.random.default_rng(5), 40, 8)
        store.ensure_collection("c", 8, BASE_PAYLOAD_INDEXES)
        store.upsert("c", _points(vectors))
        request = HybridQuery(tenant="t", limit=3, candidates=3, dense=vectors[7].tolist())
        top = store.query("c", request).dense
        assert top[0].id == point_id("t", "docs", "s7", 0)
        dense = client.get_collection("c").config.params.vectors[DENSE_VECTOR]  # type: ignore[index]
        assert dense.quantization_config is None
    finally:
        store.close()


def test_server_collections_get_the_same_tenant_layout() -> None:
    # qdrant-client's local mode keeps no HNSW or index settings: check what is sent
    tuning = StoreTuning()
    hnsw = qdrant_tuning.hnsw_config(tuning)
    assert (hnsw.m, hnsw.payload_m, hnsw.ef_construct) == (0, 16, 100)
    sparse = qdrant_tuning.sparse_vector_params(tuning)
    assert sparse.modifier == models.Modifier.IDF and sparse.index is not None
    assert sparse.index.on_disk is True
    tenant = qdrant_tuning.index_schema(tuning, "tenant")
    assert tenant.is_tenant and not tenant.on_disk  # every search filters by it: in RAM
    for kind in ("keyword", "integer"):
        schema = qdrant_tuning.index_schema(tuning, kind)
        assert schema.enable_hnsw is False and schema.on_disk is True, kind
    plain = StoreTuning(tenant_graphs=False, payload_indexes_on_disk=False)
    assert qdrant_tuning.hnsw_config(plain).m == 16
    assert qdrant_tuning.index_schema(plain, "keyword") == models.PayloadSchemaType.KEYWORD
