"""Trying BM25 k1 / b on an indexed eval store without re-indexing it.

k1 and b only enter the document side of Qdrant's BM25 (query terms weigh 1 and IDF is applied
by Qdrant at search time), so a variant needs the stored sparse vectors re-encoded from the
payload text, nothing else: the dense vectors, part vectors and payloads stay. The store records
which (k1, b) its sparse vectors currently carry under ``BM25_MARKER`` (absent: the analyzer of
the domain settings the store was indexed with), so an interrupted sweep is repaired by the next
``retrieval-mcp eval`` or sweep instead of silently scoring the wrong variant.
"""

from __future__ import annotations

import logging
from typing import Any

from retrieval_eval import product
from retrieval_eval.product import Pipeline, SparseEncoder, SparseVector, chunk_keyword_text

logger = logging.getLogger(__name__)

BM25_MARKER = "eval-bm25"
"""Collection meta key: {"k1": .., "b": ..} of the stored sparse vectors, when not the default."""


def stored_variant(pipeline: Pipeline, domain: str) -> tuple[float, float]:
    """(k1, b) the domain's stored sparse vectors were encoded with."""
    _, settings = product.domain_settings(pipeline, domain)
    marker: Any = pipeline.store.read_meta(settings.collection).get(BM25_MARKER)
    if isinstance(marker, dict):
        return float(marker["k1"]), float(marker["b"])
    return settings.bm25.k1, settings.bm25.b


def encode_variant(pipeline: Pipeline, domain: str, k1: float, b: float) -> int:
    """Re-encode every stored sparse vector of the domain's collection with k1 and b.

    The average document length is recomputed from the stored ``bm25_len`` payloads (the
    statistic the pipeline keeps per point), so the vectors equal what indexing with those
    settings would have written. Returns how many points were re-encoded (0 when the store
    already carries this variant).
    """
    name, settings = product.domain_settings(pipeline, domain)
    collection = settings.collection
    if stored_variant(pipeline, domain) == (k1, b):
        return 0
    encoder = SparseEncoder(settings.bm25.model_copy(update={"k1": k1, "b": b}))
    points: list[tuple[str, str, str]] = []
    total_len = 0.0
    offset: str | int | None = None
    while True:
        page, offset = pipeline.store.scroll(collection, None, limit=1024, offset=offset)
        for point in page:
            payload = point.payload
            title, body = str(payload.get("title", "")), str(payload.get("text", ""))
            text = chunk_keyword_text(title, body, payload)
            points.append((point.id, text, str(payload.get("tenant", ""))))
            total_len += float(payload.get("bm25_len", 0))
        if offset is None:
            break
    avg_len = total_len / len(points) if points else 1.0
    for start in range(0, len(points), 512):
        by_tenant: dict[str, list[tuple[str, SparseVector]]] = {}
        for pid, text, tenant in points[start : start + 512]:
            by_tenant.setdefault(tenant, []).append((pid, encoder.encode_document(text, avg_len)))
        for tenant, vectors in by_tenant.items():
            pipeline.store.update_sparse(collection, tenant, vectors)
    pipeline.store.finish_writes(collection)
    default = (settings.bm25.k1, settings.bm25.b)
    marker = None if (k1, b) == default else {"k1": k1, "b": b}
    pipeline.store.adjust_meta(collection, {}, {BM25_MARKER: marker})
    logger.info("%s: BM25 vectors re-encoded with k1=%s b=%s (%d points)", name, k1, b, len(points))
    return len(points)


def restore_default(pipeline: Pipeline, domain: str) -> int:
    """Re-encode back to the domain settings' k1 / b when a variant is stored."""
    _, settings = product.domain_settings(pipeline, domain)
    return encode_variant(pipeline, domain, settings.bm25.k1, settings.bm25.b)
