"""Each tenant's BM25 terms in a sparse-vector index space of its own.

Qdrant keeps one posting list per sparse-vector index (a term's hash). With every tenant's
terms at the same indices, a tenant's BM25 search walks the postings of all tenants, checking
the tenant filter on each, and the IDF over the tenant's points counts them the same way: its
cost follows the collection, not the tenant (at 1M chunks in 8 tenants, BM25 was most of a
search's store time). A collection created with tenant term spaces stores each term index of a
tenant's points XOR a 32-bit key derived from the tenant (:func:`tenant_key`), and its queries
are moved the same way, so a term's posting list holds one tenant's points.

Scores do not change: for one tenant the map is a bijection applied to its documents and its
queries alike, so every document frequency counted over the tenant's points (the IDF corpus is
the tenant) is the same number and every score the same sum, its terms added in another order
(float32 rounding apart). Two tenants whose keys move two
different terms to one index share that posting list; the tenant filter, applied as before,
keeps the other tenant's points out of the results and out of the IDF count, so a collision
costs only speed.

Each store records the layout beside the collection when it creates it (Qdrant Edge: a file
:data:`TERM_SPACE_FILE` in the collection directory; a Qdrant server: the collection metadata
key :data:`TERM_SPACE_KEY`), apart from the BM25 statistics metadata, which writers replace
whole. A collection without the record (created by an earlier version) keeps one space for all
tenants and opens unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from server.retrieval.sparse import SparseVector
from server.retrieval.store import TENANT_FIELD, HybridQuery, StoredPoint

TERM_SPACE_KEY = "retrieval_mcp_bm25_term_space"
"""Qdrant server collection metadata key of the layout: ``"tenant"`` or ``"shared"``; absent
means shared (collections created before tenant term spaces)."""
TERM_SPACE_FILE = "bm25_term_space"
"""Qdrant Edge: the file in the collection directory holding the same word."""

TermSpace = Literal["tenant", "shared"]


def new_collections(tenant_term_spaces: bool) -> TermSpace:
    """The term space a new collection gets (``StoreTuning.tenant_term_spaces``)."""
    return "tenant" if tenant_term_spaces else "shared"


def term_space(recorded: Any) -> TermSpace:
    """The term space a collection's record names (``shared`` when it names none)."""
    return "tenant" if recorded == "tenant" else "shared"


def tenant_key(tenant: str) -> int:
    """The tenant's 32-bit key (BLAKE2b of its UTF-8 name): stable across processes, versions
    and machines, unlike Python's ``hash``."""
    return int.from_bytes(hashlib.blake2b(tenant.encode(), digest_size=4).digest(), "big")


def moved(vector: SparseVector, tenant: str) -> SparseVector:
    """``vector``'s indices in (or, applied again, out of) the tenant's space, in index order.
    Qdrant's sparse indices are unsigned 32-bit, and XOR with a 32-bit key stays in that range
    and maps distinct indices to distinct indices."""
    key = tenant_key(tenant)
    pairs = sorted(zip((i ^ key for i in vector.indices), vector.values, strict=True))
    return SparseVector([i for i, _ in pairs], [v for _, v in pairs])


def stored_points(points: Sequence[StoredPoint], space: TermSpace) -> Sequence[StoredPoint]:
    """``points`` as a collection of ``space`` stores them (each moved by its payload tenant)."""
    if space == "shared":
        return points
    return [replace(p, sparse=moved(p.sparse, str(p.payload[TENANT_FIELD]))) for p in points]


def stored_vectors(
    vectors: Sequence[tuple[str, SparseVector]], tenant: str, space: TermSpace
) -> Sequence[tuple[str, SparseVector]]:
    """One tenant's (point id, sparse vector) updates as a collection of ``space`` stores them."""
    if space == "shared":
        return vectors
    return [(pid, moved(v, tenant)) for pid, v in vectors]


def stored_query(request: HybridQuery, space: TermSpace) -> HybridQuery:
    """``request`` with its BM25 query moved into its tenant's space."""
    if space == "shared" or request.sparse is None:
        return request
    return replace(request, sparse=moved(request.sparse, request.tenant))
