"""remove_source: delete one tenant's chunks of one source, or of every source under a path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from server.errors import InvalidRequestError
from server.ingest.manifest import load_manifest
from server.retrieval import freshness
from server.retrieval.browse import path_prefix_filter
from server.retrieval.chunk_record import SOURCE
from server.retrieval.filter_fields import path_forms
from server.retrieval.types import FilterValue
from server.settings import Domain
from server.tenants import validate_tenant

if TYPE_CHECKING:  # numpy: imported when a write runs, not with the tool list
    from server.retrieval.indexer import Indexer

SOURCES_SHOWN = 50
"""Removed sources listed in the result (the count covers all of them)."""


class RemoveResult(BaseModel):
    """What remove_source deleted."""

    domain: Domain
    sources_removed: int
    chunks_removed: int
    sources: list[str] = Field(description=f"The first {SOURCES_SHOWN} sources removed.")


def _source_forms(source: str) -> list[str]:
    """``source`` as given, and normalised as the path filters normalise it, composed (NFC)
    and decomposed (NFD): filter_fields.path_forms plus the name exactly as typed."""
    forms = path_forms(source)
    return list(dict.fromkeys([source, *map(str, forms if isinstance(forms, list) else [forms])]))


def remove_sources(
    indexer: Indexer,
    *,
    tenant: str,
    domain: Domain,
    source: str | None = None,
    path_prefix: str | None = None,
) -> RemoveResult:
    """Delete the tenant's chunks of ``source`` (exact) or of every source under
    ``path_prefix`` (whole path segments, absolute or relative to the ingested folder, as in
    the search filters). Exactly one of the two; InvalidRequestError otherwise or for an
    empty prefix. Nothing matching is not an error (zero counts)."""
    validate_tenant(tenant)
    if (source is None) == (path_prefix is None):
        raise InvalidRequestError("give exactly one of source or path_prefix")
    filters: dict[str, FilterValue]
    if source is not None:
        if not source.strip():
            raise InvalidRequestError("the source is empty")
        # both Unicode forms: a file macOS named decomposed is typed composed, and back
        filters = {SOURCE: _source_forms(source)}
    else:
        filters = dict(path_prefix_filter(path_prefix or ""))
    collection = indexer.settings.domains[domain].collection
    sources = sorted(load_manifest(indexer.store, collection, tenant, filters))
    chunks = indexer.delete(domain, tenant, filters) if sources else 0
    freshness.forget_emptied_roots(indexer.store, collection, tenant, sources)
    return RemoveResult(
        domain=domain,
        sources_removed=len(sources),
        chunks_removed=chunks,
        sources=sources[:SOURCES_SHOWN],
    )
