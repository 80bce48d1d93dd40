"""The chunk record: how a chunk is stored as a Qdrant point and read back, in one place.

A point's payload is the chunk's metadata (from ingestion: ``rel_path``, ``heading_path``,
``symbol``, ...) plus the core fields below and the derived filter fields of
filter_fields.py. This module owns the field names, the payload written at index time, the
payload indexes each domain's collection gets, the filterable fields, the decoding of a stored
point into the public result models, and the citation.

Adding a filterable metadata field is one entry in :data:`FILTER_FIELDS` plus the field in the
tool's filter model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from server.retrieval.filter_fields import (
    PATH_PREFIXES_FIELD,
    SECTION_PREFIXES_FIELD,
    SECTIONS_WITHIN_FIELD,
    derived_filter_fields,
)
from server.retrieval.results import ChunkView, Copy, SearchHit, SourceEntry, StageScores
from server.retrieval.store import TENANT_FIELD, IndexKind, ScoredPoint
from server.retrieval.types import Chunk
from server.retrieval.uris import chunk_uri
from server.settings import Domain

DOC_ID = "doc_id"
SOURCE = "source"
CHUNK_INDEX = "chunk_index"
TITLE = "title"
TEXT = "text"
BM25_LEN = "bm25_len"
"""The chunk's length in BM25 tokens: the per-tenant average length is summed from it."""
REL_PATH = "rel_path"
"""Ingest metadata: the path relative to the ingested folder (citations, globs, prefixes)."""
CONTENT_HASH = "content_hash"
"""Ingest metadata: sha256 of the source file's bytes (the manifest compares it)."""
CHUNK_COUNT = "chunk_count"
"""Ingest metadata: how many chunks the source was split into."""
INGESTED_AT = "ingested_at"
"""Ingest metadata: when the source was ingested (ISO 8601, UTC, seconds)."""
CHUNKING = "chunking"
"""Ingest metadata: which chunker version and budget cut the source (chunking.chunking_key):
a re-run re-chunks a file whose stored chunks another chunking cut, though its bytes are the
same."""
DOC_TYPE = "doc_type"

CORE_FIELDS = (TENANT_FIELD, DOC_ID, SOURCE, CHUNK_INDEX, TITLE, TEXT, BM25_LEN)
"""Fields every point has; the rest of the payload is the chunk's metadata."""
HIDDEN_FIELDS = (PATH_PREFIXES_FIELD, SECTION_PREFIXES_FIELD)
"""Filter plumbing (filter_fields.py), never shown as metadata."""
PER_CHUNK_FIELDS = frozenset(
    {
        "heading_path",
        "page",
        "section_path",
        "section",
        "symbol",
        "symbol_kind",
        "signature",
        "defines",
        "start_line",
        "end_line",
        "cell_start",
        "cell_end",
        "part",
        "parts",
    }
)
"""Chunk-level metadata that says nothing about the source as a whole (left out of listings)."""
PER_SOURCE_BOOKKEEPING = frozenset({CONTENT_HASH, INGESTED_AT, CHUNKING})
"""Ingest bookkeeping, the same on every chunk of a source: left out of search hits (get_chunk
and list_sources show it), where it would repeat on every hit for nothing."""

BASE_PAYLOAD_INDEXES: dict[str, IndexKind] = {
    TENANT_FIELD: "tenant",
    DOC_ID: "keyword",
    SOURCE: "keyword",
    CHUNK_INDEX: "integer",
    PATH_PREFIXES_FIELD: "keyword",
}
"""Payload indexes of every collection: the tenant, the identity fields, path prefixes."""


LegalDocType = Literal["contract", "statute", "licence", "other"]
"""The legal ``doc_type`` values ingestion records (chunkers/legal.py, legal_doc_type)."""
SymbolKind = Literal["function", "method", "class", "module", "window"]
"""The ``symbol_kind`` values the code chunkers record."""


@dataclass(frozen=True)
class FilterField:
    """A metadata field that searches filter on by exact match (keyword payload index)."""

    name: str
    casefold: bool = False
    """Stored lower-case by ingestion, so a filter value is lower-cased before matching.
    Otherwise stored as written, and a filter value matches the tenant's recorded spellings
    that equal it in any case (request_filters.py)."""
    choices: tuple[str, ...] = ()
    """The only values ingestion records (any case), when it records a closed set: another
    value is refused, as the MCP tool's schema (built from the same Literal) refuses it."""
    place: bool = False
    """A place as the text names it (``State of Delaware``, ``England and Wales``): a filter
    value also matches it by the place's own name (``Delaware``) or one of a pair
    (``England``): request_filters.place_keys."""


