"""Tenant term spaces (server/retrieval/term_space.py).

Invariants: moving a tenant's BM25 terms into a space of its own changes no BM25 score and no
ranking any tenant sees, on every store (embedded, server path, shared); a new collection stores
each tenant's terms in its space and a collection without the record (an earlier version's)
keeps one space; migrate carries the layout with the points.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient

from server.retrieval import term_space
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.migrate import MigrateOptions
from server.retrieval.point_copy import edge_points, target_points
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.sparse import SparseVector
from server.retrieval.store import HybridQuery, StoredPoint, VectorStore, point_id
from server.retrieval.store_tuning import StoreTuning
from tests.conftest import OpenStore

DIM = 4
COLLECTION = "terms"
TENANTS = ("acme", "globex", "initech")
U32 = 2**32 - 1


def _corpus(seed: int) -> list[StoredPoint]:
    """Three tenants over one small vocabulary (hash-like indices up to 2**32 - 1), so every
    term's posting list mixes tenants in a shared space."""
    rng = random.Random(seed)
    vocabulary = rng.sample(range(U32), 12)
    points = []
    for i in range(36):
        tenant = TENANTS[i % 3]
        terms = sorted(rng.sample(vocabulary, rng.randint(1, 5)))
        points.append(
            StoredPoint(
                id=point_id(tenant, "docs", f"s{i}", i),
                dense=[rng.uniform(-1, 1) for _ in range(DIM)],
                sparse=SparseVector(terms, [round(rng.uniform(0.1, 3.0), 3) for _ in terms]),
                payload={"tenant": tenant, "doc_id": f"d{i}", "source": f"s{i}", "chunk_index": i},
            )
        )
    return points


def _queries(points: list[StoredPoint], seed: int) -> list[SparseVector]:
    rng = random.Random(seed + 1)
    vocabulary = sorted({i for p in points for i in p.sparse.indices})
    return [
        SparseVector(sorted(q), [1.0] * len(q))
        for q in (rng.sample(vocabulary, rng.randint(1, 4)) for _ in range(6))
    ]


def _bm25(store: VectorStore, tenant: str, query: SparseVector) -> list[tuple[str, float]]:
    request = HybridQuery(tenant=tenant, limit=12, candidates=12, sparse=query)
    return [(p.id, p.score) for p in store.query(COLLECTION, request).final]


def _filled(store: VectorStore, points: list[StoredPoint]) -> VectorStore:
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    store.upsert(COLLECTION, points)
    store.finish_writes(COLLECTION)
    return store


@given(
    indices=st.lists(st.integers(0, U32), unique=True, max_size=30),
    tenant=st.text(max_size=20),
)
def test_moving_is_a_bijection_that_undoes_itself(indices: list[int], tenant: str) -> None:
    vector = SparseVector(indices, [float(i % 7) for i in range(len(indices))])
    moved = term_space.moved(vector, tenant)
    assert len(set(moved.indices)) == len(indices)
    assert all(0 <= i <= U32 for i in moved.indices)
    assert moved.indices == sorted(moved.indices)
    back = term_space.moved(moved, tenant)
    assert sorted(zip(back.indices, back.values, strict=True)) == sorted(
        zip(vector.indices, vector.values, strict=True)
    )


def test_tenant_keys_are_stable_and_differ() -> None:
    # BLAKE2b, not Python's salted hash: every process and version moves a tenant alike
    assert term_space.tenant_key("acme") == term_space.tenant_key("acme")
    assert len({term_space.tenant_key(t) for t in TENANTS}) == len(TENANTS)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10**6))
def test_tenant_spaces_change_no_bm25_score(fresh_store: OpenStore, seed: int) -> None:
    """The same points in a new collection (a space per tenant) and in one whose layout record
    is the earlier version's (one shared space): every tenant's BM25 list holds the same ids
    with the same scores (to float32 rounding) in the same order."""
    points = _corpus(seed)
    with fresh_store() as spaced, fresh_store() as shared:
        spaced.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        shared.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        _forget_record(shared)
        for store in (spaced, shared):
            store.upsert(COLLECTION, points)
            store.finish_writes(COLLECTION)
        found = 0
        for tenant in TENANTS:
            for query in _queries(points, seed):
                want = _bm25(shared, tenant, query)
                got = _bm25(spaced, tenant, query)
                # the terms of a sum come in another order: float32 rounding, no more
                assert dict(got) == pytest.approx(dict(want), rel=1e-6)
                assert _ranked(got) == _ranked(want)
                found += len(got)
        assert found  # the queries matched something


def _ranked(hits: list[tuple[str, float]]) -> list[str]:
    """Ids by score, scores equal to 5 decimals (float32 rounding apart) by id."""
    return [i for i, _ in sorted(hits, key=lambda h: (-round(h[1], 5), h[0]))]


