"""What the store already holds per source: content hashes, chunk count, chunk indexes.

The store itself is the manifest (every chunk carries ``content_hash`` and ``chunk_count``), so
an interrupted run can never leave a record that disagrees with the points: a source counts as
unchanged only when all its points carry the file's current hash and they are exactly chunks
``0 .. chunk_count-1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.retrieval.chunk_record import CHUNK_COUNT, CHUNK_INDEX, CHUNKING, CONTENT_HASH, SOURCE
from server.retrieval.store import VectorStore
from server.retrieval.types import FilterValue

MANIFEST_FIELDS = (SOURCE, CHUNK_INDEX, CONTENT_HASH, CHUNK_COUNT, CHUNKING)
"""The payload keys the manifest reads (not the chunk texts: most of a payload's bytes)."""


@dataclass
class SourceState:
    """The points one source has in the store."""

    hashes: set[str] = field(default_factory=set)
    chunk_counts: set[int] = field(default_factory=set)
    indexes: set[int] = field(default_factory=set)
    chunkings: set[str] = field(default_factory=set)
    """The ``chunking`` values stored ("" for points written before the field existed)."""
    points: int = 0

    def is_complete(
        self, content_hash: str, chunking: str | None = None, *, unrecorded_ok: bool = True
    ) -> bool:
        """True when the stored chunks are exactly one finished ingest of ``content_hash``,
        cut by ``chunking`` when it is given (points without the field count as cut by it when
        ``unrecorded_ok``: the chunker has not changed since they were written)."""
        if self.hashes != {content_hash} or len(self.chunk_counts) != 1:
            return False
        if chunking is not None:
            accepted = {chunking, ""} if unrecorded_ok else {chunking}
            if len(self.chunkings) != 1 or not self.chunkings <= accepted:
                return False
        (expected,) = self.chunk_counts
        return self.points == expected and self.indexes == set(range(expected))


def load_manifest(
    store: VectorStore,
    collection: str,
    tenant: str,
    filters: Mapping[str, FilterValue] | None = None,
) -> dict[str, SourceState]:
    """Per-source state of one tenant's points in ``collection`` (one paged scroll)."""
    states: dict[str, SourceState] = {}
    if not store.has_collection(collection):
        return states
    offset: str | int | None = None
    while True:
        page, offset = store.scroll(
            collection, tenant, filters, limit=2048, offset=offset, fields=MANIFEST_FIELDS
        )
        for point in page:
            payload = point.payload
            source = str(payload.get(SOURCE, ""))
            state = states.setdefault(source, SourceState())
            state.points += 1
            if CONTENT_HASH in payload:
                state.hashes.add(str(payload[CONTENT_HASH]))
            if CHUNK_COUNT in payload:
                state.chunk_counts.add(int(payload[CHUNK_COUNT]))
            state.chunkings.add(str(payload.get(CHUNKING, "")))
            state.indexes.add(int(payload.get(CHUNK_INDEX, -1)))
        if offset is None:
            return states
