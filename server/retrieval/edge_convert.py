"""Conversions from the store-independent types to Qdrant Edge's (``qdrant_edge``) request types.

One small function per type; no decision about what to search lives here (that is
query_plan.py). The qdrant-client twin is qdrant_convert.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import qdrant_edge as qe

from server.retrieval import edge_tuning
from server.retrieval import query_plan as qp
from server.retrieval.sparse import SparseVector
from server.retrieval.store_tuning import StoreTuning
from server.retrieval.types import FilterValue

IdsOf = Callable[[frozenset[qp.PointKey]], qe.Filter]
"""Id filter conversion, once per distinct id set in a batch."""


def edge_filter(conditions: Sequence[tuple[str, FilterValue]]) -> qe.Filter | None:
    """Every condition must hold; None (no filter) for no conditions."""
    if not conditions:
        return None
    return qe.Filter(must=[qe.FieldCondition(key=k, match=_match(v)) for k, v in conditions])


def _match(value: FilterValue) -> Any:
    """A list matches any of its values."""
    return qe.MatchAny(value) if isinstance(value, list) else qe.MatchValue(value)


def id_filter(ids: Collection[qp.PointKey]) -> qe.Filter:
    """Only the points with these ids."""
    return qe.Filter(must=[qe.HasIdCondition(set(ids))])


def edge_sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(vector.indices, vector.values)


def search_params(
    params: qp.SearchParams, tuning: StoreTuning | None = None
) -> qe.SearchParams | None:
    """None when nothing is set (Qdrant's defaults). ``tuning``: a dense search's use of the
    quantized vectors (rescoring, oversampling; none for an exact search)."""
    if params.hnsw_ef is None and params.idf_corpus is None and tuning is None:
        return None
    idf = None if params.idf_corpus is None else qe.IdfParams(corpus=edge_filter(params.idf_corpus))
    quantization = (
        None if tuning is None else edge_tuning.quantization_params(tuning, exact=params.exact)
    )
    return qe.SearchParams(
        hnsw_ef=params.hnsw_ef, exact=params.exact, quantization=quantization, idf=idf
    )


def _params(search: qp.NeighbourSearch, tuning: StoreTuning | None) -> qe.SearchParams | None:
    """The search's params; a dense search's with the quantization parameters of ``tuning``."""
    dense = not isinstance(search.vector, SparseVector)
    return search_params(search.params, tuning if dense else None)


def nearest(search: qp.NeighbourSearch) -> Any:
    """The nearest-neighbour query of ``search`` on its named vector."""
    vector = search.vector
    query = edge_sparse(vector) if isinstance(vector, SparseVector) else vector
    return qe.Query.Nearest(query, using=search.using)


def formula(blend: qp.Blend) -> qe.Formula:
    """``sum(weights[i] * $score[i])`` over the blend's inputs."""
    terms = [
        qe.Expression.Mult([qe.Expression.Constant(w), qe.Expression.Variable(f"$score[{i}]")])
        for i, w in enumerate(blend.weights)
    ]
    return qe.Formula(qe.Expression.Sum(terms))


def rerun(
    stage: qp.Rerun, ids_of: IdsOf = id_filter, tuning: StoreTuning | None = None
) -> qe.Prefetch:
    """A rerun as a prefetch: its search under its id filter."""
    return qe.Prefetch(
        limit=stage.limit,
        query=nearest(stage.search),
        filter=ids_of(stage.ids),
        params=_params(stage.search, tuning),
    )


def round_one(
    searches: Sequence[qp.NeighbourSearch], tuning: StoreTuning | None = None
) -> qe.QueryBatchRequest:
    """The neighbour searches as one batch, without payloads (dense ones with the quantization
    parameters of ``tuning``)."""
    filter_of = qp.converted_once(edge_filter)
    return qe.QueryBatchRequest(
        [
            qe.QueryRequest(
                limit=s.limit,
                query=nearest(s),
                filter=filter_of(s.filter),
                params=_params(s, tuning),
                with_payload=False,
                with_vector=False,
            )
            for s in searches
        ]
    )


def round_two(
    requests: Sequence[qp.Request], tuning: StoreTuning | None = None
) -> qe.QueryBatchRequest:
    """Round 2's blends and reruns as one batch, without payloads; filters and id sets they
    share are converted once."""
    filter_of = qp.converted_once(edge_filter)
    ids_of: IdsOf = qp.converted_once(id_filter)
    return qe.QueryBatchRequest(
        [_round_two_request(r, filter_of, ids_of, tuning) for r in requests]
    )


def _round_two_request(
    request: qp.Request,
    filter_of: Callable[[qp.Conditions], qe.Filter | None],
    ids_of: IdsOf,
    tuning: StoreTuning | None,
) -> qe.QueryRequest:
    query = request.query
    if isinstance(query, qp.Rerun):  # its search over its ids, under the payload conditions
        conditions = filter_of(request.filter)
        ids = ids_of(query.ids)
        return qe.QueryRequest(
            limit=query.limit,
            query=nearest(query.search),
            filter=ids if conditions is None else qe.Filter(must=[ids, conditions]),
            params=_params(query.search, tuning),
            with_payload=False,
            with_vector=False,
        )
    return qe.QueryRequest(
        limit=query.limit,
        query=formula(query),
        prefetches=[rerun(s, ids_of, tuning) for s in query.inputs],
        filter=filter_of(request.filter),
        with_payload=False,
        with_vector=False,
    )


def found(points: Sequence[Any]) -> list[tuple[qp.PointKey, float]]:
    """(id, score) pairs of an answer of either round (each id read once: the binding builds
    a UUID per read)."""
    return [(p.id, p.score) for p in points]
