"""One contract, two stores: Qdrant Edge (embedded) and qdrant-client (server path)."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

import pytest

from server.errors import InvalidRequestError
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.query_plan import QueryPlan
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    HybridQuery,
    ScoredPoint,
    StoredPoint,
    VectorStore,
    point_id,
)
from server.settings import FusionSettings

DIM = 8
COLLECTION = "contract"


def _vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def _point(i: int, tenant: str, term: int, **extra: object) -> StoredPoint:
    payload = {"tenant": tenant, "doc_id": f"d{i}", "source": f"s{i % 3}", "chunk_index": i}
    payload.update(extra)
    return StoredPoint(
        id=point_id(tenant, "docs", f"s{i}", i),
        dense=_vec(i),
        sparse=SparseVector([term, 1000 + i], [1.0, 0.5]),
        payload=payload,
    )


@pytest.fixture
def filled(store: VectorStore) -> VectorStore:
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    store.upsert(COLLECTION, [_point(i, "a" if i % 2 else "b", term=i % 4) for i in range(20)])
    store.finish_writes(COLLECTION)
    return store


def test_ensure_collection_is_idempotent(store: VectorStore) -> None:
    assert not store.has_collection(COLLECTION)
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    assert store.has_collection(COLLECTION)
    assert store.count(COLLECTION, None) == 0


def test_counts_per_tenant(filled: VectorStore) -> None:
    assert filled.count(COLLECTION, None) == 20
    assert filled.count(COLLECTION, "a") == 10
    assert filled.count(COLLECTION, "a", {"source": "s0"}) == 3
    assert filled.count("missing", "a") == 0


def test_upsert_same_id_replaces(filled: VectorStore) -> None:
    filled.upsert(COLLECTION, [_point(1, "a", term=3, note="v2")])
    assert filled.count(COLLECTION, None) == 20
    [got] = filled.retrieve(COLLECTION, "a", [point_id("a", "docs", "s1", 1)])
    assert got.payload["note"] == "v2"


@pytest.mark.parametrize("kind", ["dense", "sparse", "hybrid-rrf", "hybrid-dbsf"])
def test_query_stays_in_tenant(filled: VectorStore, kind: str) -> None:
    fusion = FusionSettings(method="dbsf" if kind.endswith("dbsf") else "rrf")
    request = HybridQuery(
        tenant="a",
        limit=5,
        candidates=20,
        dense=_vec(3) if kind != "sparse" else None,
        # term 3 is shared by five of the tenant's points; term 1003 only by point 3
        sparse=SparseVector([3, 1003], [1.0, 1.0]) if kind != "dense" else None,
        fusion=fusion,
    )
    response = filled.query(COLLECTION, request)
    assert 0 < len(response.final) <= 5
    assert all(p.payload["tenant"] == "a" for p in response.final)
    if kind != "sparse":
        # the point whose vector equals the query vector is the nearest neighbour
        assert response.dense[0].id == point_id("a", "docs", "s3", 3)
    if kind != "dense":
        assert response.sparse[0].id == point_id("a", "docs", "s3", 3)
        assert {p.id for p in response.sparse} == {
            point_id("a", "docs", f"s{i}", i) for i in (3, 7, 11, 15, 19)
        }
    if kind.startswith("hybrid"):
        assert response.final[0].id == point_id("a", "docs", "s3", 3)


def _rrf(position: int, weight: float, k: int) -> float:
    """Qdrant's weighted RRF term (see FusionSettings)."""
    return 1.0 / ((position + 1) / weight + k - 1)


def _assert_weighted_rrf(store: VectorStore, collection: str, request: HybridQuery) -> None:
    """The final list is Qdrant's fusion of exactly the dense and sparse lists reported."""
    fusion = request.fusion
    response = store.query(collection, request)
    assert len(response.dense) == len(response.sparse) == request.candidates
    expected: dict[str, float] = {}
    stages = ((response.dense, fusion.dense_weight), (response.sparse, fusion.sparse_weight))
    for stage, weight in stages:
        for rank, point in enumerate(stage):
            expected[point.id] = expected.get(point.id, 0.0) + _rrf(rank, weight, fusion.rrf_k)
    best = sorted(expected.items(), key=lambda item: -item[1])[: request.limit]
    got = [(p.id, p.score) for p in response.final]
    assert [score for _, score in got] == pytest.approx([score for _, score in best], rel=1e-4)
    assert {i for i, _ in got} <= set(expected)
    assert all(
        p.payload["tenant"] == request.tenant and p.payload["doc_id"] for p in response.final
    )


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 3.0), (2.5, 1.0)])
def test_fused_ranking_is_weighted_rrf_of_the_reported_stages(
    filled: VectorStore, weights: tuple[float, float]
) -> None:
    fusion = FusionSettings(
        method="rrf", rrf_k=2, dense_weight=weights[0], sparse_weight=weights[1]
    )
    request = HybridQuery(
        tenant="a",
        limit=8,
        candidates=6,  # shorter than the tenant's 10 points: the two lists differ
        dense=_vec(3),
        sparse=SparseVector([1, 3, 1005, 1011], [0.3, 1.0, 2.0, 0.7]),
        fusion=fusion,
    )
    _assert_weighted_rrf(filled, COLLECTION, request)


