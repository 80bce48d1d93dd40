"""Per-tenant BM25 document-length statistics, kept in the collection's metadata.

BM25 normalises a document's term frequencies by its length relative to the average length
``avg_len`` of the corpus it is scored in (Robertson & Zaragoza 2009, eq. 3.15). Qdrant applies
IDF at query time over the tenant's own points (``IdfParams(corpus=tenant)``); the length part
is baked into each stored sparse vector when it is encoded. Both therefore have to come from the
same corpus, the tenant's: with one collection-wide average, one tenant ingesting long documents
re-weighted every other tenant's vectors (field case ``tenant-stats``).

Layout (JSON, one entry per tenant that ever indexed into the collection)::

    {"tenants": {"acme": {"points": 120, "total_len": 9630.0, "encoded_avg_len": 80.1}}}

``points`` and ``total_len`` change by deltas applied in the same store step as the write they
describe (``VectorStore.upsert`` / ``delete`` with ``meta_deltas``); ``encoded_avg_len`` is the
average the tenant's stored vectors were encoded with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TENANTS_KEY = "tenants"
LEGACY_ENCODED_AVG = "encoded_avg_len"
"""Collection-wide average of stores written before per-tenant statistics (their vectors were
encoded with it, so it is the right starting point for a tenant that has no entry yet)."""


@dataclass(frozen=True)
class TenantLengths:
    """One tenant's recorded statistics (zeros when it has none)."""

    points: int = 0
    total_len: float = 0.0
    encoded_avg_len: float = 0.0

    @property
    def avg_len(self) -> float:
        """Average BM25 length of the tenant's points (1.0 for an empty tenant)."""
        return self.total_len / self.points if self.points else 1.0


def tenant_lengths(meta: Mapping[str, Any], tenant: str) -> TenantLengths:
    """The tenant's entry of a collection's metadata."""
    entry = (meta.get(TENANTS_KEY) or {}).get(tenant) or {}
    encoded = float(entry.get("encoded_avg_len") or 0.0)
    if not encoded and entry.get("points"):
        encoded = float(meta.get(LEGACY_ENCODED_AVG) or 0.0)
    return TenantLengths(
        points=int(entry.get("points") or 0),
        total_len=float(entry.get("total_len") or 0.0),
        encoded_avg_len=encoded,
    )


def length_deltas(tenant: str, points: int, total_len: float) -> dict[str, Any]:
    """Metadata deltas (for ``meta_deltas`` / ``adjust_meta``) moving one tenant's counts."""
    return {TENANTS_KEY: {tenant: {"points": points, "total_len": float(total_len)}}}


def encoded_avg_value(tenant: str, avg_len: float) -> dict[str, Any]:
    """Metadata values (for ``adjust_meta``) recording the average a tenant is encoded with."""
    return {TENANTS_KEY: {tenant: {"encoded_avg_len": float(avg_len)}}}
