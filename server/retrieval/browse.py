"""Reading the index without a query: a chunk and its neighbours, the sources, the counts.

Every function takes the tenant and reads through the store's tenant filter, like search.
A source is represented by its first chunk (``chunk_index`` 0), which every indexed source
has, so listing sources reads one point per file instead of every chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from server.errors import InvalidRequestError, NotFoundError
from server.retrieval import chunk_record
from server.retrieval.chunk_record import CHUNK_INDEX, REL_PATH, SOURCE
from server.retrieval.filter_fields import (
    PATH_PREFIXES_FIELD,
    SECTION_PREFIXES_FIELD,
    glob_literal_prefix,
    glob_matches,
    normalize_path,
    path_forms,
    section_keys,
)
from server.retrieval.limits import Limits
from server.retrieval.results import (
    ChunkContext,
    ChunkView,
    DomainCounts,
    SourceChunks,
    SourceList,
)
from server.retrieval.store import VectorStore
from server.retrieval.types import FilterValue
from server.retrieval.uris import source_uri
from server.settings import Domain, Settings

_SCROLL_PAGE = 512


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
) -> tuple[Domain, ChunkView]:
    """The tenant's chunk with this id and its domain (every domain searched unless one is
    given); NotFoundError when the tenant has no such chunk."""
    pid = validate_chunk_id(chunk_id)
    domains = [domain] if domain is not None else list(Domain)
    for name in domains:
        collection = _collection(settings, name)
        if not store.has_collection(collection):
            continue
        found = store.retrieve(collection, tenant, [pid])
        if found:
            return name, chunk_record.chunk_view(name, found[0])
    raise NotFoundError(f"no chunk with id {pid} in this tenant's index")


def read_chunk(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    chunk_id: str,
    neighbors: int,
    *,
    domain: Domain | None = None,
) -> ChunkContext:
    """A chunk of the tenant with up to ``neighbors`` chunks either side, in reading order
    (looked up in ``domain`` only when given, else in every domain).

    Raises InvalidRequestError (bad id, neighbors over the limit) or NotFoundError.
    """
    Limits.from_settings(settings).check_neighbors(neighbors)
    domain, target = find_chunk(store, settings, tenant, chunk_id, domain)
    window = chunk_window(store, settings, tenant, domain, target, neighbors)
    return ChunkContext(
        domain=domain,
        chunk=target,
        before=[c for c in window if c.chunk_index < target.chunk_index],
        after=[c for c in window if c.chunk_index > target.chunk_index],
    )


def chunk_window(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    domain: Domain,
    chunk: ChunkView,
    neighbors: int,
) -> list[ChunkView]:
    """The chunk and up to ``neighbors`` chunks either side of it in the same source, in order."""
    if neighbors <= 0:
        return [chunk]
    first = max(0, chunk.chunk_index - neighbors)
    wanted = list(range(first, chunk.chunk_index + neighbors + 1))
    filters: dict[str, FilterValue] = {SOURCE: chunk.source, CHUNK_INDEX: wanted}
    points, _ = store.scroll(_collection(settings, domain), tenant, filters, limit=len(wanted))
    window = [chunk_record.chunk_view(domain, p) for p in points]
    return sorted(window, key=lambda c: c.chunk_index)


def read_source(
    store: VectorStore,
    settings: Settings,
    tenant: str,
    domain: Domain,
    source: str,
    *,
    start: int = 0,
) -> SourceChunks:
    """The tenant's chunks of one source from chunk ``start`` on, in reading order, at most
    ``mcp.max_source_chunks`` of them (``next_start`` says where the rest begins).

    Raises InvalidRequestError for a negative start, NotFoundError when the tenant has no
    such source in the domain (another tenant's source included).
    """
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InvalidRequestError(f"start must be a chunk index (0 or more), got {start!r}")
    collection = _collection(settings, domain)
    total = (
        store.count(collection, tenant, {SOURCE: source}) if store.has_collection(collection) else 0
    )
    if total == 0:
        raise NotFoundError(f"no source {source!r} in this tenant's {domain.value} index")
    page = Limits.from_settings(settings).source_chunks
    wanted = list(range(start, start + page))
    filters: dict[str, FilterValue] = {SOURCE: source, CHUNK_INDEX: wanted}
    points, _ = store.scroll(collection, tenant, filters, limit=page)
    chunks = sorted(
        (chunk_record.chunk_view(domain, p) for p in points), key=lambda c: c.chunk_index
    )
    last = max(total, chunks[-1].chunk_index + 1 if chunks else 0)
    return SourceChunks(
        domain=domain,
        source=source,
        uri=source_uri(domain, source),
        chunks=chunks,
        total_chunks=total,
        next_start=start + page if start + page < last else None,
    )


def _source_filters(prefix: str | None) -> dict[str, FilterValue]:
    filters: dict[str, FilterValue] = {CHUNK_INDEX: 0}
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
) -> SourceList:
    """One page of the tenant's sources in a domain, optionally under a path prefix.

    Raises InvalidRequestError for a page size over the limit, a cursor that is not one, or
    an empty prefix.
    """
    Limits.from_settings(settings).check_page(limit)
    if cursor is not None:
        try:
            cursor = validate_chunk_id(cursor)
        except InvalidRequestError:
            raise InvalidRequestError(
                f"{cursor!r} is not a cursor: pass the 'next_cursor' of the previous page, or "
                "leave it out for the first page"
            ) from None
    if prefix is not None:
        path_prefix_filter(prefix)  # validates
    collection = _collection(settings, domain)
    if not store.has_collection(collection):
        return SourceList(domain=domain, sources=[])
    points, next_offset = store.scroll(
        collection,
        tenant,
        _source_filters(prefix),
        limit=limit,
        offset=cursor or None,
        omit=[chunk_record.TEXT],  # a listing shows no chunk text
    )
    note = None
    if not points and prefix is not None and cursor is None:
        note = f"no indexed {domain.value} source is under path_prefix {prefix!r}"
    return SourceList(
        domain=domain,
        sources=[chunk_record.source_entry(domain, p) for p in points],
        next_cursor=None if next_offset is None else str(next_offset),
        note=note,
    )


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
            collection,
            tenant,
            _source_filters(narrowing),
            limit=_SCROLL_PAGE,
            offset=offset,
            fields=[SOURCE, REL_PATH],
        )
        for point in page:
            source = str(point.payload.get(SOURCE, ""))
            rel = point.payload.get(REL_PATH)
            if glob and not glob_matches(glob, source, rel if isinstance(rel, str) else None):
                continue
            matched.append(source)
            if len(matched) > cap:
                raise InvalidRequestError(
                    f"the path filter matches more than {cap} files; make it more specific"
                )
        if offset is None:
            return matched


def domain_counts(
    store: VectorStore, settings: Settings, tenant: str, domain: Domain
) -> DomainCounts:
    """Chunk and source counts of one domain for the tenant."""
    collection = _collection(settings, domain)
    exists = store.has_collection(collection)
    return DomainCounts(
        domain=domain,
        chunks=store.count(collection, tenant) if exists else 0,
        sources=store.count(collection, tenant, {CHUNK_INDEX: 0}) if exists else 0,
        part_vectors=exists and store.has_part_vectors(collection),
    )


def path_prefix_filter(prefix: str) -> Mapping[str, FilterValue]:
    """Filter selecting the chunks of files under a directory (or one file), whole segments."""
    norm = normalize_path(prefix)
    if not norm.strip() or norm == "/":  # blank: never a folder anyone meant
        raise InvalidRequestError("filter 'path_prefix' is empty: give a folder or leave it out")
    return {PATH_PREFIXES_FIELD: path_forms(norm)}


def section_filter(section: str) -> Mapping[str, FilterValue]:
    """Filter selecting a legal section and everything under it, however it is cited
    (``Article 4``, ``§3``, ``4.2(a)``, ``4.2 > (a)``, ``"Personal Data"``: filter_fields.py)."""
    keys = section_keys(section)
    if not keys:
        raise InvalidRequestError("filter 'section' is empty: give a section or leave it out")
    return {SECTION_PREFIXES_FIELD: keys if len(keys) > 1 else keys[0]}
