"""The write side: chunk records to dense and BM25 vectors to points, and deletes.

Used alike by ``ingest``, ``index``, the evaluation and the tests. BM25 vectors are encoded
with each tenant's own average length (length_stats.py), so chunks of several tenants are
indexed tenant by tenant, and every batch lands together with its share of the tenant's length
statistics (one store call): a crash or a concurrent writer can neither split nor overwrite
them. Point ids are deterministic (tenant, domain, source, chunk index): re-indexing a chunk
replaces it.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from server.errors import StoreError
from server.retrieval import chunk_record
from server.retrieval.analysis import (
    DEFAULT_PART_SENTENCES,
    DomainAnalysis,
    chunk_keyword_text,
    dense_text,
    part_texts,
    resolve_domain,
)
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.length_stats import (
    TenantLengths,
    encoded_avg_value,
    length_deltas,
    tenant_lengths,
)
from server.retrieval.sparse import SparseEncoder, normalize_text
from server.retrieval.store import StoredPoint, StoredVectors, VectorStore, point_id
from server.retrieval.types import Chunk, FilterValue, IndexReport
from server.settings import Domain, Settings
from server.tenants import validate_tenant

logger = logging.getLogger(__name__)

AVG_LEN_DRIFT = 0.2
"""Re-encode a tenant's stored BM25 vectors when its average length moves this much."""
RETRIEVE_BATCH = 1024
SCROLL_PAGE = 1024
REENCODE_PAGE = 512

ProgressCallback = Callable[[int], None]


@dataclass
class _TenantBatch:
    """One tenant's chunks in one collection, with their ids and BM25 lengths."""

    domain: Domain
    collection: str
    tenant: str
    chunks: Sequence[Chunk]
    ids: list[str]
    lengths: list[int]