def test_payload_filters(filled: VectorStore) -> None:
    request = HybridQuery(
        tenant="a", limit=20, candidates=20, dense=_vec(0), filters={"source": ["s0", "s1"]}
    )
    found = filled.query(COLLECTION, request).final
    assert found and all(p.payload["source"] in {"s0", "s1"} for p in found)
    with pytest.raises(InvalidRequestError):
        HybridQuery(tenant="", limit=1, candidates=1, dense=_vec(0))
    with pytest.raises(InvalidRequestError):
        filled.query(
            COLLECTION,
            HybridQuery(tenant="a", limit=1, candidates=1, dense=_vec(0), filters={"tenant": "b"}),
        )


def test_retrieve_hides_other_tenants(filled: VectorStore) -> None:
    ids = [point_id("a", "docs", "s1", 1), point_id("b", "docs", "s2", 2)]
    assert [p.payload["tenant"] for p in filled.retrieve(COLLECTION, "a", ids)] == ["a"]


def test_vectors_are_read_back_as_written_and_stay_in_tenant(store: VectorStore) -> None:
    """What re-ingesting a changed file reuses: each point's chunk vector (cosine-normalised,
    as the stores keep it) and part vectors (float16), only the asking tenant's."""
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES, part_vectors=True)
    points = [
        replace(_point(i, "a" if i % 2 else "b", term=i), parts=[_vec(100 + i), _vec(200 + i)])
        for i in range(6)
    ]
    store.upsert(COLLECTION, points)
    store.finish_writes(COLLECTION)
    ids = [p.id for p in points] + ["00000000-0000-0000-0000-000000000000"]
    got = {v.id: v for v in store.vectors(COLLECTION, "a", ids)}
    assert sorted(got) == sorted(p.id for p in points if p.payload["tenant"] == "a")
    for point in points:
        if point.id not in got:
            continue
        read = got[point.id]
        assert read.payload["doc_id"] == point.payload["doc_id"]
        assert read.dense == pytest.approx(_unit(*point.dense), abs=1e-6)
        assert read.parts is not None and len(read.parts) == 2
        for stored, written in zip(read.parts, point.parts or [], strict=True):
            assert stored == pytest.approx(_unit(*written), abs=2.0**-9)


def test_delete_by_filter_and_tenant(filled: VectorStore) -> None:
    filled.delete(COLLECTION, "a", {"source": "s0"})
    assert filled.count(COLLECTION, "a") == 7
    assert filled.count(COLLECTION, "b") == 10
    filled.delete(COLLECTION, "b")
    assert filled.count(COLLECTION, "b") == 0
    assert filled.count(COLLECTION, "a") == 7


def test_scroll_pages_through_everything(filled: VectorStore) -> None:
    seen: list[str] = []
    offset = None
    while True:
        page, offset = filled.scroll(COLLECTION, "b", limit=3, offset=offset)
        seen.extend(p.id for p in page)
        if offset is None:
            break
    assert len(seen) == len(set(seen)) == 10


def test_scroll_returns_the_payload_keys_asked_for(filled: VectorStore) -> None:
    """``fields`` keeps only those keys, ``omit`` drops those; the same points either way."""
    whole, _ = filled.scroll(COLLECTION, "b", limit=50)
    only, _ = filled.scroll(COLLECTION, "b", limit=50, fields=["source", "chunk_index"])
    without, _ = filled.scroll(COLLECTION, "b", limit=50, omit=["doc_id"])
    assert [p.id for p in only] == [p.id for p in without] == [p.id for p in whole]
    for full, kept, rest in zip(whole, only, without, strict=True):
        assert "doc_id" in full.payload
        assert kept.payload == {k: full.payload[k] for k in ("source", "chunk_index")}
        assert rest.payload == {k: v for k, v in full.payload.items() if k != "doc_id"}


