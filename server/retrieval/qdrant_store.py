"""Remote store on qdrant-client: a Qdrant server or cluster by URL, one collection per domain.

qdrant-client's local mode (``QdrantClient(path=...)`` / ``":memory:"``) runs the same API in
pure Python; tests use it as the stand-in for a server (``path:/dir`` as the URL, see
qdrant_cluster.py, which also lays collections out across a cluster).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from server.errors import StoreError
from server.retrieval import qdrant_cluster, qdrant_convert, qdrant_tuning, term_space
from server.retrieval.qdrant_convert import client_filter, client_sparse
from server.retrieval.query_plan import QueryPlan
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    VALUES_LIMIT,
    HybridQuery,
    IndexKind,
    QueryResponse,
    ScoredPoint,
    StoredPoint,
    StoredVectors,
    changed_meta,
    filter_conditions,
    stored_vectors,
)
from server.retrieval.store_tuning import StoreTuning
from server.retrieval.term_space import TERM_SPACE_KEY
from server.retrieval.types import FilterValue
from server.settings import QdrantClusterSettings

_META_KEY = "retrieval_mcp"
logger = logging.getLogger(__name__)


def _payload_selector(
    fields: Sequence[str] | None, omit: Sequence[str]
) -> bool | list[str] | models.PayloadSelectorExclude:
    """The client's payload selection for :meth:`QdrantStore.scroll`'s ``fields`` / ``omit``."""
    if fields is not None:
        return list(fields)
    return models.PayloadSelectorExclude(exclude=list(omit)) if omit else True


def _client_filter(
    tenant: str | None, filters: Mapping[str, FilterValue] | None
) -> models.Filter | None:
    return client_filter(filter_conditions(tenant, filters))


def _client_vectors(point: StoredPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {
        DENSE_VECTOR: point.dense,
        SPARSE_VECTOR: client_sparse(point.sparse),
    }
    if point.parts:
        vectors[PARTS_VECTOR] = point.parts
    return vectors


class QdrantStore:
    """Store backed by a Qdrant server (or qdrant-client's local mode in tests).

    Metadata lives in the collection's metadata. Its updates are atomic among this object's
    threads; writers in other processes can still interleave (the server has no atomic update
    of collection metadata), which the pipeline's recount check repairs on its next run.
    """

    def __init__(
        self,
        client: QdrantClient,
        cluster: QdrantClusterSettings | None = None,
        tuning: StoreTuning | None = None,
    ) -> None:
        """``tuning``: layout of collections created from now on, and the quantized-search
        parameters (default: :class:`StoreTuning`'s)."""
        self.client = client
        self.cluster = cluster or QdrantClusterSettings()
        """Shards, replicas and tenant shard keys for the collections this store creates."""
        self.tuning = tuning or StoreTuning()
        self._meta_lock = threading.RLock()
        self._layouts: dict[str, QdrantClusterSettings] = {}
        self._spaces: dict[str, term_space.TermSpace] = {}

    @classmethod
    def connect(
        cls,
        url: str,
        api_key: str | None = None,
        timeout: int = 30,
        cluster: QdrantClusterSettings | None = None,
        tuning: StoreTuning | None = None,
    ) -> QdrantStore:
        """Connect to a Qdrant server or cluster (``http(s)://``) or a local-mode folder
        (``path:/dir``); fails fast with a readable StoreError."""
        client = qdrant_cluster.open_client(url, api_key, timeout)
        try:
            client.get_collections()
        except Exception as exc:
            client.close()
            raise StoreError(f"cannot reach Qdrant at {url}: {exc}") from None
        return cls(client, cluster, tuning)

    def has_collection(self, name: str) -> bool:
        return bool(self.client.collection_exists(name))

    def has_part_vectors(self, name: str) -> bool:
        if not self.has_collection(name):
            return False
        vectors = self.client.get_collection(name).config.params.vectors
        return isinstance(vectors, dict) and PARTS_VECTOR in vectors

    def ensure_collection(
        self,
        name: str,
        dense_dim: int,
        payload_indexes: Mapping[str, IndexKind],
        part_vectors: bool = False,
    ) -> None:
        if not self.has_collection(name):
            self._layouts.pop(name, None)
            self.client.create_collection(
                name,
                vectors_config=qdrant_tuning.vectors_config(self.tuning, dense_dim, part_vectors),
                sparse_vectors_config={
                    SPARSE_VECTOR: qdrant_tuning.sparse_vector_params(self.tuning)
                },
                hnsw_config=qdrant_tuning.hnsw_config(self.tuning),
                optimizers_config=qdrant_tuning.optimizers_config(self.tuning),
                **qdrant_cluster.creation_params(self.cluster),
            )
            qdrant_cluster.create_shard_keys(self.client, name, self.cluster)
            self.record_term_space(name, term_space.new_collections(self.tuning.tenant_term_spaces))
        elif self._layout(name).tenant_shards != self.cluster.tenant_shards:
            logger.warning(
                "collection %r keeps the tenant shard keys it was created with (%s); "
                "tenant_shards applies to new collections",
                name,
                ", ".join(self._layout(name).tenant_shards) or "none",
            )
        existing = set(self.client.get_collection(name).payload_schema or {})
        for field_name, kind in payload_indexes.items():
            if field_name not in existing:
                schema = qdrant_tuning.index_schema(self.tuning, kind)
                self.client.create_payload_index(name, field_name, schema)

    def upsert(
        self,
        name: str,
        points: Sequence[StoredPoint],
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        if not points:
            return
        with self._meta_lock:
            self._upsert(name, term_space.stored_points(points, self.bm25_term_space(name)))
            if meta_deltas:
                self.adjust_meta(name, meta_deltas)

    def _upsert(self, name: str, points: Sequence[StoredPoint]) -> None:
        groups = qdrant_cluster.by_shard_key(
            self._layout(name), points, lambda p: qdrant_cluster.tenant_of_payload(p.payload)
        )
        for key, group in groups.items():
            self.client.upsert(
                name,
                points=[
                    models.PointStruct(id=p.id, vector=_client_vectors(p), payload=p.payload)
                    for p in group
                ],
                wait=True,
                shard_key_selector=key,
            )

    def update_sparse(
        self, name: str, tenant: str, vectors: Sequence[tuple[str, SparseVector]]
    ) -> None:
        if not vectors:
            return
        stored = term_space.stored_vectors(vectors, tenant, self.bm25_term_space(name))
        for key, group in self._by_stored_shard_key(name, stored).items():
            self.client.update_vectors(
                name,
                points=[
                    models.PointVectors(id=pid, vector={SPARSE_VECTOR: client_sparse(v)})
                    for pid, v in group
                ],
                wait=True,
                shard_key_selector=key,
            )

    def _by_stored_shard_key(
        self, name: str, vectors: Sequence[tuple[str, SparseVector]]
    ) -> dict[str | None, list[tuple[str, SparseVector]]]:
        """Updates grouped by the shard key their points live under (read from their tenant)."""
        layout = self._layout(name)
        if not qdrant_cluster.uses_shard_keys(layout):
            return {None: list(vectors)}
        records = self.client.retrieve(name, ids=[pid for pid, _ in vectors], with_payload=True)
        tenants = {str(r.id): qdrant_cluster.tenant_of_payload(r.payload) for r in records}
        return qdrant_cluster.by_shard_key(layout, vectors, lambda v: tenants.get(v[0], ""))

    def _routed(
        self, name: str, tenant: str
    ) -> Callable[[list[models.QueryRequest]], list[models.QueryRequest]]:
        """Sends a tenant's queries to its shard key only (custom sharding; the key is the one
        its points were written under, see :meth:`_layout`)."""
        key = qdrant_cluster.shard_key(self._layout(name), tenant)

        def route(requests: list[models.QueryRequest]) -> list[models.QueryRequest]:
            if key is not None:
                for query in requests:
                    query.shard_key = key
            return requests

        return route

    def _layout(self, name: str) -> QdrantClusterSettings:
        """The tenant shard keys the collection was created with (read once, then cached)."""
        layout = self._layouts.get(name)
        if layout is None:
            metadata = self.client.get_collection(name).config.metadata
            layout = qdrant_cluster.recorded_layout(metadata)
            self._layouts[name] = layout
        return layout

    def query(self, name: str, request: HybridQuery) -> QueryResponse:
        """The two round trips of the request's :class:`QueryPlan` (query_plan.py), each one
        ``query_batch_points`` call."""
        request = term_space.stored_query(request, self.bm25_term_space(name))
        # rescored candidates carry the exact cosines: round 2 scores only what each missed
        plan = QueryPlan.build(request, scores_exact=self.tuning.rescore)
        route = self._routed(name, request.tenant)
        results = self.client.query_batch_points(
            name, requests=route(qdrant_convert.round_one(plan.round_one, self.tuning))
        )
        second = plan.round_two([qdrant_convert.found(r.points) for r in results])
        answers = (
            self.client.query_batch_points(
                name, requests=route(qdrant_convert.round_two(second.requests, self.tuning))
            )
            if second.requests
            else []
        )
        return second.response(
            [qdrant_convert.found(r.points) for r in answers],
            lambda ids: self.retrieve(name, request.tenant, ids),
        )

    def retrieve(self, name: str, tenant: str, ids: Sequence[str]) -> list[ScoredPoint]:
        records = self.client.retrieve(name, ids=list(ids), with_payload=True, with_vectors=False)
        found = [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return [p for p in found if p.payload.get("tenant") == tenant]

    def vectors(self, name: str, tenant: str, ids: Sequence[str]) -> list[StoredVectors]:
        records = self.client.retrieve(name, ids=list(ids), with_payload=True, with_vectors=True)
        return [
            stored_vectors(str(r.id), dict(r.payload or {}), r.vector)
            for r in records
            if (r.payload or {}).get("tenant") == tenant
        ]

    def scroll(
        self,
        name: str,
        tenant: str | None,
        filters: Mapping[str, FilterValue] | None = None,
        limit: int = 256,
        offset: str | int | None = None,
        *,
        fields: Sequence[str] | None = None,
        omit: Sequence[str] = (),
    ) -> tuple[list[ScoredPoint], str | int | None]:
        records, next_offset = self.client.scroll(
            name,
            scroll_filter=_client_filter(tenant, filters),
            limit=limit,
            offset=offset,
            with_payload=_payload_selector(fields, omit),
            with_vectors=False,
        )
        points = [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return points, next_offset if next_offset is None else str(next_offset)

    def delete(
        self,
        name: str,
        tenant: str,
        filters: Mapping[str, FilterValue] | None = None,
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        flt = _client_filter(tenant, filters)
        assert flt is not None
        with self._meta_lock:
            self.client.delete(name, points_selector=models.FilterSelector(filter=flt), wait=True)
            if meta_deltas:
                self.adjust_meta(name, meta_deltas)

    def count(
        self, name: str, tenant: str | None, filters: Mapping[str, FilterValue] | None = None
    ) -> int:
        if not self.has_collection(name):
            return 0
        result = self.client.count(name, count_filter=_client_filter(tenant, filters), exact=True)
        return int(result.count)

    def values(self, name: str, tenant: str, key: str, limit: int = VALUES_LIMIT) -> list[str]:
        if not self.has_collection(name):
            return []
        found = self.client.facet(
            name, key=key, facet_filter=_client_filter(tenant, None), limit=limit
        )
        return [str(hit.value) for hit in found.hits]

    def read_meta(self, name: str) -> dict[str, Any]:
        metadata = self.client.get_collection(name).config.metadata or {}
        value = metadata.get(_META_KEY, {})
        return dict(value) if isinstance(value, dict) else {}

    def write_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        self.client.update_collection(name, metadata={_META_KEY: dict(meta)})

    def bm25_term_space(self, name: str) -> term_space.TermSpace:
        """The collection's BM25 term space (term_space.py), read from its record once."""
        space = self._spaces.get(name)
        if space is None:
            metadata = self.client.get_collection(name).config.metadata or {}
            space = self._spaces[name] = term_space.term_space(metadata.get(TERM_SPACE_KEY))
        return space

    def record_term_space(self, name: str, space: term_space.TermSpace) -> None:
        """Record the collection's BM25 term space: at creation, and by migrate before it
        copies points laid out in the source's (Qdrant merges metadata keys)."""
        self.client.update_collection(name, metadata={TERM_SPACE_KEY: space})
        self._spaces[name] = space

    def adjust_meta(
        self,
        name: str,
        deltas: Mapping[str, Any],
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._meta_lock:
            meta = changed_meta(self.read_meta(name), deltas, values)
            self.write_meta(name, meta)
            return meta

    def finish_writes(self, name: str) -> None:
        """The server indexes in the background; nothing to force here."""

    def close(self) -> None:
        self.client.close()
