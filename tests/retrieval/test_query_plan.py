"""The hybrid query plan on its own: which searches run, how deep, under which filter, and how
round 1's results become round 2 and the response. No store: the stores' contract suite
(test_store_contract.py) checks that both backends run this plan to identical results."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import InvalidRequestError
from server.retrieval.query_plan import (
    Blend,
    Found,
    Fuse,
    Fusion,
    NeighbourSearch,
    QueryPlan,
    Rerun,
    SearchParams,
    converted_once,
)
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    HybridQuery,
    ScoredPoint,
)
from server.settings import FusionSettings

DENSE = [0.6, 0.8]
SPARSE = SparseVector([3, 9], [1.0, 0.5])
TENANT = (("tenant", "t"),)


def _request(**overrides: object) -> HybridQuery:
    fields: dict[str, object] = {
        "tenant": "t",
        "limit": 4,
        "candidates": 10,
        "dense": DENSE,
        "sparse": SPARSE,
        "fusion": FusionSettings(method="rrf", rrf_k=7, dense_weight=2.0, sparse_weight=0.5),
    }
    fields.update(overrides)
    return HybridQuery(**fields)  # type: ignore[arg-type]


def _found(*names: str) -> list[tuple[str, float]]:
    """Round-1 style (id, score) pairs, best first."""
    return [(name, 1.0 - i / 100) for i, name in enumerate(names)]


def _payloads(ids: list[str]) -> list[ScoredPoint]:
    """A tenant-scoped retrieve: every id but those starting with "other" (another tenant's)."""
    return [ScoredPoint(i, 0.0, {"tenant": "t", "id": i}) for i in ids if not i.startswith("other")]


def _unused(ids: list[str]) -> list[ScoredPoint]:
    raise AssertionError(f"payloads fetched for {ids}, but the fused answer carries them")


# -- round 1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "stages", "fused_sparse"),
    [
        ({"sparse": None}, ["chunk"], False),
        ({"dense": None}, ["sparse"], False),  # nothing to fuse: BM25 alone, in round 1
        ({}, ["chunk"], True),
        ({"sparse": None, "part_weight": 0.3}, ["chunk", "parts"], False),
        ({"part_weight": 0.3}, ["chunk", "parts"], True),
        ({"dense": None, "part_weight": 0.3}, ["sparse"], False),  # no dense vector: no parts
    ],
)
def test_round_one_runs_each_requested_search_once(
    overrides: dict[str, object], stages: list[str], fused_sparse: bool
) -> None:
    """Each search runs once: a fused BM25 search waits for round 2, where the fusion is."""
    plan = QueryPlan.build(_request(**overrides))
    assert [s.stage for s in plan.round_one] == stages
    assert (plan.fused_sparse is not None) == fused_sparse
    named = {s.stage: s for s in plan.round_one}
    if plan.fused_sparse is not None:
        named["sparse"] = plan.fused_sparse
    if "chunk" in named:
        assert (named["chunk"].using, named["chunk"].vector) == (DENSE_VECTOR, DENSE)
    if "parts" in named:  # one query vector, MaxSim against each chunk's part vectors
        assert (named["parts"].using, named["parts"].vector) == (PARTS_VECTOR, [DENSE])
    if "sparse" in named:
        assert (named["sparse"].using, named["sparse"].vector) == (SPARSE_VECTOR, SPARSE)


def test_every_search_is_candidates_deep_under_tenant_and_payload_filters() -> None:
    plan = QueryPlan.build(
        _request(candidates=13, limit=5, part_weight=0.5, filters={"source": ["a", "b"]})
    )
    conditions = (("tenant", "t"), ("source", ["a", "b"]))
    assert plan.filter == conditions
    assert (plan.depth, plan.limit) == (13, 5)
    assert plan.fused_sparse is not None
    searches = [*plan.round_one, plan.fused_sparse]
    assert [(s.limit, s.filter) for s in searches] == [(13, conditions)] * 3