def test_update_sparse_changes_matches(filled: VectorStore) -> None:
    target = point_id("a", "docs", "s1", 1)
    filled.update_sparse(COLLECTION, "a", [(target, SparseVector([777], [1.0]))])
    request = HybridQuery(tenant="a", limit=5, candidates=20, sparse=SparseVector([777], [1.0]))
    assert [p.id for p in filled.query(COLLECTION, request).final] == [target]


def test_meta_round_trip(filled: VectorStore) -> None:
    assert filled.read_meta(COLLECTION) == {}
    filled.write_meta(COLLECTION, {"points": 20, "total_len": 41.5})
    assert filled.read_meta(COLLECTION) == {"points": 20, "total_len": 41.5}


def test_adjust_meta_adds_deltas_and_sets_values(filled: VectorStore) -> None:
    filled.write_meta(COLLECTION, {"points": 20, "note": "kept"})
    meta = filled.adjust_meta(COLLECTION, {"points": -3, "total_len": 7.5}, {"avg": 2.0})
    assert meta == {"points": 17, "total_len": 7.5, "avg": 2.0, "note": "kept"}
    assert filled.read_meta(COLLECTION) == meta


def test_adjust_meta_nests(filled: VectorStore) -> None:
    """Per-tenant statistics: deltas and values apply inside nested mappings."""
    filled.write_meta(COLLECTION, {"tenants": {"a": {"points": 2, "total_len": 5.0}}})
    meta = filled.adjust_meta(
        COLLECTION,
        {"tenants": {"a": {"points": 1}, "b": {"points": 3, "total_len": 9.0}}},
        {"tenants": {"a": {"encoded_avg_len": 2.5}}},
    )
    assert meta == {
        "tenants": {
            "a": {"points": 3, "total_len": 5.0, "encoded_avg_len": 2.5},
            "b": {"points": 3, "total_len": 9.0},
        }
    }
    assert filled.read_meta(COLLECTION) == meta


def test_writes_carry_their_meta_deltas(filled: VectorStore) -> None:
    filled.upsert(COLLECTION, [_point(30, "a", term=1)], meta_deltas={"points": 1})
    filled.upsert(COLLECTION, [_point(31, "a", term=1)])
    assert filled.read_meta(COLLECTION) == {"points": 1}
    filled.delete(COLLECTION, "a", {"doc_id": "d30"}, meta_deltas={"points": -1})
    assert filled.read_meta(COLLECTION) == {"points": 0}
    assert filled.count(COLLECTION, "a") == 11


