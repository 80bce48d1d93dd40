"""The hybrid query plan on its own: which searches run, how deep, under which filter, and how
round 1's results become round 2 and the response. No store: the stores' contract suite
(test_store_contract.py) checks that both backends run this plan to identical results."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import InvalidRequestError
from server.retrieval.query_plan import (
    Blend,
    Found,
    Fusion,
    QueryPlan,
    Rerun,
    SearchParams,
    converted_once,
)
from server.retrieval.score_fusion import fuse
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
    raise AssertionError(f"payloads fetched for {ids}, but there is nothing to show")


# -- round 1 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "stages", "fused"),
    [
        ({"sparse": None}, ["chunk"], False),
        ({"dense": None}, ["sparse"], False),
        ({}, ["chunk", "sparse"], True),
        ({"sparse": None, "part_weight": 0.3}, ["chunk", "parts"], False),
        ({"part_weight": 0.3}, ["chunk", "parts", "sparse"], True),
        ({"dense": None, "part_weight": 0.3}, ["sparse"], False),  # no dense vector: no parts
        # the request brings its BM25 list: BM25 is not searched again
        ({"sparse_found": (ScoredPoint("a", 1.0),)}, ["chunk"], True),
        ({"dense": None, "sparse_found": ()}, [], False),
    ],
)
def test_round_one_runs_each_requested_search_once(
    overrides: dict[str, object], stages: list[str], fused: bool
) -> None:
    """Every neighbour search runs once, all in round 1 (the fusion is computed here, so BM25
    need not run next to it)."""
    plan = QueryPlan.build(_request(**overrides))
    assert [s.stage for s in plan.round_one] == stages
    assert plan.fused == fused
    named = {s.stage: s for s in plan.round_one}
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
    assert [(s.limit, s.filter) for s in plan.round_one] == [(13, conditions)] * 3


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
    assert params["sparse"] == SearchParams(idf_corpus=TENANT)


def test_fusion_weights_follow_the_stage_order() -> None:
    assert QueryPlan.build(_request()).fusion == Fusion("rrf", 7, (2.0, 0.5))
    dbsf = QueryPlan.build(_request(fusion=FusionSettings(method="dbsf")))
    assert dbsf.fusion.method == "dbsf"


def test_a_filter_on_tenant_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="tenant"):
        QueryPlan.build(_request(filters={"tenant": "other"}))


# -- round 2 ---------------------------------------------------------------------------------


def test_round_two_blends_the_union_once_and_fuses_it_with_bm25_here() -> None:
    plan = QueryPlan.build(_request(candidates=3, limit=4, part_weight=0.25))
    chunk, parts, bm25 = _found("a", "b", "c"), _found("c", "d", "e"), _found("e", "f")
    second = plan.round_two([chunk, parts, bm25])
    [blend_request] = second.requests  # the blend alone: no fusion request computes it again
    blend = blend_request.query
    assert isinstance(blend, Blend)
    assert [r.search.stage for r in blend.inputs] == ["chunk", "parts"]
    # both reruns score all five candidates exactly: the union, 2 * depth deep, one id set
    assert all(r.ids == frozenset("abcde") and r.limit == 6 for r in blend.inputs)
    assert blend.inputs[0].ids is blend.inputs[1].ids
    assert all(r.search.params.exact for r in blend.inputs)
    assert blend.weights == (0.75, 0.25)
    assert blend.limit == 3
    assert blend_request.filter == ()  # no tenant condition: the ids imply it

    dense_answer = [("c", 0.9), ("a", 0.8)]  # the store's (id, score) answer
    fetched: list[list[str]] = []

    def fetch(ids: list[str]) -> list[ScoredPoint]:
        fetched.append(ids)
        return _payloads(ids)

    response = second.response([dense_answer], fetch)
    assert response.dense == [ScoredPoint("c", 0.9), ScoredPoint("a", 0.8)]
    assert response.sparse == [ScoredPoint("e", 1.0), ScoredPoint("f", 0.99)]
    # weighted RRF (k 7, weights 2 and 0.5) of exactly the reported lists, payloads fetched once
    expected = fuse(response.dense, response.sparse, plan.fusion, 4)
    assert [(p.id, p.score) for p in response.final] == [(p.id, p.score) for p in expected]
    assert [p.id for p in expected] == ["c", "a", "e", "f"]
    assert fetched == [["c", "a", "e", "f"]]
    assert all(p.payload["tenant"] == "t" for p in response.final)


def test_round_two_keeps_payload_filters_and_only_the_tenants_final_points() -> None:
    """Round 2 drops the tenant condition (its ids imply it) but keeps the caller's payload
    conditions; a fused point the tenant-scoped fetch does not return is never shown."""
    plan = QueryPlan.build(_request(filters={"source": "a"}, part_weight=0.5))
    second = plan.round_two([_found("a", "b"), _found("b"), _found("other-x", "b")])
    [blend_request] = second.requests
    assert blend_request.filter == (("source", "a"),)
    response = second.response([[("a", 0.9), ("b", 0.7)]], _payloads)
    assert {p.id for p in response.final} == {"a", "b"}


def test_without_parts_round_two_is_empty_and_fuses_round_ones_lists() -> None:
    plan = QueryPlan.build(_request(candidates=3, limit=2))
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, str(i)) for i in range(3)]
    chunk: Found = [(ids[0], 0.9), (ids[1], 0.7)]
    second = plan.round_two([chunk, []])  # no BM25 match: an empty sparse list
    assert second.requests == ()
    response = second.response([], _payloads)
    # backend ids (here UUIDs, as qdrant_edge returns them) are reported as strings
    assert response.dense == [ScoredPoint(str(ids[0]), 0.9), ScoredPoint(str(ids[1]), 0.7)]
    assert response.sparse == []
    # still fused (an empty list fuses to the dense list's RRF scores), as the store would
    assert [(p.id, p.score) for p in response.final] == [
        (str(ids[0]), pytest.approx(1 / (1 / 2 + 6))),
        (str(ids[1]), pytest.approx(1 / (2 / 2 + 6))),
    ]


def test_a_brought_bm25_list_is_reported_and_fused_as_if_searched() -> None:
    """Invariant: a request that brings its BM25 list (``sparse_found``) gets the response of
    one that searched it, from round 1 without the BM25 search."""
    searched = QueryPlan.build(_request(part_weight=0.5))
    bm25 = _found("e", "a")
    brought = QueryPlan.build(_request(part_weight=0.5, sparse_found=tuple(_listed(bm25))))
    assert [s.stage for s in brought.round_one] == ["chunk", "parts"]
    dense_answer = [("a", 0.9), ("c", 0.8)]
    one = searched.round_two([_found("a"), _found("c"), bm25]).response([dense_answer], _payloads)
    two = brought.round_two([_found("a"), _found("c")]).response([dense_answer], _payloads)
    assert one == two


def test_sparse_found_needs_the_sparse_vector() -> None:
    with pytest.raises(InvalidRequestError, match="sparse_found"):
        _request(sparse=None, sparse_found=())


def _listed(found: list[tuple[str, float]]) -> list[ScoredPoint]:
    return [ScoredPoint(i, s) for i, s in found]


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
    assert isinstance(request.query, Blend)
    blended = [("c", 0.9), ("b", 0.8), ("a", 0.1)]
    response = second.response([blended], _payloads)
    assert response.dense == [ScoredPoint(i, score) for i, score in blended]
    assert [(p.id, p.score) for p in response.final] == [("c", 0.9), ("b", 0.8)]
    assert all(p.payload for p in response.final)


def test_no_hits_fetch_nothing() -> None:
    second = QueryPlan.build(_request(dense=None)).round_two([[]])
    assert second.response([], _unused).final == []


def test_mismatched_lists_are_refused() -> None:
    plan = QueryPlan.build(_request(part_weight=0.5))
    with pytest.raises(ValueError, match="3 searches"):
        plan.round_two([_found("a")])
    with pytest.raises(ValueError, match="round-2 requests"):
        plan.round_two([_found("a"), _found("b"), []]).response([], _unused)


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
    """Invariant: round 2 reruns each dense stage over exactly the ids round 1 found for it,
    at least as deep as there are ids, so no candidate is dropped or added, and a blend's inputs
    score every candidate (a point missing from one input would have no score to blend); no
    other search runs twice."""
    request = _request(
        candidates=depth,
        part_weight=None if parts is None else 0.5,
        sparse=None if sparse is None else SPARSE,
    )
    found = [chunk[:depth], *([] if parts is None else [parts[:depth]])]
    found += [] if sparse is None else [sparse[:depth]]
    plan = QueryPlan.build(request)
    second = plan.round_two([_found(*f) for f in found])
    assert plan.fused == (sparse is not None)
    if parts is None:
        assert second.requests == ()  # round 1's chunk list is the dense list
        return
    [request_two] = second.requests
    blend = request_two.query
    union = frozenset(chunk[:depth]) | frozenset(parts[:depth])
    assert all(r.ids == union and r.limit >= len(union) for r in blend.inputs)
    assert blend.limit == depth


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
    request keeps the caller's payload conditions."""
    request = _request(
        candidates=depth,
        part_weight=None if parts is None else 0.5,
        sparse=SPARSE if sparse else None,
        filters=filters,
    )
    plan = QueryPlan.build(request)
    found = [chunk[:depth], *([] if parts is None else [parts[:depth]])]
    seen = frozenset(i for f in found for i in f)
    found += [["s1", "s2"]] if sparse else []
    second = plan.round_two([_found(*f) for f in found])
    for r in second.requests:
        assert r.filter == tuple(filters.items())
        for rerun in r.query.inputs:
            assert isinstance(rerun, Rerun)
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


