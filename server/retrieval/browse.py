"""Reading the index without a query: a chunk and its neighbours, the sources, the counts.

Every function takes the tenant and reads through the store's tenant filter, like search.
A source is represented by its first chunk (``chunk_index`` 0), which every indexed source
has, so listing sources reads one point per file instead of every chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from server.errors import InvalidRequestError, NotFoundError
from server.retrieval.filter_fields import (
    PATH_PREFIXES_FIELD,
    SECTION_PREFIXES_FIELD,
    glob_literal_prefix,
    glob_matches,
    normalize_path,
    normalize_section,
    path_forms,
)
from server.retrieval.store import TENANT_FIELD, ScoredPoint, VectorStore
from server.retrieval.types import FilterValue
from server.settings import Domain, Settings

_CORE_FIELDS = (TENANT_FIELD, "doc_id", "source", "chunk_index", "title", "text", "bm25_len")
_HIDDEN_FIELDS = (PATH_PREFIXES_FIELD, SECTION_PREFIXES_FIELD)
_SCROLL_PAGE = 512
_PER_CHUNK_FIELDS = {
    "heading_path",
    "page",
    "section_path",
    "section",
    "symbol",
    "symbol_kind",
    "signature",
    "start_line",
    "end_line",
    "part",
    "parts",
}
"""Chunk-level metadata that says nothing about the source as a whole."""


class StoredChunk(BaseModel):
    """A chunk as stored, without scores."""

    id: str
    domain: Domain
    doc_id: str
    source: str
    chunk_index: int
    title: str = ""
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class SourceInfo(BaseModel):
    """One indexed source (file, document) of a tenant."""

    source: str
    doc_id: str
    title: str = ""
    chunks: int | None = Field(description="Chunks of this source (from ingestion metadata).")
    metadata: dict[str, Any] = Field(default_factory=dict)


class SourcePage(BaseModel):
    """A page of sources and the cursor for the next one."""

    domain: Domain
    sources: list[SourceInfo]
    next_cursor: str | None = None


class DomainStats(BaseModel):
    """How much of one domain a tenant has indexed."""

    domain: Domain
    collection: str
    exists: bool
    chunks: int
    sources: int
    part_vectors: bool = Field(
        default=False,
        description="The collection stores sentence-group vectors that the dense stage blends in.",
    )


def _chunk_from_point(domain: Domain, point: ScoredPoint) -> StoredChunk:
    payload = dict(point.payload)
    core = {key: payload.pop(key, None) for key in _CORE_FIELDS}
    for key in _HIDDEN_FIELDS:
        payload.pop(key, None)
    return StoredChunk(
        id=point.id,
        domain=domain,
        doc_id=str(core["doc_id"] or ""),
        source=str(core["source"] or ""),
        chunk_index=int(core["chunk_index"] or 0),
        title=str(core["title"] or ""),
        text=str(core["text"] or ""),
        metadata=payload,
    )


def _collection(settings: Settings, domain: Domain) -> str:
    return settings.domains[domain].collection


def validate_chunk_id(chunk_id: str) -> str:
    """The canonical form of a chunk id, or InvalidRequestError."""
    try:
        return str(uuid.UUID(chunk_id.strip()))
    except (ValueError, AttributeError):
        raise InvalidRequestError(
            f"{chunk_id!r} is not a chunk id; use the 'id' of a search hit"
        ) from None


def find_chunk(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    chunk_id: str,
    domain: Domain | None = None,
) -> StoredChunk:
    """The tenant's chunk with this id (searched in every domain unless one is given)."""
    pid = validate_chunk_id(chunk_id)
    domains = [domain] if domain is not None else list(Domain)
    for name in domains:
        collection = _collection(settings, name)
        if not store.has_collection(collection):
            continue
        found = store.retrieve(collection, tenant, [pid])
        if found:
            return _chunk_from_point(name, found[0])
    raise NotFoundError(f"no chunk with id {pid} in this tenant's index")


def chunk_window(
    store: VectorStore, settings: Settings, tenant: str, chunk: StoredChunk, neighbors: int
) -> list[StoredChunk]:
    """The chunk and up to ``neighbors`` chunks either side of it in the same source, in order."""
    if neighbors <= 0:
        return [chunk]
    first = max(0, chunk.chunk_index - neighbors)
    wanted = list(range(first, chunk.chunk_index + neighbors + 1))
    filters: dict[str, FilterValue] = {"source": chunk.source, "chunk_index": wanted}
    points, _ = store.scroll(
        _collection(settings, chunk.domain), tenant, filters, limit=len(wanted)
    )
    window = [_chunk_from_point(chunk.domain, p) for p in points]
    return sorted(window, key=lambda c: c.chunk_index)