def test_concurrent_meta_adjustments_are_not_lost(filled: VectorStore) -> None:
    def bump(worker: int) -> None:
        for i in range(10):
            if i % 2:
                filled.adjust_meta(COLLECTION, {"points": 1, "total_len": 0.5})
            else:
                point = _point(100 + worker * 10 + i, "a", term=2)
                filled.upsert(COLLECTION, [point], meta_deltas={"points": 1, "total_len": 0.5})

    threads = [threading.Thread(target=bump, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert filled.read_meta(COLLECTION) == {"points": 40, "total_len": 20.0}


def _unit(*values: float) -> list[float]:
    norm = sum(v * v for v in values) ** 0.5
    return [v / norm for v in values] + [0.0] * (DIM - len(values))


def _part_point(
    name: str, tenant: str, dense: list[float], parts: list[list[float]]
) -> StoredPoint:
    return StoredPoint(
        id=point_id(tenant, "docs", name, 0),
        dense=dense,
        sparse=SparseVector([7], [1.0]),
        payload={"tenant": tenant, "doc_id": name, "source": name, "chunk_index": 0},
        parts=parts,
    )


def test_has_part_vectors_only_when_created_with_them(store: VectorStore) -> None:
    assert not store.has_part_vectors(COLLECTION)
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    assert not store.has_part_vectors(COLLECTION)
    store.ensure_collection("with-parts", DIM, BASE_PAYLOAD_INDEXES, part_vectors=True)
    assert store.has_part_vectors("with-parts")


@pytest.mark.parametrize("sparse", [False, True])
def test_part_vectors_blend_into_the_dense_stage(store: VectorStore, sparse: bool) -> None:
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES, part_vectors=True)
    # "buried": the chunk vector misses the query, one of its parts hits it exactly;
    # "broad": the chunk vector is fairly close, its only part is the chunk itself.
    broad = _unit(0.4, 0.84**0.5)
    store.upsert(
        COLLECTION,
        [
            _part_point("buried", "a", _unit(0, 1), [_unit(0, 1), _unit(1)]),
            _part_point("broad", "a", broad, [broad]),
            _part_point("other-tenant", "b", _unit(1), [_unit(1)]),
        ],
    )
    store.finish_writes(COLLECTION)
    query = _unit(1)

    def dense_stage(weight: float | None) -> dict[str, float]:
        response = store.query(
            COLLECTION,
            HybridQuery(
                tenant="a",
                limit=5,
                candidates=5,
                dense=query,
                sparse=SparseVector([7], [1.0]) if sparse else None,
                part_weight=weight,
            ),
        )
        assert {p.payload["tenant"] for p in response.final} == {"a"}
        stage = response.dense if sparse else response.final
        return {p.id: p.score for p in stage}

    buried, broad_id = point_id("a", "docs", "buried", 0), point_id("a", "docs", "broad", 0)
    chunk_only = dense_stage(None)
    assert chunk_only[broad_id] == pytest.approx(0.4, abs=1e-3)
    assert chunk_only[buried] == pytest.approx(0.0, abs=1e-3)
    blended = dense_stage(0.5)  # 0.5 * chunk cosine + 0.5 * best part cosine
    assert blended[buried] == pytest.approx(0.5, abs=1e-3)
    assert blended[broad_id] == pytest.approx(0.4, abs=1e-3)
    assert max(blended, key=blended.__getitem__) == buried
    assert dense_stage(1.0)[buried] == pytest.approx(1.0, abs=1e-3)


def test_part_weight_is_validated() -> None:
    with pytest.raises(InvalidRequestError, match="part_weight"):
        HybridQuery(tenant="a", limit=1, candidates=1, dense=[1.0], part_weight=1.5)


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


def _blend_collection(
    store: VectorStore, rng: random.Random, count: int, max_parts: int, b_every: int
) -> list[StoredPoint]:
    """``count`` points with 1 to ``max_parts`` random part vectors each in a new collection
    ``blend``; every ``b_every``-th belongs to tenant b, the rest to a."""
    store.ensure_collection("blend", DIM, BASE_PAYLOAD_INDEXES, part_vectors=True)
    points = []
    for i in range(count):
        parts = [_vec(rng.randrange(10**6)) for _ in range(rng.randint(1, max_parts))]
        point = _point(i, "a" if i % b_every else "b", term=i % 5)
        points.append(
            StoredPoint(point.id, _vec(rng.randrange(10**6)), point.sparse, point.payload, parts)
        )
    store.upsert("blend", points)
    store.finish_writes("blend")
    return points


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blended_dense_list_is_exact_over_both_neighbour_lists(
    store: VectorStore, seed: int
) -> None:
    """With parts: the dense list is the top of the chunk and part neighbours, by the blend.

    Checked against brute force over the tenant's points; the fused list is the weighted RRF of
    the reported lists, as without parts.
    """
    rng = random.Random(seed)
    points = _blend_collection(store, rng, count=40, max_parts=3, b_every=4)
    query, depth, weight = _vec(rng.randrange(10**6)), 7, 0.6
    request = HybridQuery(
        tenant="a",
        limit=9,
        candidates=depth,
        dense=query,
        sparse=SparseVector([1, 2, 3, 4], [1.0, 0.8, 0.6, 0.4]),
        fusion=FusionSettings(method="rrf", rrf_k=3, dense_weight=1.5, sparse_weight=1.0),
        part_weight=weight,
    )
    own = [p for p in points if p.payload["tenant"] == "a"]
    chunk = {p.id: _cosine(query, p.dense) for p in own}
    best_part = {p.id: max(_cosine(query, v) for v in p.parts or []) for p in own}
    near = sorted(chunk, key=chunk.__getitem__, reverse=True)[:depth]
    near += sorted(best_part, key=best_part.__getitem__, reverse=True)[:depth]
    blend = {i: (1 - weight) * chunk[i] + weight * best_part[i] for i in set(near)}
    expected = sorted(blend.items(), key=lambda item: -item[1])[:depth]
    dense = store.query("blend", request).dense
    assert [p.id for p in dense] == [i for i, _ in expected]
    assert [p.score for p in dense] == pytest.approx([s for _, s in expected], abs=2e-3)
    _assert_weighted_rrf(store, "blend", request)


@pytest.mark.parametrize("parts", [False, True])
def test_hybrid_stage_lists_are_each_stage_run_alone(store: VectorStore, parts: bool) -> None:
    """Invariant: the dense and sparse lists a hybrid query reports (and fuses) are exactly the
    lists a dense-only and a BM25-only query of the same tenant return, ids and scores: where a
    stage runs (BM25 with the fusion in round 2, the dense searches in round 1) and how round 2
    scores its reruns (exactly, over round 1's ids) never change a stage's list."""
    rng = random.Random(7)
    store.ensure_collection("stages", DIM, BASE_PAYLOAD_INDEXES, part_vectors=parts)
    points = []
    for i in range(60):
        point = _point(i, "a" if i % 3 else "b", term=i % 6)
        extra = [_vec(rng.randrange(10**6)) for _ in range(rng.randint(1, 3))] if parts else None
        points.append(StoredPoint(point.id, point.dense, point.sparse, point.payload, extra))
    store.upsert("stages", points)
    store.finish_writes("stages")
    request = HybridQuery(
        tenant="a",
        limit=12,
        candidates=12,
        dense=_vec(11),
        sparse=SparseVector([1, 2, 1003], [1.0, 0.7, 0.4]),
        part_weight=0.5 if parts else None,
    )
    hybrid = store.query("stages", request)
    dense_alone = store.query("stages", replace(request, sparse=None))
    sparse_alone = store.query("stages", replace(request, dense=None))

    def same(stage: list[ScoredPoint], alone: list[ScoredPoint]) -> None:
        # the same points with the same scores (so the same order, up to equal scores; approx:
        # qdrant-client's local mode computes cosines in float32 or float64 by batch)
        assert [p.score for p in stage] == sorted((p.score for p in stage), reverse=True)
        scores = {p.id: p.score for p in stage}
        assert len(scores) == len(stage) == len(alone)
        assert scores == pytest.approx({p.id: p.score for p in alone}, rel=1e-6)

    assert hybrid.dense and hybrid.sparse
    same(hybrid.dense, dense_alone.final)
    same(hybrid.sparse, sparse_alone.final)
    _assert_weighted_rrf(store, "stages", replace(request, fusion=FusionSettings(method="rrf")))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blend_of_round_one_scores_is_the_formulas_over_the_union(
    store: VectorStore, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant: with exact round-1 scores (rescored, the default), blending them here with
    round 2's scores of what each search missed gives, bit for bit, the dense and final lists
    of a formula request that reruns both searches over the whole union."""
    rng = random.Random(seed)
    _blend_collection(store, rng, count=60, max_parts=4, b_every=3)
    build = QueryPlan.build

    def answer(request: HybridQuery, exact: bool) -> list[list[tuple[str, float]]]:
        monkeypatch.setattr(
            QueryPlan, "build", lambda r, *, scores_exact=False: build(r, scores_exact=exact)
        )
        response = store.query("blend", request)
        return [[(p.id, p.score) for p in stage] for stage in (response.dense, response.final)]

    for _ in range(5):
        request = HybridQuery(
            tenant="a",
            limit=6,
            candidates=rng.randint(3, 12),
            dense=_vec(rng.randrange(10**6)),
            sparse=SparseVector([1, 2], [1.0, 0.5]) if rng.random() < 0.5 else None,
            filters={"source": ["s0", "s1"]} if rng.random() < 0.5 else {},
            part_weight=rng.choice([0.3, 0.5, 0.7]),
        )
        here, formula = answer(request, exact=True), answer(request, exact=False)
        if isinstance(store, EdgeStore):
            assert here == formula
        else:  # qdrant-client's local mode computes the formula in float64, not the server's
            for ours, theirs in zip(here, formula, strict=True):
                assert [i for i, _ in ours] == [i for i, _ in theirs]
                assert [s for _, s in ours] == pytest.approx([s for _, s in theirs], rel=1e-6)


def test_values_are_the_tenants_distinct_spellings(store: VectorStore) -> None:
    """``values``: the distinct values of a keyword field among one tenant's points, list
    fields item by item; another tenant's values never appear."""
    indexes = {**BASE_PAYLOAD_INDEXES, "tags": "keyword", "jurisdiction": "keyword"}
    store.ensure_collection(COLLECTION, DIM, indexes)
    store.upsert(
        COLLECTION,
        [
            _point(0, "a", 0, tags=["Ops", "hr"], jurisdiction="EU"),
            _point(1, "a", 1, tags=["ops"], jurisdiction="US-CA"),
            _point(2, "a", 2, tags=["Ops"]),
            _point(3, "b", 3, tags=["Legal", "OPS"], jurisdiction="eu"),
        ],
    )
    store.finish_writes(COLLECTION)
    assert sorted(store.values(COLLECTION, "a", "tags")) == ["Ops", "hr", "ops"]
    assert sorted(store.values(COLLECTION, "a", "jurisdiction")) == ["EU", "US-CA"]
    assert store.values(COLLECTION, "b", "jurisdiction") == ["eu"]
    assert store.values(COLLECTION, "nobody", "tags") == []
    assert store.values("no-such-collection", "a", "tags") == []
