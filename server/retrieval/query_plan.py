"""The hybrid query plan: the round trips of a :class:`HybridQuery`, decided once, as data.

Every store runs the same plan; a backend only converts it to its own request types
(``edge_convert.py`` for Qdrant Edge, ``qdrant_convert.py`` for qdrant-client) and hands the
results back. Which searches run, how deep, under which filter, how the dense stage is blended
and how the two stages are fused is decided here and nowhere else::

    plan = QueryPlan.build(request)          # round 1: plan.round_one
    found = <run plan.round_one>             # one (id, score) list per search, in order
    second = plan.round_two(found)           # round 2: second.requests
    answers = <run second.requests>          # one ScoredPoint list per request, in order
    response = second.response(answers, fetch_payloads)   # fused here; payloads by id

Round 1 runs every neighbour search once, as one batch, over the tenant (and the caller's
payload filters): the chunk-vector nearest neighbours, the part-vector (MaxSim) nearest
neighbours when ``part_weight`` is set, and BM25 with IDF over the tenant's own points (unless
the request brings its BM25 list, ``HybridQuery.sparse_found``: the Searcher runs BM25 while
the query is being embedded). With part vectors, round 2 reruns the two dense searches over the
ids round 1 found only (an id filter, so no graph walk; scored exactly, so no pass over the
quantized copies): a formula blends the chunk and best-part cosines of the union of both
neighbour lists. The two stage lists are then fused here (score_fusion.py: Qdrant's RRF and
DBSF, bit for bit), not in the store: a store fusion request would compute the blend and BM25
a second time, since Qdrant fuses only lists computed in the same request. The final list is
the fused top with payloads fetched by id (tenant-scoped), so it is exactly the fusion of the
dense and sparse lists the response reports (the store contract suite checks it). With one
stage there is nothing to fuse: its top is the final list.

Round 2 needs no tenant condition of its own: its reruns are over ids round 1 found under the
tenant filter, and a point id is derived from its tenant (``store.point_id``), so no id names
another tenant's point. The payloads of the final list are fetched for the tenant only, so a
point of another tenant could never be shown (:meth:`RoundTwo.response`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from server.retrieval.score_fusion import Fusion as Fusion  # the plan's fusion, re-exported
from server.retrieval.score_fusion import fuse
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    HybridQuery,
    QueryResponse,
    ScoredPoint,
    filter_conditions,
)
from server.retrieval.types import FilterValue

Conditions = tuple[tuple[str, FilterValue], ...]
"""Filter conditions, all of which must hold (store.filter_conditions: the tenant first)."""

PointKey = int | str | uuid.UUID
"""A point id as the backend returned it (qdrant_edge: ``uuid.UUID``, qdrant-client: ``str``).

Round 2 hands it back to the same backend unconverted (qdrant_edge builds a UUID object per id
read, so reading and converting each id once matters at a few hundred candidates); the reported
lists carry ``str(id)``.
"""

Found = Sequence[tuple[PointKey, float]]
"""One round-1 result: (point id, score) pairs, best first."""

StageName = Literal["chunk", "parts", "sparse"]
QueryVector = list[float] | list[list[float]] | SparseVector
"""A dense vector, a multivector (one vector, MaxSim against the part vectors) or BM25 terms."""

K = TypeVar("K")
T = TypeVar("T")

PayloadFetch = Callable[[list[str]], Sequence[ScoredPoint]]
"""Points (with payloads) by id, only the tenant's: ``VectorStore.retrieve`` for one tenant."""


@dataclass(frozen=True, slots=True)
class SearchParams:
    """Per-search parameters: the HNSW beam of a dense search, the IDF corpus of BM25.

    ``hnsw_ef``: None leaves Qdrant's default (max(ef_construct, limit)).
    ``idf_corpus``: None is IDF over the whole collection; the plan always sets the tenant.
    ``exact``: a dense search by brute force over the original vectors (no graph, no quantized
    copies): the reference an approximate search is measured against, and how round 2 scores
    the few ids it reruns (the same cosines a rescored quantized search returns, without first
    scoring the int8 copies).
    """

    hnsw_ef: int | None = None
    idf_corpus: Conditions | None = None
    exact: bool = False


@dataclass(frozen=True, slots=True)
class NeighbourSearch:
    """One round-1 search: the ``limit`` nearest points to ``vector`` on the named vector
    ``using``, among the points matching ``filter``. Payloads are never read in round 1."""

    stage: StageName
    using: str
    vector: QueryVector
    limit: int
    filter: Conditions
    params: SearchParams


@dataclass(frozen=True, slots=True)
class Rerun:
    """A round-1 search rerun over ``ids`` only (its vector, named vector and params).

    Its own filter is the id condition alone: the payload conditions sit at the top of the
    round-2 request (Qdrant applies a request's filter inside every prefetch), and the ids imply
    the tenant (module docstring; a tenant condition here cost ~0.3 ms at 100k chunks).
    """

    search: NeighbourSearch
    ids: frozenset[PointKey]
    limit: int