def _forget_record(store: VectorStore) -> None:
    """Make ``store``'s new collection look like one created before tenant term spaces."""
    inner = getattr(store, "local_store", store)
    if isinstance(inner, EdgeStore):
        (inner.root / COLLECTION / term_space.TERM_SPACE_FILE).unlink()
        inner._spaces.clear()
    elif isinstance(inner, QdrantStore):
        inner.record_term_space(COLLECTION, "shared")
    else:
        pytest.skip("a forwarding store cannot reach the owner's layout record")
    assert inner.bm25_term_space(COLLECTION) == "shared"


def _assert_plain(stored: dict[str, StoredPoint], points: list[StoredPoint]) -> None:
    """Every point's BM25 vector stored at its plain term indices (one shared space)."""
    assert all(stored[p.id].sparse.indices == p.sparse.indices for p in points)


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[EdgeStore]:
    store = EdgeStore(tmp_path / "edge")
    yield store
    store.close()


def test_new_collections_store_each_tenants_terms_in_its_space(edge: EdgeStore) -> None:
    points = _corpus(7)
    _filled(edge, points)
    assert edge.bm25_term_space(COLLECTION) == "tenant"
    stored = edge_points(edge, COLLECTION, [p.id for p in points])
    for point in points:
        moved = term_space.moved(point.sparse, str(point.payload["tenant"]))
        assert stored[point.id].sparse.indices == moved.indices
    # one term, three tenants: three posting lists
    term = points[0].sparse.indices[0]
    assert len({term ^ term_space.tenant_key(t) for t in TENANTS}) == 3


def test_a_lookup_before_the_collection_exists_is_not_kept(edge: EdgeStore, tmp_path: Path) -> None:
    """Only an existing collection's record is cached: a query or upsert that looks the layout
    up first must not fix 'shared' for a collection that appears afterwards (here restored
    from a copy made by another store)."""
    assert edge.bm25_term_space(COLLECTION) == "shared"  # nothing recorded yet
    other = EdgeStore(tmp_path / "other")
    other.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    other.close()
    shutil.copytree(tmp_path / "other" / COLLECTION, edge.root / COLLECTION)
    assert edge.bm25_term_space(COLLECTION) == "tenant"


def test_a_collection_without_the_record_keeps_one_space(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "old")
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    (tmp_path / "old" / COLLECTION / term_space.TERM_SPACE_FILE).unlink()
    store.close()
    reopened = EdgeStore(tmp_path / "old")
    try:
        points = _corpus(3)
        _filled(reopened, points)
        assert reopened.bm25_term_space(COLLECTION) == "shared"
        _assert_plain(edge_points(reopened, COLLECTION, [p.id for p in points]), points)
        assert _bm25(reopened, "acme", _queries(points, 3)[0])
    finally:
        reopened.close()


@pytest.mark.parametrize("space", ["tenant", "shared"])
def test_migrate_carries_the_layout(tmp_path: Path, space: str) -> None:
    from server.cli_migrate import run_migration

    source = EdgeStore(tmp_path / "edge")
    source.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    if space == "shared":
        _forget_record(source)
    points = _corpus(11)
    source.upsert(COLLECTION, points)
    source.finish_writes(COLLECTION)
    target = QdrantStore(QdrantClient(location=":memory:"))
    try:
        result = run_migration(source, target, [COLLECTION], MigrateOptions())
        assert result.complete  # verified point by point, BM25 vectors included
        assert target.bm25_term_space(COLLECTION) == space
        ids = [p.id for p in points]
        copied, original = (
            target_points(target, COLLECTION, ids),
            edge_points(source, COLLECTION, ids),
        )
        assert all(copied[i].sparse.indices == original[i].sparse.indices for i in ids)
        for tenant in TENANTS:
            for query in _queries(points, 11):
                want, got = _bm25(source, tenant, query), _bm25(target, tenant, query)
                assert _ranked(got) == _ranked(want)
                assert dict(got) == pytest.approx(dict(want), rel=1e-6)
    finally:
        target.close()
        source.close()


def test_the_setting_off_gives_new_collections_one_space(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "off", tuning=StoreTuning(tenant_term_spaces=False))
    try:
        points = _corpus(5)
        _filled(store, points)
        assert store.bm25_term_space(COLLECTION) == "shared"
        _assert_plain(edge_points(store, COLLECTION, [p.id for p in points]), points)
    finally:
        store.close()
    server = QdrantStore(
        QdrantClient(location=":memory:"), tuning=StoreTuning(tenant_term_spaces=False)
    )
    try:
        _filled(server, _corpus(5))
        assert server.bm25_term_space(COLLECTION) == "shared"
    finally:
        server.close()
