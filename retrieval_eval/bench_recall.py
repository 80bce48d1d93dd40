"""Recall of the approximate search (HNSW over int8 copies, rescored) against exact search.

For each query the store runs the product's hybrid query twice: as the Searcher sends it, and
with ``exact=True`` (brute-force dense searches over the original vectors, no quantization).
Three lists are compared, top 10 against top 10:

- ``chunk``: the chunk-vector nearest neighbours alone (a dense-only query without parts);
- ``dense``: the dense stage as searches use it (chunk and best-part cosines blended);
- ``hybrid``: the fused list (dense stage + BM25), against the same fusion over exact dense.

Recall here is ``|approx top k ∩ exact top k| / k``, averaged over queries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from retrieval_eval.product import HybridQuery, ScoredPoint, SparseEncoder
from server.settings import DomainSettings

TOP_K = 10

QueryRunner = Callable[[HybridQuery], tuple[list[ScoredPoint], list[ScoredPoint]]]
"""Runs a query on the store: (final list, dense list)."""


@dataclass(frozen=True)
class RecallFigures:
    """Mean top-``TOP_K`` recall of each list over ``queries`` queries (0..1)."""

    chunk: float
    dense: float
    hybrid: float
    queries: int


def overlap(approx: Sequence[ScoredPoint], exact: Sequence[ScoredPoint], k: int = TOP_K) -> float:
    """Share of the exact top ``k`` ids found in the approximate top ``k`` (1.0 when the exact
    list is empty)."""
    truth = {p.id for p in exact[:k]}
    if not truth:
        return 1.0
    return len(truth & {p.id for p in approx[:k]}) / len(truth)


def product_query(
    settings: DomainSettings,
    tenant: str,
    dense: list[float],
    sparse_encoder: SparseEncoder,
    text: str,
    *,
    parts: bool,
) -> HybridQuery:
    """The hybrid query the Searcher sends for ``text`` (top ``TOP_K``, no filters)."""
    sparse = sparse_encoder.encode_query(text)
    return HybridQuery(
        tenant=tenant,
        limit=TOP_K,
        candidates=settings.candidates,
        dense=dense,
        sparse=sparse if sparse.indices else None,
        fusion=settings.fusion,
        part_weight=settings.part_weight if parts else None,
        hnsw_ef=settings.hnsw_ef,
    )


def measure_recall(
    run: QueryRunner,
    settings: DomainSettings,
    tenant: str,
    queries: Sequence[tuple[str, list[float]]],
    sparse_encoder: SparseEncoder,
    *,
    parts: bool,
) -> RecallFigures:
    """Recall of each list over ``queries``: (text, dense vector of its normalised text) pairs,
    as the Searcher encodes them."""
    chunk = dense = hybrid = 0.0
    for text, vector in queries:
        request = product_query(settings, tenant, vector, sparse_encoder, text, parts=parts)
        final, dense_list = run(request)
        exact_final, exact_dense = run(replace(request, exact=True))
        hybrid += overlap(final, exact_final)
        dense += overlap(dense_list, exact_dense)
        chunk_only = replace(request, sparse=None, part_weight=None)
        _, chunk_list = run(chunk_only)
        _, exact_chunk = run(replace(chunk_only, exact=True))
        chunk += overlap(chunk_list, exact_chunk)
    n = max(1, len(queries))
    return RecallFigures(chunk / n, dense / n, hybrid / n, len(queries))
