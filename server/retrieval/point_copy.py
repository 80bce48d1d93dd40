"""Points with their stored vectors, read from either store, for copying and comparing.

A copy moves what a store holds, never re-embeds: the dense vector, the BM25 sparse vector, the
part multivector (when the collection has one) and the payload, read in id order. Both stores
hand back vectors already normalised for cosine, so a faithful copy reads back the same floats.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import qdrant_edge as qe
from qdrant_client import models

from server.errors import StoreError
from server.retrieval import term_space
from server.retrieval.edge_store import EdgeStore
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    TENANT_FIELD,
    IndexKind,
    StoredPoint,
)

LOCAL_MODE_TOLERANCE = 1e-6
"""Largest difference allowed between chunk-vector components when the target is qdrant-client's
local mode: it normalises every vector it receives once more (a Qdrant server keeps a vector whose
squared length is within 1e-6 of 1 as it is, so there the copy must be bit for bit)."""
PARTS_TOLERANCE = 2.0**-10
"""Largest difference allowed between a part vector's components in the two stores: part vectors
are stored as float16, and the target normalises the float16 values it receives once more before
rounding them to float16 again (about one float16 step near 1.0; chunk vectors compare exactly)."""
FACET_LIMIT = 1_000_000
"""Most tenants counted per collection."""


@dataclass(frozen=True)
class Layout:
    """What a collection needs to exist as in the target."""

    dense_dim: int
    part_vectors: bool
    payload_indexes: dict[str, IndexKind]


def edge_layout(store: EdgeStore, name: str) -> Layout:
    """The dense size, part vectors and payload indexes of an embedded collection."""
    config = json.loads((store.root / name / "edge_config.json").read_text())
    vectors = config.get("vectors") or {}
    indexes: dict[str, IndexKind] = {}
    for field, info in store.shard(name).info().payload_schema.items():
        indexes[field] = _index_kind(field, info)
    return Layout(int(vectors[DENSE_VECTOR]["size"]), PARTS_VECTOR in vectors, indexes)


def _index_kind(field: str, info: Any) -> IndexKind:
    if info.data_type == qe.PayloadSchemaType.Integer:
        return "integer"
    if info.data_type != qe.PayloadSchemaType.Keyword:
        raise StoreError(f"payload index {field!r} has a type migrate does not copy")
    return "tenant" if getattr(info.params, "is_tenant", False) else "keyword"


def _stored(point_id: Any, vector: Any, payload: Any) -> StoredPoint:
    vectors = vector or {}
    sparse = vectors.get(SPARSE_VECTOR)
    parts = vectors.get(PARTS_VECTOR)
    return StoredPoint(
        id=str(point_id),
        dense=list(vectors.get(DENSE_VECTOR) or []),
        sparse=SparseVector(
            list(sparse.indices) if sparse else [], list(sparse.values) if sparse else []
        ),
        payload=dict(payload or {}),
        parts=[list(p) for p in parts] if parts else None,
    )


def edge_page(
    store: EdgeStore, name: str, offset: str | None, limit: int
) -> tuple[list[StoredPoint], str | None]:
    """Up to ``limit`` points from ``offset`` (inclusive) in id order, as written (the BM25
    vectors out of the collection's term space), and the next offset."""
    records, next_offset = store.shard(name).scroll(
        qe.ScrollRequest(offset=offset, limit=limit, with_payload=True, with_vector=True)
    )
    points = [_stored(r.id, r.vector, r.payload) for r in records]
    # the BM25 vectors as written, out of the tenants' term spaces (XOR undoes itself): the
    # target's upsert moves them into its own, which prepare_collection made the same
    written = list(term_space.stored_points(points, store.bm25_term_space(name)))
    return written, None if next_offset is None else str(next_offset)


def edge_ids(
    store: EdgeStore, name: str, offset: str | None, limit: int
) -> tuple[list[str], str | None]:
    """Up to ``limit`` point ids from ``offset`` (inclusive) in id order, and the next offset."""
    records, next_offset = store.shard(name).scroll(
        qe.ScrollRequest(offset=offset, limit=limit, with_payload=False, with_vector=False)
    )
    return [str(r.id) for r in records], None if next_offset is None else str(next_offset)


def edge_points(store: EdgeStore, name: str, ids: Sequence[str]) -> dict[str, StoredPoint]:
    records = store.shard(name).retrieve(list(ids), with_payload=True, with_vector=True)
    return {str(r.id): _stored(r.id, r.vector, r.payload) for r in records}


def target_points(store: QdrantStore, name: str, ids: Sequence[str]) -> dict[str, StoredPoint]:
    records = store.client.retrieve(name, ids=list(ids), with_payload=True, with_vectors=True)
    return {str(r.id): _stored(r.id, r.vector, r.payload) for r in records}


def edge_tenant_counts(store: EdgeStore, name: str) -> dict[str, int]:
    """Points per tenant (exact)."""
    response = store.shard(name).facet(qe.FacetRequest(TENANT_FIELD, limit=FACET_LIMIT, exact=True))
    return {str(hit.value): int(hit.count) for hit in response.hits}


def target_tenant_counts(store: QdrantStore, name: str) -> dict[str, int]:
    """Points per tenant (exact)."""
    response = store.client.facet(name, TENANT_FIELD, limit=FACET_LIMIT, exact=True)
    return {str(hit.value): int(hit.count) for hit in response.hits}


def target_layout(store: QdrantStore, name: str) -> Layout:
    """The dense size, part vectors and payload indexes of a target collection."""
    info = store.client.get_collection(name)
    vectors = info.config.params.vectors
    dense = vectors.get(DENSE_VECTOR) if isinstance(vectors, dict) else None
    indexes: dict[str, IndexKind] = {}
    for field, schema in (info.payload_schema or {}).items():
        params = schema.params
        is_tenant = isinstance(params, models.KeywordIndexParams) and bool(params.is_tenant)
        kind = schema.data_type == models.PayloadSchemaType.INTEGER
        indexes[field] = "tenant" if is_tenant else "integer" if kind else "keyword"
    size = dense.size if isinstance(dense, models.VectorParams) else 0
    return Layout(size, isinstance(vectors, dict) and PARTS_VECTOR in vectors, indexes)


def point_difference(
    source: StoredPoint, target: StoredPoint, dense_tolerance: float = 0.0
) -> str | None:
    """What differs between a point and its copy (None when the copy is faithful).

    Sparse vectors and payloads must be equal bit for bit (float32 bytes, JSON values); chunk
    vectors too unless ``dense_tolerance`` allows a difference per component
    (:data:`LOCAL_MODE_TOLERANCE`); part vectors within :data:`PARTS_TOLERANCE`.
    """
    a, b = _f32(source.dense), _f32(target.dense)
    if a.shape != b.shape:
        return f"its dense vector differs in size ({a.size} vs {b.size})"
    if dense_tolerance == 0.0 and a.tobytes() != b.tobytes():
        return "its dense vector differs"
    if a.size and float(np.abs(a - b).max()) > dense_tolerance:
        return f"its dense vector differs (by up to {float(np.abs(a - b).max()):.3g})"
    if sorted(zip(source.sparse.indices, _f32(source.sparse.values).tolist(), strict=True)) != (
        sorted(zip(target.sparse.indices, _f32(target.sparse.values).tolist(), strict=True))
    ):
        return "its BM25 vector differs"
    if source.payload != target.payload:
        keys = sorted(
            k
            for k in set(source.payload) | set(target.payload)
            if source.payload.get(k) != target.payload.get(k)
        )
        return f"its payload differs ({', '.join(keys)})"
    return _parts_difference(source.parts, target.parts)


def _parts_difference(
    source: list[list[float]] | None, target: list[list[float]] | None
) -> str | None:
    if source is None or target is None:
        return None if source is target else "it has part vectors on one side only"
    a, b = _f32(source), _f32(target)
    if a.shape != b.shape:
        return f"its part vectors differ in shape ({a.shape} vs {b.shape})"
    if a.size and float(np.abs(a - b).max()) > PARTS_TOLERANCE:
        return f"its part vectors differ (by up to {float(np.abs(a - b).max()):.4g})"
    return None


def _f32(values: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray(values, dtype=np.float32)