@dataclass(frozen=True, slots=True)
class Blend:
    """A weighted sum of the inputs' scores: ``sum(weights[i] * $score[i])``, top ``limit``.

    ``$score[i]`` is the point's score in ``inputs[i]``; every input must score every candidate
    (a point missing from one input has no score to blend), which the plan guarantees by
    rerunning each input over the same ids, as deep as there are ids.
    """

    inputs: tuple[Rerun, ...]
    weights: tuple[float, ...]
    limit: int


@dataclass(frozen=True, slots=True)
class Request:
    """A top-level round-2 request: the blend ``query`` under ``filter`` (the payload
    conditions; the ids imply the tenant), without payloads."""

    query: Blend
    filter: Conditions


@dataclass(frozen=True, slots=True)
class RoundTwo:
    """Round 2, built from round 1's results, and how its answers become the response.

    ``requests`` run as one batch. The dense list is answer ``dense_answer`` when the stage is
    a blend, else round 1's chunk list (``dense``); the sparse list is round 1's, or the one
    the request brought (``sparse``). With ``fusion`` (both stages ran), ``final`` is the top
    ``limit`` of the fusion of the two lists (score_fusion.py); with one stage, the top
    ``limit`` of its list; either way with payloads fetched by id for ``tenant`` only.
    """

    requests: tuple[Request, ...]
    limit: int
    tenant: str = ""
    dense: tuple[ScoredPoint, ...] = ()
    sparse: tuple[ScoredPoint, ...] = ()
    dense_answer: int | None = None
    fusion: Fusion | None = None

    def response(
        self, answers: Sequence[Sequence[ScoredPoint]], fetch_payloads: PayloadFetch
    ) -> QueryResponse:
        """The store's answers (one list per request, in order) as a :class:`QueryResponse`.

        ``fetch_payloads`` is called once, for the final list's ids, when it is not empty.
        Raises ValueError when ``answers`` does not match ``requests``.
        """
        if len(answers) != len(self.requests):
            raise ValueError(f"{len(answers)} answers for {len(self.requests)} round-2 requests")
        dense = list(self.dense if self.dense_answer is None else answers[self.dense_answer])
        sparse = list(self.sparse)
        if self.fusion is not None:
            top = fuse(dense, sparse, self.fusion, self.limit)
        else:
            top = (dense or sparse)[: self.limit]  # one stage ran: the other list is empty
        final = with_payloads(top, fetch_payloads([p.id for p in top])) if top else []
        return QueryResponse(final=final, dense=dense, sparse=sparse)


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """Both rounds of one tenant-scoped :class:`HybridQuery`; build with :meth:`build`.

    ``round_one``: the neighbour searches that run first, as one batch, in this order;
    ``sparse_found``: the BM25 list the request brought (its search is then not in round 1).
    ``fused``: whether a dense and a sparse stage both run (their lists are fused). ``depth`` is
    every stage's candidate depth (the request's ``candidates``); ``limit`` the length of the
    final list; ``filter`` the tenant and payload conditions every neighbour search runs under.
    """

    limit: int
    depth: int
    filter: Conditions
    round_one: tuple[NeighbourSearch, ...]
    fusion: Fusion
    part_weight: float | None = None
    fused: bool = False
    sparse_found: tuple[ScoredPoint, ...] | None = None

    @classmethod
    def build(cls, request: HybridQuery) -> QueryPlan:
        """The plan of ``request``. Raises InvalidRequestError for a filter on ``tenant``.

        Every search goes ``candidates`` deep, so each reported stage list is exactly what the
        fusion draws on. The dense searches use the request's ``dense_beam`` (its ``hnsw_ef``,
        at least twice the depth); BM25 takes its IDF over the tenant's own points, so other
        tenants' texts never shift a tenant's scores. The part-vector search runs only with
        ``part_weight`` (a domain whose collection has part vectors): the query vector is the
        one vector of a multivector query, MaxSim against each chunk's part vectors.
        """
        conditions = tuple(filter_conditions(request.tenant, request.filters))
        depth = request.candidates
        searches = list(_dense_searches(request, conditions))
        if request.sparse is not None and request.sparse_found is None:
            idf = SearchParams(idf_corpus=tuple(filter_conditions(request.tenant, None)))
            searches.append(
                NeighbourSearch("sparse", SPARSE_VECTOR, request.sparse, depth, conditions, idf)
            )
        fusion = request.fusion
        return cls(
            limit=request.limit,
            depth=depth,
            filter=conditions,
            round_one=tuple(searches),
            fusion=Fusion(fusion.method, fusion.rrf_k, (fusion.dense_weight, fusion.sparse_weight)),
            part_weight=request.part_weight,
            fused=request.dense is not None and request.sparse is not None,
            sparse_found=None if request.sparse is None else request.sparse_found,
        )

    @property
    def tenant(self) -> str:
        """The tenant every search is scoped to (the first condition, store.filter_conditions)."""
        return str(self.filter[0][1])

    def round_two(self, found: Sequence[Found]) -> RoundTwo:
        """Round 2 from round 1's results (one list per :attr:`round_one` search, in order).

        With part vectors, the chunk and part searches are rerun over the union of both
        neighbour lists, each ``2 * depth`` deep (the union has at most that many points, so
        each rerun scores every candidate) and blended ``(1 - w) * chunk + w * best part``,
        ``depth`` deep: the dense list is the exact top of the union by the blend, computed
        once. Without parts, the chunk list is the dense list as found, and round 2 is empty.

        Raises ValueError when ``found`` does not match :attr:`round_one`.
        """
        if len(found) != len(self.round_one):
            raise ValueError(f"{len(found)} result lists for {len(self.round_one)} searches")
        searches = {s.stage: s for s in self.round_one}
        results = {s.stage: f for s, f in zip(self.round_one, found, strict=True)}
        requests: list[Request] = []
        dense: tuple[ScoredPoint, ...] = ()
        dense_answer: int | None = None
        if "parts" in results:
            union = _ids(results["chunk"]) | _ids(results["parts"])
            weight = self.part_weight or 0.0
            blend = Blend(
                inputs=(
                    _rerun(searches["chunk"], union, 2 * self.depth),
                    _rerun(searches["parts"], union, 2 * self.depth),
                ),
                weights=(1.0 - weight, weight),
                limit=self.depth,
            )
            dense_answer = len(requests)
            requests.append(Request(blend, self.filter[1:]))  # the ids imply the tenant
        elif "chunk" in results:
            dense = _listed(results["chunk"])
        if self.sparse_found is not None:
            sparse = self.sparse_found
        else:
            sparse = _listed(results["sparse"]) if "sparse" in results else ()
        return RoundTwo(
            requests=tuple(requests),
            limit=self.limit,
            tenant=self.tenant,
            dense=dense,
            sparse=sparse,
            dense_answer=dense_answer,
            fusion=self.fusion if self.fused else None,
        )


