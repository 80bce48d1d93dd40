"""Notes an agent keeps (add_text): a text chunked like a text file, stored as a source.

A note's source is ``note:`` plus the first 16 hex digits of the sha256 of its text, so the
same text always lands on the same source (adding it again changes nothing, or only its title
and metadata) and the note can be listed, read and removed like a file. The write follows the
ingest order (new chunks first, then the old version's extra chunks), so a note is never left
half old, half new without the manifest seeing it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from server.errors import InvalidRequestError
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.code_common import line_window_pieces
from server.ingest.chunkers.legal import chunk_legal
from server.ingest.chunkers.text import chunk_plain_text
from server.ingest.manifest import load_manifest
from server.retrieval.chunk_record import (
    CHUNK_COUNT,
    CHUNK_INDEX,
    CHUNKING,
    CONTENT_HASH,
    CORE_FIELDS,
    DOC_TYPE,
    HIDDEN_FIELDS,
    INGESTED_AT,
    PER_CHUNK_FIELDS,
    REL_PATH,
    SOURCE,
)
from server.retrieval.filter_fields import SECTIONS_WITHIN_FIELD
from server.retrieval.types import Chunk
from server.settings import Domain
from server.tenants import validate_tenant

if TYPE_CHECKING:  # numpy: imported when a write runs, not with the tool list
    from server.retrieval.indexer import Indexer

NOTE_PREFIX = "note:"
NOTE_DOC_TYPE = "note"
MAX_TITLE_CHARS = 200
MAX_METADATA_KEYS = 32
MAX_METADATA_VALUE_CHARS = 1000
RESERVED_KEYS = frozenset(
    {*CORE_FIELDS, *HIDDEN_FIELDS, *PER_CHUNK_FIELDS, CONTENT_HASH, CHUNK_COUNT, REL_PATH}
    | {INGESTED_AT, CHUNKING, SECTIONS_WITHIN_FIELD, "front_matter"}
)
"""Fields the note's chunks get from ingestion; metadata may not set them."""
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

MetadataValue = str | int | float | bool | list[str]


class NoteResult(BaseModel):
    """What add_text stored."""

    source: str = Field(description="The note's source id (note:<hash>): use it to remove it.")
    domain: Domain
    title: str
    chunks: int
    unchanged: bool = Field(description="The same note was already stored: nothing written.")


def note_source(text: str) -> str:
    """``note:`` + 16 hex digits of sha256(text): the same text, the same source."""
    return NOTE_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:16]


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    """The metadata unchanged, or InvalidRequestError naming the first bad key or value."""
    if not metadata:
        return {}
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidRequestError(f"metadata has more than {MAX_METADATA_KEYS} keys")
    checked: dict[str, MetadataValue] = {}
    for key, value in metadata.items():
        if not _KEY.match(key):
            raise InvalidRequestError(
                f"metadata key {key!r} is not a name (letters, digits, _; up to 64)"
            )
        if key in RESERVED_KEYS:
            raise InvalidRequestError(f"metadata key {key!r} is set by the server")
        ok_list = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str | int | float | bool) or ok_list):
            raise InvalidRequestError(
                f"metadata {key!r}: a value is a string, number, boolean or list of strings"
            )
        if len(json.dumps(value)) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequestError(
                f"metadata {key!r} is longer than {MAX_METADATA_VALUE_CHARS} characters"
            )
        checked[key] = value
    return checked


def _pieces(indexer: Indexer, domain: Domain, text: str, title: str) -> list[Piece]:
    """The note's pieces, cut by the chunker a text file of the domain gets."""
    from server.ingest.runner import make_budget

    budget = make_budget(indexer.embedder, indexer.settings.ingest)
    if domain is Domain.LEGAL:
        return chunk_legal(text, budget, title, title_given=True)
    if domain is Domain.CODE:
        overlap = indexer.settings.ingest.code_overlap_lines
        return line_window_pieces(
            text, language="text", rel_path=title, budget=budget, overlap_lines=overlap
        )
    return chunk_plain_text(text, budget, title)


def _checked_title(text: str, title: str, max_chars: int) -> str:
    """The title with whitespace folded; InvalidRequestError for an empty or over-long text or
    title."""
    if not text.strip():
        raise InvalidRequestError("the text is empty")
    if len(text) > max_chars:
        raise InvalidRequestError(f"the text is longer than {max_chars} characters")
    title = " ".join(title.split())
    if not title:
        raise InvalidRequestError("the title is empty")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidRequestError(f"the title is longer than {MAX_TITLE_CHARS} characters")
    return title


def add_note(
    indexer: Indexer,
    *,
    tenant: str,
    domain: Domain,
    text: str,
    title: str,
    metadata: Mapping[str, Any] | None = None,
    max_chars: int = 100_000,
) -> NoteResult:
    """Chunk, embed and store a note for ``tenant``; InvalidRequestError for an empty or
    over-long text or title, or bad metadata (see :func:`check_metadata`)."""
    validate_tenant(tenant)
    title = _checked_title(text, title, max_chars)
    extra = check_metadata(metadata)
    source = note_source(text)
    # the version identity covers everything stored: re-adding with a new title updates it
    identity = json.dumps([title, text, extra], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(identity.encode()).hexdigest()
    collection = indexer.settings.domains[domain].collection
    previous = load_manifest(indexer.store, collection, tenant, {SOURCE: source}).get(source)
    if previous is not None and previous.is_complete(digest):
        (count,) = previous.chunk_counts
        return NoteResult(source=source, domain=domain, title=title, chunks=count, unchanged=True)
    pieces = _pieces(indexer, domain, text, title)
    if not pieces:
        raise InvalidRequestError("the text has nothing to index")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    chunks = [
        Chunk(
            tenant=tenant,
            doc_id=source,
            source=source,
            chunk_index=index,
            text=piece.text,
            title=piece.title,
            metadata={
                DOC_TYPE: NOTE_DOC_TYPE,
                **piece.metadata,
                **extra,
                CONTENT_HASH: digest,
                CHUNK_COUNT: len(pieces),
                INGESTED_AT: now,
            },
        )
        for index, piece in enumerate(pieces)
    ]
    batch = indexer.settings.ingest.batch_chunks
    indexer.index(domain, chunks, batch_size=batch)
    if previous is not None:
        stale = sorted(i for i in previous.indexes if i >= len(chunks) or i < 0)
        if stale:
            indexer.delete(domain, tenant, {SOURCE: source, CHUNK_INDEX: stale})
    return NoteResult(
        source=source, domain=domain, title=title, chunks=len(chunks), unchanged=False
    )