class Indexer:
    """Writes chunks of any tenant and domain into one store."""

    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        embedder: DenseEmbedder,
        analysis: DomainAnalysis | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.analysis = analysis or DomainAnalysis(settings, store)

    def texts_to_embed(
        self, domain: str | Domain, chunks: Sequence[Chunk], *, with_parts: bool | None = None
    ) -> tuple[list[str], list[list[str]]]:
        """The chunk texts and each chunk's part texts that indexing embeds.

        ``with_parts`` defaults to the domain setting (the bench's raw-encode baseline uses
        this, so both sides encode the same texts).
        """
        _, settings = resolve_domain(self.settings, domain)
        if with_parts is None:
            with_parts = settings.part_sentences > 0
        texts = [dense_text(settings, c.title, c.text) for c in chunks]
        if not with_parts:
            return texts, [[] for _ in chunks]
        size = settings.part_sentences or DEFAULT_PART_SENTENCES
        return texts, [part_texts(normalize_text(c.text), size) for c in chunks]

    def _embed_batch(
        self,
        domain: Domain,
        batch: Sequence[Chunk],
        with_parts: bool,
        stored: Mapping[str, StoredVectors] | None = None,
    ) -> tuple[list[list[float]], list[list[list[float]] | None], int]:
        """Chunk vectors and, with parts, each chunk's part vectors: one encode call for all
        the chunks whose embedded text ``stored`` (by that text) holds no vectors for; the
        others take the stored ones. Also how many did."""
        texts, groups = self.texts_to_embed(domain, batch, with_parts=with_parts)
        found = [
            _reusable(stored, text, group, with_parts)
            for text, group in zip(texts, groups, strict=True)
        ]
        fresh = [i for i, hit in enumerate(found) if hit is None]
        encode = [texts[i] for i in fresh] + [t for i in fresh for t in groups[i]]
        vectors = self.embedder.embed_documents(encode) if encode else np.empty((0, 0))
        dense: list[list[float]] = [[] for _ in batch]
        parts: list[list[list[float]] | None] = [None] * len(batch)
        offset = len(fresh)
        for k, i in enumerate(fresh):
            dense[i] = vectors[k].tolist()
            if with_parts:
                group = groups[i]
                # a chunk of one sentence group is its own part
                own = [v.tolist() for v in vectors[offset : offset + len(group)]] or [dense[i]]
                parts[i] = own
                offset += len(group)
        for i, hit in enumerate(found):
            if hit is not None:
                dense[i] = hit.dense
                parts[i] = hit.parts if with_parts else None
        return dense, parts, len(batch) - len(fresh)

    def index(
        self,
        domain: str | Domain,
        chunks: Sequence[Chunk],
        *,
        batch_size: int = 256,
        progress: ProgressCallback | None = None,
        previous: Mapping[str, Sequence[int]] | None = None,
    ) -> IndexReport:
        """Embed and upsert chunks (dense + BM25 + payload), tenant by tenant.

        ``progress`` is called with the number of chunks of each batch written. ``previous``:
        the chunk indexes each source being rewritten has in the store; a new chunk whose
        embedded text (title and text) one of them holds takes its stored vectors instead of
        being embedded again (an edit to a long file re-embeds the chunks it changed). Raises
        InvalidRequestError for an unknown domain or a tenant name that breaks the tenant rule.
        """
        started = time.perf_counter()
        name, settings = resolve_domain(self.settings, domain)
        collection = settings.collection
        self.store.ensure_collection(
            collection,
            self.embedder.dimension,
            chunk_record.payload_indexes(name),
            part_vectors=settings.part_sentences > 0,
        )
        by_tenant: dict[str, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            by_tenant[chunk.tenant].append(chunk)
        for tenant in by_tenant:
            validate_tenant(tenant)
        done = reencoded = reused = 0
        avg_len = 1.0
        for tenant, tenant_chunks in by_tenant.items():
            batch = self._tenant_batch(name, collection, tenant, tenant_chunks)
            stored = self._stored_vectors(batch, previous or {})
            avg_len, tenant_reencoded, tenant_reused = self._index_tenant(
                batch, batch_size, progress, stored
            )
            done += len(tenant_chunks)
            reencoded += tenant_reencoded
            reused += tenant_reused
        self.store.finish_writes(collection)
        return IndexReport(
            collection=collection,
            chunks=done,
            seconds=round(time.perf_counter() - started, 3),
            avg_len=round(avg_len, 3),
            reencoded=reencoded,
            reused=reused,
        )

    def _tenant_batch(
        self, domain: Domain, collection: str, tenant: str, chunks: Sequence[Chunk]
    ) -> _TenantBatch:
        encoder = self.analysis.sparse_encoder(domain)
        return _TenantBatch(
            domain=domain,
            collection=collection,
            tenant=tenant,
            chunks=chunks,
            ids=[point_id(tenant, domain.value, c.source, c.chunk_index) for c in chunks],
            lengths=[
                encoder.count_tokens(chunk_keyword_text(c.title, c.text, c.metadata))
                for c in chunks
            ],
        )

    def _encoding_length(
        self, batch: _TenantBatch, replaced: Mapping[str, float]
    ) -> tuple[float, int]:
        """The average BM25 length to encode this batch with, and how many stored vectors were
        re-encoded because the tenant's average drifted by more than AVG_LEN_DRIFT."""
        before = self._length_stats(batch.collection, batch.tenant)
        points = before.points - len(replaced) + len(batch.chunks)
        total_len = before.total_len - sum(replaced.values()) + sum(batch.lengths)
        avg_len = total_len / points if points else 1.0
        encoded_avg = before.encoded_avg_len or avg_len
        reencoded = 0
        if before.points and _drifted(avg_len, encoded_avg):
            reencoded = self._reencode_sparse(batch.domain, batch.collection, batch.tenant, avg_len)
            encoded_avg = avg_len
        elif not before.points:
            encoded_avg = avg_len
        if batch.chunks and encoded_avg != before.encoded_avg_len:
            deltas = encoded_avg_value(batch.tenant, encoded_avg)
            self.store.adjust_meta(batch.collection, {}, deltas)
        return encoded_avg, reencoded

    def _stored_vectors(
        self, batch: _TenantBatch, previous: Mapping[str, Sequence[int]]
    ) -> dict[str, StoredVectors]:
        """The stored vectors of the previous chunks of the batch's sources, by the text they
        were embedded from; {} when the store cannot say (an owner process of an older
        version)."""
        _, settings = resolve_domain(self.settings, batch.domain)
        sources = dict.fromkeys(c.source for c in batch.chunks if c.source in previous)
        ids = [
            point_id(batch.tenant, batch.domain.value, source, index)
            for source in sources
            for index in previous[source]
        ]
        found: dict[str, StoredVectors] = {}
        for start in range(0, len(ids), RETRIEVE_BATCH):
            try:
                page = self.store.vectors(
                    batch.collection, batch.tenant, ids[start : start + RETRIEVE_BATCH]
                )
            except StoreError as exc:
                logger.debug("stored vectors not read, every chunk is embedded: %s", exc)
                return {}
            for point in page:
                title = str(point.payload.get(chunk_record.TITLE) or "")
                text = str(point.payload.get(chunk_record.TEXT) or "")
                found[dense_text(settings, title, text)] = point
        return found

    def _index_tenant(
        self,
        batch: _TenantBatch,
        batch_size: int,
        progress: ProgressCallback | None,
        stored_vectors: Mapping[str, StoredVectors],
    ) -> tuple[float, int, int]:
        """Index one tenant's chunks; (the average length they were encoded with, re-encoded,
        how many took stored vectors)."""
        with_parts = self.analysis.has_parts(batch.collection)
        encoder = self.analysis.sparse_encoder(batch.domain)
        replaced = self._existing_lengths(batch.collection, batch.tenant, batch.ids)
        encoded_avg, reencoded = self._encoding_length(batch, replaced)
        reused = 0
        for offset in range(0, len(batch.chunks), batch_size):
            chunks = batch.chunks[offset : offset + batch_size]
            stored, taken = self._points(
                batch, offset, chunks, encoder, encoded_avg, with_parts, stored_vectors
            )
            reused += taken
            gone = [replaced[p.id] for p in stored if p.id in replaced]
            added_len = float(sum(batch.lengths[offset : offset + len(chunks)]) - sum(gone))
            deltas = length_deltas(batch.tenant, len(stored) - len(gone), added_len)
            self.store.upsert(batch.collection, stored, meta_deltas=deltas)
            if progress is not None:
                progress(len(chunks))
        return encoded_avg, reencoded, reused

    def _points(
        self,
        batch: _TenantBatch,
        offset: int,
        chunks: Sequence[Chunk],
        encoder: SparseEncoder,
        avg_len: float,
        with_parts: bool,
        stored: Mapping[str, StoredVectors],
    ) -> tuple[list[StoredPoint], int]:
        """The points of ``chunks`` (starting at ``offset`` in the tenant batch), and how many
        took ``stored`` vectors."""
        dense, parts, reused = self._embed_batch(batch.domain, chunks, with_parts, stored)
        points = [
            StoredPoint(
                id=batch.ids[offset + i],
                dense=dense[i],
                sparse=encoder.encode_document(
                    chunk_keyword_text(c.title, c.text, c.metadata), avg_len
                ),
                payload=chunk_record.to_payload(c, batch.lengths[offset + i]),
                parts=parts[i],
            )
            for i, c in enumerate(chunks)
        ]
        return points, reused

    def _existing_lengths(
        self, collection: str, tenant: str, ids: Sequence[str]
    ) -> dict[str, float]:
        """BM25 length of each stored point of ``tenant`` these ids will overwrite, by id."""
        found: dict[str, float] = {}
        for start in range(0, len(ids), RETRIEVE_BATCH):
            batch = self.store.retrieve(collection, tenant, ids[start : start + RETRIEVE_BATCH])
            found.update((p.id, chunk_record.bm25_len(p.payload)) for p in batch)
        return found

    def _length_stats(self, collection: str, tenant: str) -> TenantLengths:
        """The tenant's BM25 length statistics, recounted when they are off.

        Cheap check first: the recorded point count against the store's exact count of the
        tenant's points. They disagree only after an interrupted write (kill -9 between a batch
        and its statistics), a delta repeated after losing the store owner, writers in other
        processes of a Qdrant server, or a store written before per-tenant statistics; then one
        scroll over the tenant's payloads recounts them.
        """
        meta = self.store.read_meta(collection)
        recorded = tenant_lengths(meta, tenant)
        stored = self.store.count(collection, tenant)
        if recorded.points == stored:
            return recorded
        points, total = self._tally_lengths(collection, tenant)
        if tenant_lengths(self.store.read_meta(collection), tenant) != recorded:
            # another writer changed the statistics meanwhile, so the tally may already be
            # stale; leave them for the next run's check rather than overwrite its update
            logger.info("BM25 length statistics of %s change under a recount", collection)
            return tenant_lengths(self.store.read_meta(collection), tenant)
        logger.warning(
            "BM25 length statistics of %s for one tenant were off (%d points recorded, %d "
            "stored); recounted",
            collection,
            recorded.points,
            points,
        )
        deltas = length_deltas(tenant, points - recorded.points, total - recorded.total_len)
        return tenant_lengths(self.store.adjust_meta(collection, deltas), tenant)

    def _tally_lengths(
        self, collection: str, tenant: str, filters: Mapping[str, FilterValue] | None = None
    ) -> tuple[int, float]:
        """Point count and summed BM25 length over the tenant's (matching) points, one scroll."""
        points, total = 0, 0.0
        offset: str | int | None = None
        while True:
            page, offset = self.store.scroll(
                collection, tenant, filters, limit=SCROLL_PAGE, offset=offset
            )
            points += len(page)
            total += sum(chunk_record.bm25_len(p.payload) for p in page)
            if offset is None:
                return points, total

    def _reencode_sparse(self, domain: Domain, collection: str, tenant: str, avg_len: float) -> int:
        """Recompute the tenant's stored BM25 vectors for its new average length (from the
        payload text); no other tenant's vector changes."""
        encoder = self.analysis.sparse_encoder(domain)
        offset: str | int | None = None
        updated = 0
        while True:
            page, offset = self.store.scroll(collection, tenant, limit=REENCODE_PAGE, offset=offset)
            vectors = []
            for point in page:
                record = chunk_record.StoredRecord.from_point(point)
                text = chunk_keyword_text(record.title, record.text, record.metadata)
                vectors.append((point.id, encoder.encode_document(text, avg_len)))
            self.store.update_sparse(collection, tenant, vectors)
            updated += len(vectors)
            if offset is None:
                break
        logger.info("re-encoded %d BM25 vectors in %s (avg_len %.1f)", updated, collection, avg_len)
        return updated

    def delete(
        self, domain: str | Domain, tenant: str, filters: Mapping[str, FilterValue] | None = None
    ) -> int:
        """Delete a tenant's points (only those matching the store ``filters`` when given) and
        their share of the length statistics; returns how many points were deleted.

        When the deletion moves the tenant's average BM25 length more than
        :data:`AVG_LEN_DRIFT` from the average its vectors were encoded with, its remaining
        vectors are re-encoded, as an ingest that moves it does: deleting long documents must
        not leave the short ones scored against the long ones' average."""
        validate_tenant(tenant)
        name, settings = resolve_domain(self.settings, domain)
        collection = settings.collection
        if not self.store.has_collection(collection):
            return 0
        removed, removed_len = self._tally_lengths(collection, tenant, filters)
        if not removed:
            return 0
        deltas = length_deltas(tenant, -removed, -removed_len)
        self.store.delete(collection, tenant, filters, meta_deltas=deltas)
        after = self._length_stats(collection, tenant)
        if after.points and _drifted(after.avg_len, after.encoded_avg_len or after.avg_len):
            self._reencode_sparse(name, collection, tenant, after.avg_len)
            self.store.adjust_meta(collection, {}, encoded_avg_value(tenant, after.avg_len))
        self.store.finish_writes(collection)
        return removed


def _reusable(
    stored: Mapping[str, StoredVectors] | None, text: str, group: Sequence[str], with_parts: bool
) -> StoredVectors | None:
    """The stored vectors of a chunk whose embedded text is ``text``, when they are complete:
    a chunk vector, and with parts one part vector per sentence group (one when the chunk is a
    single group), as this indexing would make them."""
    hit = stored.get(text) if stored else None
    if hit is None or not hit.dense:
        return None
    if with_parts and (hit.parts is None or len(hit.parts) != max(1, len(group))):
        return None
    return hit


def _drifted(avg_len: float, encoded_avg: float) -> bool:
    """Whether a tenant's average BM25 length moved past :data:`AVG_LEN_DRIFT` from the average
    its stored vectors were encoded with."""
    return abs(avg_len - encoded_avg) / encoded_avg > AVG_LEN_DRIFT
