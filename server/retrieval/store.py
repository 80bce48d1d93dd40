"""The store seam: one collection design, two implementations (Qdrant Edge, Qdrant server).

Collection design: a dense named vector (cosine), a sparse named vector with the IDF modifier,
optionally a multivector of part vectors (cosine, MaxSim: a chunk's sentence groups embedded on
their own), and a payload with ``tenant``, ``doc_id``, ``source``, ``chunk_index``, ``text``
and domain metadata; ``tenant`` carries a keyword index marked as the tenant key. Every read
takes a tenant: there is no method that searches across tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from server.errors import InvalidRequestError
from server.retrieval.sparse import SparseVector
from server.retrieval.types import FilterValue
from server.settings import FusionSettings

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
PARTS_VECTOR = "parts"
TENANT_FIELD = "tenant"

IndexKind = Literal["tenant", "keyword", "integer"]
_POINT_NAMESPACE = uuid.UUID("8d6f3c1e-5a0b-4c53-9a55-2f0f1d3c9e71")


def point_id(tenant: str, domain: str, source: str, chunk_index: int) -> str:
    """Deterministic point id for (tenant, domain, source, chunk index)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{tenant}\x1f{domain}\x1f{source}\x1f{chunk_index}"))


@dataclass(frozen=True)
class StoredPoint:
    """A point as written: its vectors and the payload."""

    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]
    parts: list[list[float]] | None = None
    """Part vectors (collections created with part vectors require them on every point)."""


@dataclass(frozen=True)
class StoredVectors:
    """A stored point's chunk vector and part vectors, with the payload they were embedded
    from (part vectors come back as stored: float16)."""

    id: str
    payload: dict[str, Any]
    dense: list[float]
    parts: list[list[float]] | None