@pytest.mark.parametrize(("hnsw_ef", "beam"), [(None, None), (300, 300), (15, 26)])
def test_dense_searches_take_the_beam_and_bm25_the_tenant_idf(
    hnsw_ef: int | None, beam: int | None
) -> None:
    plan = QueryPlan.build(
        _request(candidates=13, part_weight=0.5, hnsw_ef=hnsw_ef, filters={"source": "a"})
    )
    params = {s.stage: s.params for s in plan.round_one}
    assert params["chunk"] == params["parts"] == SearchParams(hnsw_ef=beam)
    # IDF over the tenant's own points, whatever the payload filters narrow the search to
    assert plan.fused_sparse is not None
    assert plan.fused_sparse.params == SearchParams(idf_corpus=TENANT)


def test_fusion_weights_follow_the_stage_order() -> None:
    assert QueryPlan.build(_request()).fusion == Fusion("rrf", 7, (2.0, 0.5))
    dbsf = QueryPlan.build(_request(fusion=FusionSettings(method="dbsf")))
    assert dbsf.fusion.method == "dbsf"


def test_a_filter_on_tenant_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="tenant"):
        QueryPlan.build(_request(filters={"tenant": "other"}))


# -- round 2 ---------------------------------------------------------------------------------


def test_round_two_blends_the_union_and_fuses_it_with_bm25() -> None:
    plan = QueryPlan.build(_request(candidates=3, limit=4, part_weight=0.25))
    chunk, parts = _found("a", "b", "c"), _found("c", "d", "e")
    second = plan.round_two([chunk, parts])
    blend_request, sparse_request, fuse_request = second.requests
    blend = blend_request.query
    assert isinstance(blend, Blend)
    assert [r.search.stage for r in blend.inputs] == ["chunk", "parts"]
    # both reruns score all five candidates exactly: the union, 2 * depth deep
    assert all(r.ids == frozenset("abcde") and r.limit == 6 for r in blend.inputs)
    assert all(r.search.params.exact for r in blend.inputs)
    assert blend.weights == (0.75, 0.25)
    assert blend.limit == 3
    # no tenant condition: the ids imply it
    assert (blend_request.filter, blend_request.with_payload) == ((), False)

    # BM25 runs here, once as the reported list and once as the fusion's sparse stage: the
    # same search, so the store computes the tenant's IDF once for both (one batch)
    assert sparse_request.query is plan.fused_sparse
    assert (sparse_request.filter, sparse_request.with_payload) == (TENANT, False)
    fuse = fuse_request.query
    assert isinstance(fuse, Fuse)
    # the dense stage is the blend itself, and its reruns share one id set: the same objects,
    # so a backend converts each once per batch (converted_once)
    assert fuse.stages[0] is blend
    assert blend.inputs[0].ids is blend.inputs[1].ids
    assert fuse.stages[1] is plan.fused_sparse
    assert (fuse.limit, fuse.fusion) == (4, plan.fusion)
    assert (fuse_request.filter, fuse_request.with_payload) == ((), True)

    dense_answer = [ScoredPoint("c", 0.9), ScoredPoint("a", 0.8)]
    sparse_answer = [ScoredPoint("e", 1.0), ScoredPoint("f", 0.99)]
    final_answer = [ScoredPoint("e", 0.5, {"tenant": "t"})]
    response = second.response([dense_answer, sparse_answer, final_answer], _unused)
    assert response.dense == dense_answer
    assert response.sparse == sparse_answer
    assert response.final == final_answer


def test_round_two_keeps_payload_filters_and_only_the_tenants_final_points() -> None:
    """Round 2 drops the tenant condition (its ids imply it) but keeps the caller's payload
    conditions; a fused point whose payload names another tenant is never returned."""
    plan = QueryPlan.build(_request(filters={"source": "a"}))
    second = plan.round_two([_found("a", "b")])
    sparse_request, fuse_request = second.requests
    assert sparse_request.filter == (("tenant", "t"), ("source", "a"))
    assert fuse_request.filter == (("source", "a"),)
    final_answer = [
        ScoredPoint("a", 0.9, {"tenant": "t"}),
        ScoredPoint("x", 0.8, {"tenant": "other"}),
        ScoredPoint("b", 0.7, {"tenant": "t"}),
    ]
    response = second.response([[], final_answer], _unused)
    assert [p.id for p in response.final] == ["a", "b"]