FILTER_FIELDS: dict[Domain, tuple[FilterField, ...]] = {
    # doc_type values are stored lower-case (a file format; a legal type, front matter's read
    # by legal_doc_type): `doc_type=Contract` matches them
    Domain.DOCS: (FilterField(DOC_TYPE, casefold=True), FilterField("tags")),
    Domain.LEGAL: (
        FilterField(DOC_TYPE, casefold=True, choices=get_args(LegalDocType)),
        FilterField("tags"),
        FilterField("jurisdiction", place=True),
    ),
    Domain.CODE: (
        FilterField("language", casefold=True),
        FilterField("symbol_kind", choices=get_args(SymbolKind)),
    ),
}
"""Filterable metadata per domain; payload indexes and filter validation derive from it."""


def payload_indexes(domain: Domain) -> dict[str, IndexKind]:
    """The payload indexes a domain's collection is created with."""
    indexes = dict(BASE_PAYLOAD_INDEXES)
    indexes.update((f.name, "keyword") for f in FILTER_FIELDS[domain])
    if domain is Domain.LEGAL:
        indexes[SECTION_PREFIXES_FIELD] = "keyword"
    return indexes


def to_payload(chunk: Chunk, bm25_len: int) -> dict[str, Any]:
    """The payload stored for a chunk: its metadata, derived filter fields, core fields."""
    payload: dict[str, Any] = dict(chunk.metadata)
    payload.pop(SECTIONS_WITHIN_FIELD, None)  # read into section_prefixes
    payload.update(derived_filter_fields(chunk.source, chunk.metadata))
    payload.update(
        {
            TENANT_FIELD: chunk.tenant,
            DOC_ID: chunk.doc_id,
            SOURCE: chunk.source,
            CHUNK_INDEX: chunk.chunk_index,
            TITLE: chunk.title,
            TEXT: chunk.text,
            BM25_LEN: bm25_len,
        }
    )
    return payload


@dataclass(frozen=True)
class StoredRecord:
    """A stored point decoded: its core fields and the chunk's own metadata."""

    id: str
    doc_id: str
    source: str
    chunk_index: int
    title: str
    text: str
    metadata: dict[str, Any]

    @classmethod
    def from_point(cls, point: ScoredPoint) -> StoredRecord:
        """Decode a point; missing core fields read as empty (stores written by old versions)."""
        payload = dict(point.payload)
        core = {key: payload.pop(key, None) for key in CORE_FIELDS}
        for key in HIDDEN_FIELDS:
            payload.pop(key, None)
        return cls(
            id=point.id,
            doc_id=str(core[DOC_ID] or ""),
            source=str(core[SOURCE] or ""),
            chunk_index=int(core[CHUNK_INDEX] or 0),
            title=str(core[TITLE] or ""),
            text=str(core[TEXT] or ""),
            metadata=payload,
        )

    def citation(self, domain: Domain) -> str:
        """How to cite the chunk (see :func:`citation`)."""
        return citation(domain, self.source, self.title, self.metadata)


def point_text(point: ScoredPoint) -> str:
    """The chunk text of a stored point, as :meth:`StoredRecord.from_point` decodes it."""
    return str(point.payload.get(TEXT) or "")


def bm25_len(payload: Mapping[str, Any]) -> float:
    """The stored BM25 length of a point (0 for points written before lengths were kept)."""
    return float(payload.get(BM25_LEN, 0))


def _shown_fields(domain: Domain, record: StoredRecord) -> dict[str, Any]:
    """The fields a chunk shows wherever it is returned (chunk views and search hits)."""
    return {
        "id": record.id,
        "uri": chunk_uri(domain, record.id),
        "source": record.source,
        "citation": record.citation(domain),
        "chunk_index": record.chunk_index,
        "title": record.title,
        "text": record.text,
        "metadata": record.metadata,
    }


def chunk_view(domain: Domain, point: ScoredPoint) -> ChunkView:
    """A stored point as the public chunk model."""
    return ChunkView(**_shown_fields(domain, StoredRecord.from_point(point)))