def _source_filters(prefix: str | None) -> dict[str, FilterValue]:
    filters: dict[str, FilterValue] = {"chunk_index": 0}
    if prefix:
        filters[PATH_PREFIXES_FIELD] = path_forms(prefix)
    return filters


def list_sources(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    domain: Domain,
    *,
    prefix: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> SourcePage:
    """One page of the tenant's sources in a domain, optionally under a path prefix."""
    collection = _collection(settings, domain)
    if not store.has_collection(collection):
        return SourcePage(domain=domain, sources=[])
    points, next_offset = store.scroll(
        collection, tenant, _source_filters(prefix), limit=limit, offset=cursor or None
    )
    sources = []
    for point in points:
        chunk = _chunk_from_point(domain, point)
        meta = {k: v for k, v in chunk.metadata.items() if k not in _PER_CHUNK_FIELDS}
        count = meta.pop("chunk_count", None)
        sources.append(
            SourceInfo(
                source=chunk.source,
                doc_id=chunk.doc_id,
                title=_source_title(chunk),
                chunks=int(count) if isinstance(count, int) else None,
                metadata=meta,
            )
        )
    next_cursor = None if next_offset is None else str(next_offset)
    return SourcePage(domain=domain, sources=sources, next_cursor=next_cursor)


def _source_title(chunk: StoredChunk) -> str:
    """The document's title: the first part of a chunk's embedded title (docs and legal put
    the document title, from front matter, the first heading or the file name, first)."""
    if chunk.domain is Domain.CODE:
        return ""
    heading = chunk.metadata.get("heading_path")
    if "page" in chunk.metadata and isinstance(heading, list) and heading:
        return str(heading[0])  # PDF chunk titles end in " (p. N)"
    return chunk.title.split(" > ", 1)[0] if chunk.title else ""


def matching_sources(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    domain: Domain,
    *,
    glob: str | None = None,
    prefix: str | None = None,
    cap: int = 20000,
) -> list[str]:
    """Sources of the tenant matching a path glob and/or a path prefix (exact, not sampled).

    Raises InvalidRequestError when more than ``cap`` files match (the caller should narrow
    the pattern) or when the glob is malformed.
    """
    collection = _collection(settings, domain)
    if not store.has_collection(collection):
        return []
    narrowing = prefix
    if glob and not prefix:
        literal = glob_literal_prefix(glob)  # exact, indexed narrowing before matching in Python
        if literal not in ("", "/"):
            narrowing = literal
    try:
        if glob:
            glob_matches(glob, "/", None)  # compile once: a malformed glob fails here
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None
    matched: list[str] = []
    offset: str | int | None = None
    while True:
        page, offset = store.scroll(
            collection, tenant, _source_filters(narrowing), limit=_SCROLL_PAGE, offset=offset
        )
        for point in page:
            source = str(point.payload.get("source", ""))
            rel = point.payload.get("rel_path")
            if glob and not glob_matches(glob, source, rel if isinstance(rel, str) else None):
                continue
            matched.append(source)
            if len(matched) > cap:
                raise InvalidRequestError(
                    f"the path filter matches more than {cap} files; make it more specific"
                )
        if offset is None:
            return matched


def domain_stats(
    store: VectorStore, settings: Settings, tenant: str, domain: Domain
) -> DomainStats:
    """Chunk and source counts of one domain for the tenant."""
    collection = _collection(settings, domain)
    exists = store.has_collection(collection)
    chunks = store.count(collection, tenant) if exists else 0
    sources = store.count(collection, tenant, {"chunk_index": 0}) if exists else 0
    return DomainStats(
        domain=domain,
        collection=collection,
        exists=exists,
        chunks=chunks,
        sources=sources,
        part_vectors=exists and store.has_part_vectors(collection),
    )


def path_prefix_filter(prefix: str) -> Mapping[str, FilterValue]:
    """Filter selecting the chunks of files under a directory (or one file), whole segments."""
    norm = normalize_path(prefix)
    if not norm or norm == "/":
        raise InvalidRequestError("the path prefix is empty")
    return {PATH_PREFIXES_FIELD: path_forms(norm)}


def section_filter(section: str) -> Mapping[str, FilterValue]:
    """Filter selecting a legal section and everything under it."""
    norm = normalize_section(section)
    if not norm:
        raise InvalidRequestError("the section filter is empty")
    return {SECTION_PREFIXES_FIELD: norm}