def test_without_parts_round_two_fuses_reruns_and_reports_round_one() -> None:
    plan = QueryPlan.build(_request(candidates=3, limit=2))
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, str(i)) for i in range(3)]
    chunk: Found = [(ids[0], 0.9), (ids[1], 0.7)]
    second = plan.round_two([chunk])
    sparse_request, fuse_request = second.requests
    assert sparse_request.query is plan.fused_sparse
    fuse = fuse_request.query
    assert isinstance(fuse, Fuse)
    exact_chunk = replace(plan.round_one[0], params=replace(plan.round_one[0].params, exact=True))
    assert fuse.stages == (Rerun(exact_chunk, frozenset(ids[:2]), 3), plan.fused_sparse)
    final = [ScoredPoint(str(ids[1]), 0.5, {"tenant": "t"})]
    response = second.response([[], final], _unused)  # no BM25 match: an empty sparse list
    # backend ids (here UUIDs, as qdrant_edge returns them) are reported as strings
    assert response.dense == [ScoredPoint(str(ids[0]), 0.9), ScoredPoint(str(ids[1]), 0.7)]
    assert response.sparse == []
    assert response.final == final


@pytest.mark.parametrize("stage", ["dense", "sparse"])
def test_one_stage_needs_no_round_two_and_its_top_is_final(stage: str) -> None:
    plan = QueryPlan.build(_request(limit=3, **{"sparse" if stage == "dense" else "dense": None}))
    found = _found("a", "other-tenant", "b", "c", "d")
    second = plan.round_two([found])
    assert second.requests == ()
    fetched: list[list[str]] = []

    def fetch(ids: list[str]) -> list[ScoredPoint]:
        fetched.append(ids)
        return _payloads(ids)

    response = second.response([], fetch)
    assert fetched == [["a", "other-tenant", "b"]]  # the top `limit`, fetched once
    # a point the tenant-scoped fetch does not return is dropped, never shown without payload
    assert [(p.id, p.score, p.payload["id"]) for p in response.final] == [
        ("a", 1.0, "a"),
        ("b", 0.98, "b"),
    ]
    assert getattr(response, stage) == [ScoredPoint(i, s) for i, s in found]
    assert getattr(response, "sparse" if stage == "dense" else "dense") == []


def test_blended_dense_alone_is_final_from_the_blend_answer() -> None:
    plan = QueryPlan.build(_request(sparse=None, part_weight=0.5, limit=2, candidates=2))
    second = plan.round_two([_found("a", "b"), _found("b", "c")])
    [request] = second.requests
    assert isinstance(request.query, Blend) and not request.with_payload
    blended = [ScoredPoint("c", 0.9), ScoredPoint("b", 0.8), ScoredPoint("a", 0.1)]
    response = second.response([blended], _payloads)
    assert response.dense == blended
    assert [(p.id, p.score) for p in response.final] == [("c", 0.9), ("b", 0.8)]
    assert all(p.payload for p in response.final)


def test_no_hits_fetch_nothing() -> None:
    second = QueryPlan.build(_request(dense=None)).round_two([[]])
    assert second.response([], _unused).final == []


def test_mismatched_lists_are_refused() -> None:
    plan = QueryPlan.build(_request(part_weight=0.5))
    with pytest.raises(ValueError, match="2 searches"):
        plan.round_two([_found("a")])
    with pytest.raises(ValueError, match="round-2 requests"):
        plan.round_two([_found("a"), _found("b")]).response([], _unused)


ids = st.lists(st.sampled_from([f"p{i}" for i in range(30)]), unique=True, max_size=12)


