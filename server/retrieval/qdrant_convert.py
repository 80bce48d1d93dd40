"""Conversions from the store-independent types to qdrant-client's ``models``.

One small function per type; no decision about what to search lives here (that is
query_plan.py). The Qdrant Edge twin is edge_convert.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from qdrant_client import models

from server.retrieval import qdrant_tuning
from server.retrieval import query_plan as qp
from server.retrieval.sparse import SparseVector
from server.retrieval.store_tuning import StoreTuning
from server.retrieval.types import FilterValue

IdsOf = Callable[[frozenset[qp.PointKey]], models.Filter]
"""Id filter conversion, once per distinct id set in a batch."""


def client_filter(conditions: Sequence[tuple[str, FilterValue]]) -> models.Filter | None:
    """Every condition must hold; None (no filter) for no conditions."""
    if not conditions:
        return None
    return models.Filter(
        must=[models.FieldCondition(key=k, match=_match(v)) for k, v in conditions]
    )


def _match(value: FilterValue) -> models.MatchAny | models.MatchValue:
    """A list matches any of its values."""
    return models.MatchAny(any=value) if isinstance(value, list) else models.MatchValue(value=value)


def id_filter(ids: Collection[qp.PointKey]) -> models.Filter:
    """Only the points with these ids."""
    # ids from qdrant-client are int or str (a UUID key comes only from qdrant_edge)
    return models.Filter(must=[models.HasIdCondition(has_id=list(ids))])  # type: ignore[arg-type]


def client_sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vector.indices, values=vector.values)


def search_params(
    params: qp.SearchParams, tuning: StoreTuning | None = None
) -> models.SearchParams | None:
    """None when nothing is set (Qdrant's defaults). ``tuning``: a dense search's use of the
    quantized vectors (rescoring, oversampling; none for an exact search)."""
    if params.hnsw_ef is None and params.idf_corpus is None and tuning is None:
        return None
    corpus = None if params.idf_corpus is None else client_filter(params.idf_corpus)
    idf = None if corpus is None else models.IdfCorpusParams(corpus=corpus)
    quantization = (
        None if tuning is None else qdrant_tuning.quantization_params(tuning, exact=params.exact)
    )
    return models.SearchParams(
        hnsw_ef=params.hnsw_ef, exact=params.exact, quantization=quantization, idf=idf
    )


def _params(search: qp.NeighbourSearch, tuning: StoreTuning | None) -> models.SearchParams | None:
    """The search's params; a dense search's with the quantization parameters of ``tuning``."""
    dense = not isinstance(search.vector, SparseVector)
    return search_params(search.params, tuning if dense else None)


def query_vector(vector: qp.QueryVector) -> list[float] | list[list[float]] | models.SparseVector:
    return client_sparse(vector) if isinstance(vector, SparseVector) else vector


def formula(blend: qp.Blend) -> models.FormulaQuery:
    """``sum(weights[i] * $score[i])`` over the blend's inputs."""
    terms: list[models.Expression] = [
        models.MultExpression(mult=[w, f"$score[{i}]"]) for i, w in enumerate(blend.weights)
    ]
    return models.FormulaQuery(formula=models.SumExpression(sum=terms))


def rerun(
    stage: qp.Rerun, ids_of: IdsOf = id_filter, tuning: StoreTuning | None = None
) -> models.Prefetch:
    """A rerun as a prefetch: its search under its id filter."""
    search = stage.search
    return models.Prefetch(
        query=query_vector(search.vector),
        using=search.using,
        filter=ids_of(stage.ids),
        params=_params(search, tuning),
        limit=stage.limit,
    )


def round_one(
    searches: Sequence[qp.NeighbourSearch], tuning: StoreTuning | None = None
) -> list[models.QueryRequest]:
    """The neighbour searches as one batch, without payloads (dense ones with the quantization
    parameters of ``tuning``)."""
    filter_of = qp.converted_once(client_filter)
    return [
        models.QueryRequest(
            query=query_vector(s.vector),
            using=s.using,
            filter=filter_of(s.filter),
            params=_params(s, tuning),
            limit=s.limit,
            with_payload=False,
            with_vector=False,
        )
        for s in searches
    ]


def round_two(
    requests: Sequence[qp.Request], tuning: StoreTuning | None = None
) -> list[models.QueryRequest]:
    """Round 2's blends and reruns as one batch, without payloads; filters and id sets they
    share are converted once."""
    filter_of = qp.converted_once(client_filter)
    ids_of: IdsOf = qp.converted_once(id_filter)
    return [_round_two_request(r, filter_of, ids_of, tuning) for r in requests]


def _round_two_request(
    request: qp.Request,
    filter_of: Callable[[qp.Conditions], models.Filter | None],
    ids_of: IdsOf,
    tuning: StoreTuning | None,
) -> models.QueryRequest:
    query = request.query
    if isinstance(query, qp.Rerun):  # its search over its ids, under the payload conditions
        search, conditions, ids = query.search, filter_of(request.filter), ids_of(query.ids)
        return models.QueryRequest(
            query=query_vector(search.vector),
            using=search.using,
            filter=ids if conditions is None else models.Filter(must=[ids, conditions]),
            params=_params(search, tuning),
            limit=query.limit,
            with_payload=False,
            with_vector=False,
        )
    return models.QueryRequest(
        prefetch=[rerun(s, ids_of, tuning) for s in query.inputs],
        query=formula(query),
        filter=filter_of(request.filter),
        limit=query.limit,
        with_payload=False,
        with_vector=False,
    )


def found(points: Sequence[models.ScoredPoint]) -> list[tuple[qp.PointKey, float]]:
    """(id, score) pairs of an answer of either round."""
    return [(p.id, p.score) for p in points]
