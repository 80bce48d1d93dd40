"""Remote store on qdrant-client: a Qdrant server or cluster by URL, one collection per domain.

qdrant-client's local mode (``QdrantClient(path=...)`` / ``":memory:"``) runs the same API in
pure Python; tests use it as the stand-in for a server.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from server.errors import StoreError
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    HybridQuery,
    IndexKind,
    QueryResponse,
    ScoredPoint,
    StoredPoint,
    changed_meta,
    filter_conditions,
    with_payloads,
)
from server.retrieval.types import FilterValue

_META_KEY = "retrieval_mcp"


def _client_filter(
    tenant: str | None, filters: Mapping[str, FilterValue] | None
) -> models.Filter | None:
    conditions = filter_conditions(tenant, filters)
    if not conditions:
        return None
    must: list[models.Condition] = []
    for key, value in conditions:
        match: models.MatchAny | models.MatchValue = (
            models.MatchAny(any=list(value))
            if isinstance(value, list)
            else models.MatchValue(value=value)
        )
        must.append(models.FieldCondition(key=key, match=match))
    return models.Filter(must=must)


def _id_filter(ids: Collection[Any]) -> models.Filter:
    return models.Filter(must=[models.HasIdCondition(has_id=list(ids))])


def _client_sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vector.indices, values=vector.values)


def _client_vectors(point: StoredPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {
        DENSE_VECTOR: point.dense,
        SPARSE_VECTOR: _client_sparse(point.sparse),
    }
    if point.parts:
        vectors[PARTS_VECTOR] = point.parts
    return vectors


def _blend(part_weight: float) -> models.FormulaQuery:
    """``(1 - w) * $score[0] + w * $score[1]``: chunk-vector and best-part cosine."""
    return models.FormulaQuery(
        formula=models.SumExpression(
            sum=[
                models.MultExpression(mult=[1.0 - part_weight, "$score[0]"]),
                models.MultExpression(mult=[part_weight, "$score[1]"]),
            ]
        )
    )


def _index_schema(kind: IndexKind) -> Any:
    if kind == "tenant":
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    if kind == "integer":
        return models.PayloadSchemaType.INTEGER
    return models.PayloadSchemaType.KEYWORD


def _fusion(request: HybridQuery) -> models.Query:
    fusion = request.fusion
    if fusion.method == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    return models.RrfQuery(
        rrf=models.Rrf(k=fusion.rrf_k, weights=[fusion.dense_weight, fusion.sparse_weight])
    )


def _scored(points: Sequence[models.ScoredPoint]) -> list[ScoredPoint]:
    return [ScoredPoint(str(p.id), float(p.score), dict(p.payload or {})) for p in points]


class QdrantStore:
    """Store backed by a Qdrant server (or qdrant-client's local mode in tests).

    Metadata lives in the collection's metadata. Its updates are atomic among this object's
    threads; writers in other processes can still interleave (the server has no atomic update
    of collection metadata), which the pipeline's recount check repairs on its next run.
    """

    def __init__(self, client: QdrantClient) -> None:
        self.client = client
        self._meta_lock = threading.RLock()

    @classmethod
    def connect(cls, url: str, api_key: str | None = None, timeout: int = 30) -> QdrantStore:
        """Connect to a Qdrant server or cluster; fails fast with a readable StoreError."""
        client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
        try:
            client.get_collections()
        except Exception as exc:
            raise StoreError(f"cannot reach Qdrant at {url}: {exc}") from None
        return cls(client)

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
            vectors = {
                DENSE_VECTOR: models.VectorParams(size=dense_dim, distance=models.Distance.COSINE)
            }
            if part_vectors:
                vectors[PARTS_VECTOR] = models.VectorParams(
                    size=dense_dim,
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(
                        comparator=models.MultiVectorComparator.MAX_SIM
                    ),
                    datatype=models.Datatype.FLOAT16,
                )
            self.client.create_collection(
                name,
                vectors_config=vectors,
                sparse_vectors_config={
                    SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
        existing = set(self.client.get_collection(name).payload_schema or {})
        for field_name, kind in payload_indexes.items():
            if field_name not in existing:
                self.client.create_payload_index(name, field_name, _index_schema(kind))

    def upsert(
        self,
        name: str,
        points: Sequence[StoredPoint],
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        if not points:
            return
        with self._meta_lock:
            self._upsert(name, points)
            if meta_deltas:
                self.adjust_meta(name, meta_deltas)

    def _upsert(self, name: str, points: Sequence[StoredPoint]) -> None:
        self.client.upsert(
            name,
            points=[
                models.PointStruct(id=p.id, vector=_client_vectors(p), payload=p.payload)
                for p in points
            ],
            wait=True,
        )

    def update_sparse(self, name: str, vectors: Sequence[tuple[str, SparseVector]]) -> None:
        if not vectors:
            return
        self.client.update_vectors(
            name,
            points=[
                models.PointVectors(id=pid, vector={SPARSE_VECTOR: _client_sparse(v)})
                for pid, v in vectors
            ],
            wait=True,
        )

    def query(self, name: str, request: HybridQuery) -> QueryResponse:
        """The same two round trips as ``EdgeStore.query``, on the server's query API."""
        flt = _client_filter(request.tenant, request.filters)
        tenant_only = _client_filter(request.tenant, None)
        assert tenant_only is not None
        idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=tenant_only))
        depth = request.candidates
        # search -> (query, using, params)
        beam = request.dense_beam
        beam_params = None if beam is None else models.SearchParams(hnsw_ef=beam)
        searches: dict[str, tuple[Any, str, models.SearchParams | None]] = {}
        if request.dense is not None:
            searches["chunk"] = (request.dense, DENSE_VECTOR, beam_params)
            if request.part_weight is not None:
                searches["parts"] = ([request.dense], PARTS_VECTOR, beam_params)
        if request.sparse is not None:
            searches["sparse"] = (_client_sparse(request.sparse), SPARSE_VECTOR, idf)
        batch = [
            models.QueryRequest(
                query=q, using=using, filter=flt, params=p, limit=depth, with_payload=False
            )
            for q, using, p in searches.values()
        ]
        results = self.client.query_batch_points(name, requests=batch)
        found = {k: _scored(r.points) for k, r in zip(searches, results, strict=True)}

        def over(*keys: str) -> models.Filter:
            # ids only: the tenant filter at the top of each round-2 request reaches every stage
            return _id_filter({p.id for k in keys for p in found[k]})

        def rerun(key: str, stage_filter: models.Filter | None, limit: int) -> models.Prefetch:
            query, using, params = searches[key]
            return models.Prefetch(
                query=query, using=using, filter=stage_filter, params=params, limit=limit
            )

        response = QueryResponse(final=[])
        stages: list[models.Prefetch] = []
        round_two: list[models.QueryRequest] = []
        if "parts" in found:
            both = over("chunk", "parts")
            scored = [rerun(k, both, 2 * depth) for k in ("chunk", "parts")]
            blend = _blend(request.part_weight or 0.0)
            stages.append(models.Prefetch(prefetch=scored, query=blend, limit=depth))
            round_two.append(
                models.QueryRequest(
                    prefetch=scored, query=blend, filter=flt, limit=depth, with_payload=False
                )
            )
        elif "chunk" in found:
            response.dense = found["chunk"]
            stages.append(rerun("chunk", over("chunk"), depth))
        if "sparse" in found:
            response.sparse = found["sparse"]
            stages.append(rerun("sparse", over("sparse"), depth))
        if len(stages) == 2:
            round_two.append(
                models.QueryRequest(
                    prefetch=stages,
                    query=_fusion(request),
                    filter=flt,
                    limit=request.limit,
                    with_payload=True,
                )
            )
        answers = self.client.query_batch_points(name, requests=round_two) if round_two else []
        if "parts" in found:
            response.dense = _scored(answers[0].points)
        if len(stages) == 2:
            response.final = _scored(answers[-1].points)
        else:
            top = (response.dense or response.sparse)[: request.limit]
            response.final = with_payloads(
                top, self.retrieve(name, request.tenant, [p.id for p in top])
            )
        return response

    def retrieve(self, name: str, tenant: str, ids: Sequence[str]) -> list[ScoredPoint]:
        records = self.client.retrieve(name, ids=list(ids), with_payload=True, with_vectors=False)
        found = [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return [p for p in found if p.payload.get("tenant") == tenant]

    def scroll(
        self,
        name: str,
        tenant: str | None,
        filters: Mapping[str, FilterValue] | None = None,
        limit: int = 256,
        offset: str | int | None = None,
    ) -> tuple[list[ScoredPoint], str | int | None]:
        records, next_offset = self.client.scroll(
            name,
            scroll_filter=_client_filter(tenant, filters),
            limit=limit,
            offset=offset,
            with_payload=True,
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

    def read_meta(self, name: str) -> dict[str, Any]:
        metadata = self.client.get_collection(name).config.metadata or {}
        value = metadata.get(_META_KEY, {})
        return dict(value) if isinstance(value, dict) else {}

    def write_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        self.client.update_collection(name, metadata={_META_KEY: dict(meta)})

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