def search_hit(domain: Domain, point: ScoredPoint, stages: StageScores) -> SearchHit:
    """A scored point as a search hit with its citation; ``score`` is the point's score."""
    record = StoredRecord.from_point(point)
    metadata = {k: v for k, v in record.metadata.items() if k not in PER_SOURCE_BOOKKEEPING}
    return SearchHit(
        **{**_shown_fields(domain, record), "metadata": metadata},
        score=point.score,
        stages=stages,
        doc_id=record.doc_id,
    )


def copy_of(hit: SearchHit) -> Copy:
    """A hit listed as a copy of another (``also_in``)."""
    return Copy(id=hit.id, uri=hit.uri, source=hit.source, citation=hit.citation)


def point_copy(domain: Domain, point: ScoredPoint) -> Copy:
    """A stored point listed as a copy of a hit: ``copy_of(search_hit(domain, point, ...))``
    without decoding the rest of the hit."""
    record = StoredRecord.from_point(point)
    return Copy(
        id=record.id,
        uri=chunk_uri(domain, record.id),
        source=record.source,
        citation=record.citation(domain),
    )


def source_entry(domain: Domain, point: ScoredPoint) -> SourceEntry:
    """A source's first chunk as a listing entry: document title, chunk count, the metadata
    that describes the whole source."""
    record = StoredRecord.from_point(point)
    meta = {k: v for k, v in record.metadata.items() if k not in PER_CHUNK_FIELDS}
    count = meta.pop(CHUNK_COUNT, None)
    return SourceEntry(
        source=record.source,
        title=_source_title(domain, record),
        chunks=int(count) if isinstance(count, int) else None,
        metadata=meta,
    )


def _source_title(domain: Domain, record: StoredRecord) -> str:
    """The document's title: the first part of a chunk's embedded title (docs and legal put
    the document title, from front matter, the first heading or the file name, first)."""
    if domain is Domain.CODE:
        return ""
    heading = record.metadata.get("heading_path")
    if "page" in record.metadata and isinstance(heading, list) and heading:
        return str(heading[0])  # PDF chunk titles end in " (p. N)"
    return record.title.split(" > ", 1)[0] if record.title else ""


# -- citations ---------------------------------------------------------------------------------


def _path(source: str, metadata: Mapping[str, Any]) -> str:
    rel = metadata.get(REL_PATH)
    return rel if isinstance(rel, str) and rel else source


def _docs_citation(source: str, title: str, metadata: Mapping[str, Any]) -> str:
    path = _path(source, metadata)
    page = metadata.get("page")
    heading = metadata.get("heading_path")
    parts = [path]
    if isinstance(page, int) and not isinstance(page, bool):
        parts.append(f", p. {page}")
    if isinstance(heading, list) and heading:
        parts.append(" > " + " > ".join(str(h) for h in heading))
    elif title and not isinstance(page, int):
        parts.append(f" > {title}")
    return "".join(parts)


def _legal_citation(source: str, title: str, metadata: Mapping[str, Any]) -> str:
    document = _path(source, metadata)
    section = metadata.get("section_path") or metadata.get("section")
    return f"{document}, {section}" if section else document


def _code_citation(source: str, title: str, metadata: Mapping[str, Any]) -> str:
    path = _path(source, metadata)
    start, end = metadata.get("start_line"), metadata.get("end_line")
    location = f"{path}:{start}-{end}" if isinstance(start, int) and isinstance(end, int) else path
    first, last = metadata.get("cell_start"), metadata.get("cell_end")
    if isinstance(first, int) and isinstance(last, int):  # a notebook: its lines are no file's
        location = f"{path}, cell {first}" if first == last else f"{path}, cells {first}-{last}"
    symbol = metadata.get("symbol")
    # a module-level chunk's symbol is its path: named once ("a/keys.py:1-2 (a/keys.py)" before)
    cited = f"{location} ({symbol})" if symbol and symbol != path else location
    part, parts = metadata.get("part"), metadata.get("parts")
    if isinstance(part, int) and isinstance(parts, int):  # a window of one over-long line
        cited += f", part {part}/{parts}"
    return cited


def citation(domain: Domain, source: str, title: str, metadata: Mapping[str, Any]) -> str:
    """``docs/a.md > Setup > Linux``, ``contract.pdf, 12 > 12.3``, ``src/x.py:10-42 (X.run)``,
    ``eda.ipynb, cells 3-4 (load)``."""
    if domain is Domain.DOCS:
        return _docs_citation(source, title, metadata)
    if domain is Domain.LEGAL:
        return _legal_citation(source, title, metadata)
    return _code_citation(source, title, metadata)