def _dense_searches(request: HybridQuery, conditions: Conditions) -> list[NeighbourSearch]:
    """The chunk-vector search and, with ``part_weight``, the part-vector (MaxSim) search."""
    if request.dense is None:
        return []
    params = SearchParams(hnsw_ef=request.dense_beam, exact=request.exact)
    depth = request.candidates
    searches = [NeighbourSearch("chunk", DENSE_VECTOR, request.dense, depth, conditions, params)]
    if request.part_weight is not None:
        searches.append(
            NeighbourSearch("parts", PARTS_VECTOR, [request.dense], depth, conditions, params)
        )
    return searches


def _rerun(search: NeighbourSearch, ids: frozenset[PointKey], limit: int) -> Rerun:
    """``search`` over ``ids`` only, scored exactly: a filter this narrow is scored point by
    point, and the exact cosines are what a rescored quantized search would return, without
    the int8 pass before them."""
    return Rerun(replace(search, params=replace(search.params, exact=True)), ids, limit)


def with_payloads(top: Sequence[ScoredPoint], found: Sequence[ScoredPoint]) -> list[ScoredPoint]:
    """``top`` in order, each with its payload from ``found``; points not found are dropped
    (``found`` holds only the tenant's points, so another tenant's id can never slip through)."""
    payloads = {p.id: p.payload for p in found}
    return [ScoredPoint(p.id, p.score, payloads[p.id]) for p in top if p.id in payloads]


def _ids(found: Found) -> frozenset[PointKey]:
    return frozenset(i for i, _ in found)


def _listed(found: Found) -> tuple[ScoredPoint, ...]:
    return tuple(ScoredPoint(str(i), float(score), {}) for i, score in found)


def converted_once(convert: Callable[[K], T]) -> Callable[[K], T]:
    """``convert`` memoised by the identity of its argument, for one batch conversion.

    A plan shares one conditions tuple among all its searches and requests, and one id set
    between the two reruns of a blend (which round 2 sends twice: as a request and as the
    fusion's dense stage), so a backend converts each once per batch. An id filter is the
    costly one: qdrant_edge takes ~0.5 ms to convert 200 UUIDs.
    """
    done: dict[int, tuple[K, T]] = {}

    def converted(value: K) -> T:
        hit = done.get(id(value))
        if hit is None:  # each value is kept alive in ``done``, so no other object takes its id
            hit = done[id(value)] = (value, convert(value))
        return hit[1]

    return converted