# -- round 2 with exact round-1 scores (rescored quantized searches: the default) ------------


scores = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False, width=32)


@given(
    depth=st.integers(min_value=1, max_value=10),
    chunk_scores=st.dictionaries(st.sampled_from([f"p{i}" for i in range(25)]), scores),
    part_scores=st.dictionaries(st.sampled_from([f"p{i}" for i in range(25)]), scores),
    weight=st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    sparse=st.booleans(),
    gone=st.sets(st.sampled_from([f"p{i}" for i in range(25)]), max_size=3),
)
def test_exact_round_one_scores_are_blended_here_with_only_the_missing_ones_rerun(
    depth: int,
    chunk_scores: dict[str, float],
    part_scores: dict[str, float],
    weight: float,
    sparse: bool,
    gone: set[str],
) -> None:
    """Invariant: with exact round-1 scores, round 2 reruns each dense search over exactly the
    ids only the other one found (exact, without the tenant condition), and the dense list is
    the top ``depth`` of the union by Qdrant's formula arithmetic (float32 weights, float64
    sum, float32 score), best first; a candidate a rerun no longer finds (deleted between the
    rounds) is left out."""
    ids = sorted(chunk_scores.keys() & part_scores.keys())  # the tenant's points, both scores
    chunk_found = sorted(ids, key=lambda i: -chunk_scores[i])[:depth]
    part_found = sorted(ids, key=lambda i: -part_scores[i])[:depth]
    plan = QueryPlan.build(
        _request(
            candidates=depth,
            part_weight=weight,
            sparse=SPARSE if sparse else None,
            filters={"source": "s"},
        ),
        scores_exact=True,
    )
    found: list[Found] = [
        [(i, chunk_scores[i]) for i in chunk_found],
        [(i, part_scores[i]) for i in part_found],
    ]
    second = plan.round_two([*found, *([_found("s1")] if sparse else [])])
    missing = {
        "chunk": set(part_found) - set(chunk_found),
        "parts": set(chunk_found) - set(part_found),
    }
    answers: list[Found] = []
    for request in second.requests:
        rerun = request.query
        assert isinstance(rerun, Rerun) and rerun.search.params.exact
        assert request.filter == (("source", "s"),)
        assert set(rerun.ids) == missing[rerun.search.stage] and rerun.limit == len(rerun.ids)
        stage_scores = chunk_scores if rerun.search.stage == "chunk" else part_scores
        answers.append([(i, stage_scores[i]) for i in sorted(rerun.ids) if i not in gone])
    assert len(second.requests) == sum(bool(m) for m in missing.values())
    response = second.response(answers, _payloads)

    def formula(i: str) -> float:
        w = np.asarray([1.0 - weight, weight], dtype=np.float32).astype(np.float64)
        return float(np.float32(w[0] * chunk_scores[i] + w[1] * part_scores[i]))

    union = set(chunk_found) | set(part_found)
    kept = [i for i in union if not (i in gone and i not in set(chunk_found) & set(part_found))]
    expected = sorted((formula(i) for i in kept), reverse=True)[:depth]
    assert [p.score for p in response.dense] == expected
    assert {p.id for p in response.dense} <= set(kept)