@dataclass(frozen=True)
class ScoredPoint:
    """A point returned by a query stage (payload only on the final stage)."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HybridQuery:
    """One tenant-scoped query: dense and/or sparse stage, fused in the store.

    A plain request; how a store runs it (which searches, how deep, the blend and the fusion)
    is its :class:`~server.retrieval.query_plan.QueryPlan`. With ``part_weight`` set, the dense
    stage scores each candidate (the union of the chunk-vector and the part-vector nearest
    neighbours) by ``(1 - w) * cos(chunk) + w * max cos(part)``.
    """

    tenant: str
    limit: int
    candidates: int
    dense: list[float] | None = None
    sparse: SparseVector | None = None
    fusion: FusionSettings = field(default_factory=FusionSettings)
    filters: Mapping[str, FilterValue] = field(default_factory=dict)
    part_weight: float | None = None
    hnsw_ef: int | None = None
    """HNSW beam width of the dense searches (None: Qdrant's default, max(ef_construct, depth))."""
    exact: bool = False
    """Dense searches by brute force over the original vectors (no HNSW, no quantization): the
    reference for measuring the approximate search's recall (`retrieval-mcp bench`)."""
    sparse_found: tuple[ScoredPoint, ...] | None = None
    """The BM25 list, when it was already searched: the ``sparse`` list of a BM25-only query
    (``dense=None``) of the same tenant, terms, filters and ``candidates`` (its ``limit`` may be
    0: nothing fetched). The store then does not search BM25 again; the Searcher runs that query
    while the query text is being embedded (``concurrency.search_ahead``)."""

    def __post_init__(self) -> None:
        if not self.tenant:
            raise InvalidRequestError("a tenant is required for every search")
        if self.dense is None and self.sparse is None:
            raise InvalidRequestError("a query needs a dense or a sparse vector")
        if self.part_weight is not None and not 0.0 <= self.part_weight <= 1.0:
            raise InvalidRequestError("part_weight must be between 0 and 1")
        if self.hnsw_ef is not None and self.hnsw_ef < 1:
            raise InvalidRequestError("hnsw_ef must be at least 1")
        if self.sparse_found is not None and self.sparse is None:
            raise InvalidRequestError("sparse_found needs the sparse vector it was searched with")

    @property
    def dense_beam(self) -> int | None:
        """The HNSW beam for the dense searches: ``hnsw_ef``, at least twice the candidate depth."""
        return None if self.hnsw_ef is None else max(self.hnsw_ef, 2 * self.candidates)


@dataclass
class QueryResponse:
    """Final ranking (with payloads) plus the per-stage lists it was fused from."""

    final: list[ScoredPoint]
    dense: list[ScoredPoint] = field(default_factory=list)
    sparse: list[ScoredPoint] = field(default_factory=list)


def filter_conditions(
    tenant: str | None, filters: Mapping[str, FilterValue] | None
) -> list[tuple[str, FilterValue]]:
    """(field, value) conditions every store maps to its own filter type.

    With a tenant: the tenant condition first, then the caller's payload conditions (which may
    not override the tenant). ``tenant=None`` (maintenance scans): the filters alone, possibly
    none, meaning every point.
    """
    if tenant is None:
        return list((filters or {}).items())
    if not tenant:
        raise InvalidRequestError("a tenant is required")
    conditions: list[tuple[str, FilterValue]] = [(TENANT_FIELD, tenant)]
    for key, value in (filters or {}).items():
        if key == TENANT_FIELD:
            raise InvalidRequestError("'tenant' cannot be used as a filter")
        if isinstance(value, list) and not value:
            raise InvalidRequestError(f"filter {key!r} has an empty list of values")
        conditions.append((key, value))
    return conditions


def changed_meta(
    meta: Mapping[str, Any],
    deltas: Mapping[str, Any],
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``meta`` with ``deltas`` added (a missing key counts as 0) and ``values`` set.

    Both may nest: a mapping under a key applies to the mapping stored there (per-tenant
    statistics live under ``{"tenants": {tenant: {...}}}``); every other value is a number to add
    (``deltas``) or a value to set (``values``).
    """
    changed = dict(meta)
    for key, delta in deltas.items():
        current = changed.get(key)
        if isinstance(delta, Mapping):
            changed[key] = changed_meta(current if isinstance(current, Mapping) else {}, delta)
        else:
            changed[key] = (current if isinstance(current, int | float) else 0) + delta
    for key, value in (values or {}).items():
        current = changed.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            changed[key] = changed_meta(current, {}, value)
        else:
            changed[key] = value
    return changed


def stored_vectors(point_id: str, payload: dict[str, Any], vector: Any) -> StoredVectors:
    """A retrieved record's vectors (a mapping of vector name to vector, as both stores give
    named vectors) as :class:`StoredVectors`."""
    named = vector if isinstance(vector, Mapping) else {}
    parts = named.get(PARTS_VECTOR)
    return StoredVectors(
        point_id,
        payload,
        list(named.get(DENSE_VECTOR) or []),
        [list(p) for p in parts] if parts else None,
    )


VALUES_LIMIT = 1000
"""Distinct values :meth:`VectorStore.values` reads by default: filters match tags,
jurisdictions and symbol kinds in any case by looking up the tenant's recorded spellings."""


class VectorStore(Protocol):
    """What the pipeline needs from a Qdrant-backed store."""

    def ensure_collection(
        self,
        name: str,
        dense_dim: int,
        payload_indexes: Mapping[str, IndexKind],
        part_vectors: bool = False,
    ) -> None:
        """Create the collection (and payload indexes) if it does not exist.

        ``part_vectors``: give a new collection the part multivector as well (an existing
        collection keeps its vectors; see :meth:`has_part_vectors`).
        """

    def has_collection(self, name: str) -> bool:
        """True when the collection exists."""

    def has_part_vectors(self, name: str) -> bool:
        """True when the collection exists and was created with the part multivector."""

    def upsert(
        self,
        name: str,
        points: Sequence[StoredPoint],
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert or replace points; ``meta_deltas`` are added to the metadata in the same step
        (nested as :func:`changed_meta` describes).

        "Same step": under the lock every writer through this store object (and, for the shared
        embedded store, every process) takes, so concurrent writers never lose an update.
        """

    def update_sparse(
        self, name: str, tenant: str, vectors: Sequence[tuple[str, SparseVector]]
    ) -> None:
        """Replace the sparse vector of existing points, all of ``tenant`` (a collection with
        tenant term spaces stores them in the tenant's, term_space.py)."""

    def query(self, name: str, request: HybridQuery) -> QueryResponse:
        """Run one tenant-scoped query: the dense and sparse lists, and Qdrant's fusion of them.

        ``final`` is exactly Qdrant's fusion of the ``dense`` and ``sparse`` lists returned
        (computed by the plan, score_fusion.py), with payloads. Implementations run the
        request's ``QueryPlan`` (query_plan.py) and decide nothing else.
        """

    def retrieve(self, name: str, tenant: str, ids: Sequence[str]) -> list[ScoredPoint]:
        """Points by id, only those that belong to ``tenant``."""

    def vectors(self, name: str, tenant: str, ids: Sequence[str]) -> list[StoredVectors]:
        """The dense and part vectors of points by id, only those that belong to ``tenant``
        (re-ingesting a changed file reuses those of its unchanged chunks)."""

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
        """A page of points (payload only) and the next offset. tenant=None: maintenance.

        ``fields``: only these payload keys (None: every key); ``omit``: every key but these.
        A listing that needs no chunk text says so: the text is most of a payload's bytes.
        """

    def delete(
        self,
        name: str,
        tenant: str,
        filters: Mapping[str, FilterValue] | None = None,
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        """Delete the tenant's points that match ``filters`` (all of them when None).

        ``meta_deltas`` are applied to the metadata in the same step, as for :meth:`upsert`.
        """

    def count(
        self, name: str, tenant: str | None, filters: Mapping[str, FilterValue] | None = None
    ) -> int:
        """Exact point count (for one tenant, or all tenants when tenant is None)."""

    def values(self, name: str, tenant: str, key: str, limit: int = VALUES_LIMIT) -> list[str]:
        """Distinct values of the keyword-indexed payload field ``key`` among the tenant's
        points, most frequent first, at most ``limit`` of them (none without the collection)."""

    def read_meta(self, name: str) -> dict[str, Any]:
        """Collection-level metadata written by :meth:`write_meta`."""

    def write_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        """Persist collection-level metadata (e.g. BM25 length statistics)."""

    def adjust_meta(
        self,
        name: str,
        deltas: Mapping[str, Any],
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Atomically add ``deltas`` to numeric metadata keys and set ``values``; the new meta.

        Atomic against every other meta change through this store (for the shared embedded
        store: through any process). Not idempotent: a call repeated after a lost connection
        counts twice (the pipeline's recount check repairs that).
        """

    def finish_writes(self, name: str) -> None:
        """Flush and build indexes after a batch of writes (not per upsert)."""

    def close(self) -> None:
        """Release files, locks and connections."""