@given(
    depth=st.integers(min_value=1, max_value=12),
    chunk=ids,
    parts=st.none() | ids,
    sparse=st.none() | ids,
)
def test_every_rerun_scores_every_candidate_of_its_stage(
    depth: int, chunk: list[str], parts: list[str] | None, sparse: list[str] | None
) -> None:
    """Invariant: round 2 reruns each stage over exactly the ids round 1 found for it, at
    least as deep as there are ids, so no candidate is dropped or added, and a blend's inputs
    score every candidate (a point missing from one input would have no score to blend)."""
    request = _request(
        candidates=depth,
        part_weight=None if parts is None else 0.5,
        sparse=None if sparse is None else SPARSE,
    )
    found = [chunk[:depth], *([] if parts is None else [parts[:depth]])]
    plan = QueryPlan.build(request)
    second = plan.round_two([_found(*f) for f in found])
    fused = [r.query for r in second.requests if isinstance(r.query, Fuse)]
    assert len(fused) == (sparse is not None)
    dense_stage = fused[0].stages[0] if fused else None
    if parts is not None:
        [blend] = [r.query for r in second.requests if isinstance(r.query, Blend)]
        assert dense_stage == (blend if fused else None)
        union = frozenset(chunk[:depth]) | frozenset(parts[:depth])
        assert all(r.ids == union and r.limit >= len(union) for r in blend.inputs)
        assert blend.limit == depth
    elif dense_stage is not None:
        assert isinstance(dense_stage, Rerun)
        assert (dense_stage.ids, dense_stage.limit) == (frozenset(chunk[:depth]), depth)
    if fused:
        # BM25 is not rerun: the fusion draws on the very search whose list is reported
        [search] = [r.query for r in second.requests if isinstance(r.query, NeighbourSearch)]
        assert fused[0].stages[1] is search is plan.fused_sparse
        assert search.limit == depth


@given(
    depth=st.integers(min_value=1, max_value=12),
    chunk=ids,
    parts=st.none() | ids,
    sparse=st.booleans(),
    filters=st.dictionaries(st.sampled_from(["source", "doc_type"]), st.text(max_size=3)),
)
def test_round_two_reruns_only_round_one_ids_exactly_without_the_tenant_condition(
    depth: int, chunk: list[str], parts: list[str] | None, sparse: bool, filters: dict[str, str]
) -> None:
    """Invariant: every round-2 rerun is an exact scoring of ids round 1 found under the tenant
    filter (so it needs no tenant condition, and none is added: it cost ~0.3 ms per copy); the
    only round-2 search that is not over ids carries the tenant filter and the tenant's IDF."""
    request = _request(
        candidates=depth,
        part_weight=None if parts is None else 0.5,
        sparse=SPARSE if sparse else None,
        filters=filters,
    )
    plan = QueryPlan.build(request)
    found = [chunk[:depth], *([] if parts is None else [parts[:depth]])]
    second = plan.round_two([_found(*f) for f in found])
    seen = frozenset(i for f in found for i in f)

    def reruns(stage: object) -> list[Rerun]:
        if isinstance(stage, Rerun):
            return [stage]
        if isinstance(stage, Blend):
            return list(stage.inputs)
        if isinstance(stage, Fuse):
            return [r for s in stage.stages for r in reruns(s)]
        return []

    payload_conditions = tuple(filters.items())
    for r in second.requests:
        if isinstance(r.query, NeighbourSearch):
            assert r.filter == r.query.filter == (("tenant", "t"), *payload_conditions)
            assert r.query.params.idf_corpus == TENANT
        else:
            assert r.filter == payload_conditions
        for rerun in reruns(r.query):
            assert rerun.ids <= seen and rerun.search.params.exact


def test_filters_convert_once_per_batch() -> None:
    calls: list[object] = []

    def convert(conditions: object) -> str:
        calls.append(conditions)
        return "converted"

    once = converted_once(convert)
    plan = QueryPlan.build(_request(part_weight=0.5))
    assert {once(s.filter) for s in plan.round_one} == {"converted"}
    assert calls == [plan.filter]
    # equal but distinct values convert again: identity, not equality (no hashing of big sets)
    assert once(tuple(list(plan.filter))) == "converted"
    assert len(calls) == 2
