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
the query is being embedded). With part vectors, the dense list blends the chunk and best-part
cosines of the union of both neighbour lists, so every candidate needs both scores. Round 1's
scores are the exact cosines when the store rescores its quantized candidates with the original
vectors (the default; ``scores_exact``): round 2 then scores only what each search did not find
(the chunk cosines of the ids only the part search found, and the other way round), and the
blend is computed here, as Qdrant's formula computes it. Otherwise round 2 reruns both dense
searches over the whole union and a formula request blends them. Either way a rerun is an exact
scoring of ids round 1 found (an id filter, so no graph walk, and no pass over the quantized
copies). The two stage lists are then fused here (score_fusion.py: Qdrant's RRF and
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

import numpy as np

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
    """A top-level round-2 request: the blend or rerun ``query`` under ``filter`` (the payload
    conditions; the ids imply the tenant), without payloads. A rerun's answer is its exact
    scores of its ids."""

    query: Blend | Rerun
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
    blend: LocalBlend | None = None
    """The dense stage blended here (round 1's scores were exact): the dense list is
    ``blend.dense(answers)``."""

    def response(self, answers: Sequence[Found], fetch_payloads: PayloadFetch) -> QueryResponse:
        """The store's answers (one (id, score) list per request, in order, as round 1's) as a
        :class:`QueryResponse`.

        ``fetch_payloads`` is called once, for the final list's ids, when it is not empty.
        Raises ValueError when ``answers`` does not match ``requests``.
        """
        if len(answers) != len(self.requests):
            raise ValueError(f"{len(answers)} answers for {len(self.requests)} round-2 requests")
        if self.blend is not None:
            dense = self.blend.dense(answers)
        elif self.dense_answer is not None:
            dense = list(_listed(answers[self.dense_answer]))
        else:
            dense = list(self.dense)
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
    ``scores_exact``: round 1's dense scores are the exact cosines (the store rescores its
    quantized candidates, keeps no quantized copies, or the request is exact), so round 2
    scores only what each dense search missed.
    """

    limit: int
    depth: int
    filter: Conditions
    round_one: tuple[NeighbourSearch, ...]
    fusion: Fusion
    part_weight: float | None = None
    fused: bool = False
    sparse_found: tuple[ScoredPoint, ...] | None = None
    scores_exact: bool = False

    @classmethod
    def build(cls, request: HybridQuery, *, scores_exact: bool = False) -> QueryPlan:
        """The plan of ``request``. Raises InvalidRequestError for a filter on ``tenant``.

        ``scores_exact``: whether the store's dense searches return exact cosines (it rescores
        its quantized candidates: ``StoreTuning.rescore``); an exact request's always are.

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
            scores_exact=scores_exact or request.exact,
        )

    @property
    def tenant(self) -> str:
        """The tenant every search is scoped to (the first condition, store.filter_conditions)."""
        return str(self.filter[0][1])

    def round_two(self, found: Sequence[Found]) -> RoundTwo:
        """Round 2 from round 1's results (one list per :attr:`round_one` search, in order).

        With part vectors, the dense list is the exact top ``depth`` of the union of both
        neighbour lists by ``(1 - w) * chunk + w * best part``. With :attr:`scores_exact`, each
        search is rerun over the ids only the other one found and the blend is computed in
        :meth:`RoundTwo.response`; otherwise both are rerun over the whole union, each
        ``2 * depth`` deep (the union has at most that many points, so each rerun scores every
        candidate), and blended by one formula request. Without parts, the chunk list is the
        dense list as found, and round 2 is empty.

        Raises ValueError when ``found`` does not match :attr:`round_one`.
        """
        if len(found) != len(self.round_one):
            raise ValueError(f"{len(found)} result lists for {len(self.round_one)} searches")
        searches = {s.stage: s for s in self.round_one}
        results = {s.stage: f for s, f in zip(self.round_one, found, strict=True)}
        requests: list[Request] = []
        dense: tuple[ScoredPoint, ...] = ()
        dense_answer: int | None = None
        local: LocalBlend | None = None
        if "parts" in results and self.scores_exact:
            local = self._local_blend(searches, results, requests)
        elif "parts" in results:
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
            blend=local,
        )

    def _local_blend(
        self,
        searches: Mapping[StageName, NeighbourSearch],
        results: Mapping[StageName, Found],
        requests: list[Request],
    ) -> LocalBlend:
        """The chunk and part scores round 1 found, and a round-2 request (appended to
        ``requests``) per stage that missed some of the union: that stage's exact scores of
        the ids only the other stage found."""
        chunk, parts = dict(results["chunk"]), dict(results["parts"])
        answer: list[int | None] = []
        stages: tuple[tuple[StageName, dict[PointKey, float], dict[PointKey, float]], ...] = (
            ("chunk", chunk, parts),
            ("parts", parts, chunk),
        )
        for stage, known, other in stages:
            missing = frozenset(other.keys() - known.keys())
            if not missing:
                answer.append(None)
                continue
            answer.append(len(requests))
            requests.append(
                Request(_rerun(searches[stage], missing, len(missing)), self.filter[1:])
            )
        weight = self.part_weight or 0.0
        return LocalBlend(
            # chunk list order first: ties keep round 1's order, as a stable sort
            candidates=tuple(chunk) + tuple(k for k in parts if k not in chunk),
            scores=(chunk, parts),
            answers=(answer[0], answer[1]),
            weights=(1.0 - weight, weight),
            limit=self.depth,
        )


@dataclass(frozen=True, slots=True)
class LocalBlend:
    """The dense stage of a part-vector search, blended here from exact scores.

    ``scores``: the chunk and part scores round 1 found (exact cosines), completed by the
    round-2 answers ``answers`` (per stage, the index of the answer scoring what it missed;
    None: it missed nothing). The blend is Qdrant's formula ``sum(weights[i] * score[i])``
    computed as Qdrant computes it (constants as float32, arithmetic in float64, the score as
    float32), so the list is, bit for bit, what a formula request over the union returns; a
    candidate a rerun did not score (deleted between the rounds) is left out, as the formula
    would.
    """

    candidates: tuple[PointKey, ...]
    scores: tuple[dict[PointKey, float], dict[PointKey, float]]
    answers: tuple[int | None, int | None]
    weights: tuple[float, float]
    limit: int

    def dense(self, answers: Sequence[Found]) -> list[ScoredPoint]:
        """The top ``limit`` candidates by the blend, best first (ties in candidate order)."""
        chunk, parts = (
            {**known, **dict(answers[i])} if i is not None else known
            for known, i in zip(self.scores, self.answers, strict=True)
        )
        kept = [k for k in self.candidates if k in chunk and k in parts]
        weights = np.asarray(self.weights, dtype=np.float32).astype(np.float64)
        blended = (
            weights[0] * np.fromiter((chunk[k] for k in kept), np.float64, len(kept))
            + weights[1] * np.fromiter((parts[k] for k in kept), np.float64, len(kept))
        ).astype(np.float32)
        order = np.argsort(-blended, kind="stable")[: self.limit].tolist()
        scores = blended.tolist()
        return [ScoredPoint(str(kept[i]), scores[i], {}) for i in order]


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
