"""Hybrid retrieval: dense + BM25 prefetch under the tenant filter, fused in Qdrant, reranked.

Data flows one way: caller -> pipeline -> (embedder, sparse encoder, store, reranker) -> hits.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from server.errors import InvalidRequestError
from server.retrieval.duplicates import collapse_duplicates
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.filter_fields import (
    PATH_PREFIXES_FIELD,
    SECTION_PREFIXES_FIELD,
    derived_filter_fields,
)
from server.retrieval.length_stats import (
    TenantLengths,
    encoded_avg_value,
    length_deltas,
    tenant_lengths,
)
from server.retrieval.passages import split_sentences
from server.retrieval.query_routing import fusion_for
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.sparse import SparseEncoder, normalize_text
from server.retrieval.store import (
    BASE_PAYLOAD_INDEXES,
    TENANT_FIELD,
    HybridQuery,
    IndexKind,
    QueryResponse,
    ScoredPoint,
    StoredPoint,
    VectorStore,
    point_id,
)
from server.retrieval.types import (
    SEARCH_MODES,
    Chunk,
    FilterValue,
    Hit,
    IndexReport,
    SearchMode,
    SearchResult,
    StageScores,
    Timings,
)
from server.settings import Domain, DomainSettings, Settings
from server.tenants import validate_tenant

logger = logging.getLogger(__name__)

NO_QUERY_TERMS = (
    "the query has no keyword terms once stopwords and punctuation are removed: ranked by "
    "meaning alone"
)
NO_QUERY_TERMS_BM25 = (
    "the query has no keyword terms once stopwords and punctuation are removed: nothing to match"
)
NO_KEYWORD_MATCH = (
    "no indexed passage contains any of the query's keywords: ranked by meaning alone"
)
NO_KEYWORD_MATCH_BM25 = "no indexed passage contains any of the query's keywords"

AVG_LEN_DRIFT = 0.2
"""Re-encode a tenant's stored BM25 vectors when its average length moves this much."""

DOMAIN_PAYLOAD_INDEXES: dict[Domain, dict[str, IndexKind]] = {
    Domain.DOCS: {"doc_type": "keyword", "tags": "keyword", PATH_PREFIXES_FIELD: "keyword"},
    Domain.LEGAL: {
        "doc_type": "keyword",
        "tags": "keyword",
        "jurisdiction": "keyword",
        PATH_PREFIXES_FIELD: "keyword",
        SECTION_PREFIXES_FIELD: "keyword",
    },
    Domain.CODE: {"language": "keyword", "symbol_kind": "keyword", PATH_PREFIXES_FIELD: "keyword"},
}
"""Filterable metadata per domain; payload indexes are derived from this declaration."""

ProgressCallback = Callable[[int], None]

MAX_PARTS = 16
"""Most part vectors per chunk: longer chunks get proportionally larger sentence groups."""
DEFAULT_PART_SENTENCES = 2
"""Group size for a collection that has part vectors while its domain setting is 0."""


def part_texts(text: str, sentences_per_part: int) -> list[str]:
    """A chunk's sentences in groups of ``sentences_per_part`` (at most MAX_PARTS groups).

    One group or none means the chunk is its own only part (its vector is reused).
    """
    sentences = split_sentences(text)
    size = max(sentences_per_part, -(-len(sentences) // MAX_PARTS), 1)
    groups = [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]
    return groups if len(groups) > 1 else []


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


class RetrievalPipeline:
    """Per-domain hybrid index and search over one store."""

    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        embedder: DenseEmbedder,
        reranker: CrossEncoderReranker | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self._encoders: dict[Domain, SparseEncoder] = {}
        self._part_collections: set[str] = set()
        self._warned_no_parts: set[str] = set()

    # -- helpers -------------------------------------------------------------------------------

    def domain_settings(self, domain: str | Domain) -> tuple[Domain, DomainSettings]:
        """Validated domain name and its settings."""
        try:
            name = Domain(domain)
        except ValueError:
            valid = ", ".join(d.value for d in Domain)
            raise InvalidRequestError(
                f"unknown domain {domain!r}; expected one of: {valid}"
            ) from None
        return name, self.settings.domains[name]

    def sparse_encoder(self, domain: Domain) -> SparseEncoder:
        """The domain's BM25 analyzer (built once)."""
        encoder = self._encoders.get(domain)
        if encoder is None:
            encoder = SparseEncoder(self.settings.domains[domain].bm25)
            self._encoders[domain] = encoder
        return encoder

    @staticmethod
    def _keyword_text(title: str, text: str) -> str:
        return f"{title}\n{text}" if title else text

    def _dense_text(self, settings: DomainSettings, title: str, text: str) -> str:
        """What the bi-encoder and cross-encoder read: NFKC-normalised like every query, so
        full-width letters, ligatures and decomposed accents meet the model's vocabulary."""
        return normalize_text(self._keyword_text(title, text) if settings.title_in_dense else text)

    def _has_parts(self, collection: str) -> bool:
        """Whether the collection carries part vectors (cached once true)."""
        if collection in self._part_collections:
            return True
        if self.store.has_part_vectors(collection):
            self._part_collections.add(collection)
            return True
        return False

    def _parts_in_queries(self, settings: DomainSettings) -> bool:
        if settings.part_sentences <= 0:
            return False
        if self._has_parts(settings.collection):
            return True
        if settings.collection not in self._warned_no_parts:
            self._warned_no_parts.add(settings.collection)
            logger.warning(
                "collection %r was created without part vectors: searching it with chunk "
                "vectors only (delete it and re-ingest to use part_sentences)",
                settings.collection,
            )
        return False

    def texts_to_embed(
        self, domain: str | Domain, chunks: Sequence[Chunk], *, with_parts: bool | None = None
    ) -> tuple[list[str], list[list[str]]]:
        """The chunk texts and each chunk's part texts that indexing embeds.

        ``with_parts`` defaults to the domain setting (the bench's raw-encode baseline uses
        this, so both sides encode the same texts).
        """
        _, settings = self.domain_settings(domain)
        if with_parts is None:
            with_parts = settings.part_sentences > 0
        texts = [self._dense_text(settings, c.title, c.text) for c in chunks]
        if not with_parts:
            return texts, [[] for _ in chunks]
        size = settings.part_sentences or DEFAULT_PART_SENTENCES
        return texts, [part_texts(normalize_text(c.text), size) for c in chunks]

    def _embed_batch(
        self, domain: Domain, batch: Sequence[Chunk], with_parts: bool
    ) -> tuple[list[list[float]], list[list[list[float]] | None]]:
        """Chunk vectors and, with parts, each chunk's part vectors: one encode call for all."""
        texts, groups = self.texts_to_embed(domain, batch, with_parts=with_parts)
        vectors = self.embedder.embed_documents(texts + [t for g in groups for t in g])
        dense = [v.tolist() for v in vectors[: len(batch)]]
        if not with_parts:
            return dense, [None] * len(batch)
        parts: list[list[list[float]] | None] = []
        offset = len(batch)
        for i, group in enumerate(groups):
            if group:
                parts.append([v.tolist() for v in vectors[offset : offset + len(group)]])
            else:  # a chunk of one sentence group is its own part
                parts.append([dense[i]])
            offset += len(group)
        return dense, parts

    # -- indexing ------------------------------------------------------------------------------

    def index(
        self,
        domain: str | Domain,
        chunks: Sequence[Chunk],
        *,
        batch_size: int = 256,
        progress: ProgressCallback | None = None,
    ) -> IndexReport:
        """Embed and upsert chunks (dense + BM25 + payload); ids are deterministic.

        BM25 vectors are encoded with each tenant's own average length (see length_stats.py):
        chunks of several tenants are indexed tenant by tenant.
        """
        started = time.perf_counter()
        name, settings = self.domain_settings(domain)
        collection = settings.collection
        indexes = {**BASE_PAYLOAD_INDEXES, **DOMAIN_PAYLOAD_INDEXES[name]}
        self.store.ensure_collection(
            collection,
            self.embedder.dimension,
            indexes,
            part_vectors=settings.part_sentences > 0,
        )
        by_tenant: dict[str, list[Chunk]] = defaultdict(list)
        for chunk in chunks:
            by_tenant[chunk.tenant].append(chunk)
        for tenant in by_tenant:
            validate_tenant(tenant)
        done = reencoded = 0
        avg_len = 1.0
        for tenant, tenant_chunks in by_tenant.items():
            avg_len, tenant_reencoded = self._index_tenant(
                name, collection, tenant, tenant_chunks, batch_size, progress
            )
            done += len(tenant_chunks)
            reencoded += tenant_reencoded
        self.store.finish_writes(collection)
        return IndexReport(
            collection=collection,
            chunks=done,
            seconds=round(time.perf_counter() - started, 3),
            avg_len=round(avg_len, 3),
            reencoded=reencoded,
        )

    def _index_tenant(
        self,
        name: Domain,
        collection: str,
        tenant: str,
        chunks: Sequence[Chunk],
        batch_size: int,
        progress: ProgressCallback | None,
    ) -> tuple[float, int]:
        """Index one tenant's chunks; (the average length they were encoded with, re-encoded)."""
        with_parts = self._has_parts(collection)
        encoder = self.sparse_encoder(name)
        ids = [point_id(tenant, name.value, c.source, c.chunk_index) for c in chunks]
        lengths = [encoder.count_tokens(self._keyword_text(c.title, c.text)) for c in chunks]
        before = self._length_stats(collection, tenant)
        replaced = self._existing_lengths(collection, tenant, ids)
        points = before.points - len(replaced) + len(chunks)
        total_len = before.total_len - sum(replaced.values()) + sum(lengths)
        avg_len = total_len / points if points else 1.0
        encoded_avg = before.encoded_avg_len or avg_len
        reencoded = 0
        if before.points and abs(avg_len - encoded_avg) / encoded_avg > AVG_LEN_DRIFT:
            reencoded = self._reencode_sparse(name, collection, tenant, avg_len)
            encoded_avg = avg_len
        elif not before.points:
            encoded_avg = avg_len
        if chunks and encoded_avg != before.encoded_avg_len:
            self.store.adjust_meta(collection, {}, encoded_avg_value(tenant, encoded_avg))

        for offset in range(0, len(chunks), batch_size):
            batch = chunks[offset : offset + batch_size]
            dense, parts = self._embed_batch(name, batch, with_parts)
            stored = [
                StoredPoint(
                    id=ids[offset + i],
                    dense=dense[i],
                    sparse=encoder.encode_document(
                        self._keyword_text(c.title, c.text), encoded_avg
                    ),
                    payload=self._payload(c, lengths[offset + i]),
                    parts=parts[i],
                )
                for i, c in enumerate(batch)
            ]
            gone = [replaced[p.id] for p in stored if p.id in replaced]
            deltas = length_deltas(
                tenant,
                len(stored) - len(gone),
                float(sum(lengths[offset : offset + len(batch)]) - sum(gone)),
            )
            # the batch and its share of the length statistics land together: a crash or a
            # concurrent indexer can neither split nor overwrite them
            self.store.upsert(collection, stored, meta_deltas=deltas)
            if progress is not None:
                progress(len(batch))
        return encoded_avg, reencoded

    @staticmethod
    def _payload(chunk: Chunk, bm25_len: int) -> dict[str, Any]:
        payload: dict[str, Any] = dict(chunk.metadata)
        payload.update(derived_filter_fields(chunk.source, chunk.metadata))
        payload.update(
            tenant=chunk.tenant,
            doc_id=chunk.doc_id,
            source=chunk.source,
            chunk_index=chunk.chunk_index,
            title=chunk.title,
            text=chunk.text,
            bm25_len=bm25_len,
        )
        return payload

    def _existing_lengths(
        self, collection: str, tenant: str, ids: Sequence[str]
    ) -> dict[str, float]:
        """BM25 length of each stored point of ``tenant`` these ids will overwrite, by id."""
        found: dict[str, float] = {}
        for start in range(0, len(ids), 1024):
            batch = self.store.retrieve(collection, tenant, ids[start : start + 1024])
            found.update((p.id, float(p.payload.get("bm25_len", 0))) for p in batch)
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

    def _tally_lengths(self, collection: str, tenant: str) -> tuple[int, float]:
        """Point count and summed BM25 length over the tenant's points (one scroll)."""
        points, total = 0, 0.0
        offset: str | int | None = None
        while True:
            page, offset = self.store.scroll(collection, tenant, limit=1024, offset=offset)
            points += len(page)
            total += sum(float(p.payload.get("bm25_len", 0)) for p in page)
            if offset is None:
                return points, total

    def _reencode_sparse(self, domain: Domain, collection: str, tenant: str, avg_len: float) -> int:
        """Recompute the tenant's stored BM25 vectors for its new average length (from the
        payload text); no other tenant's vector changes."""
        encoder = self.sparse_encoder(domain)
        offset: str | int | None = None
        updated = 0
        while True:
            page, offset = self.store.scroll(collection, tenant, limit=512, offset=offset)
            vectors = [
                (
                    p.id,
                    encoder.encode_document(
                        self._keyword_text(p.payload.get("title", ""), p.payload.get("text", "")),
                        avg_len,
                    ),
                )
                for p in page
            ]
            self.store.update_sparse(collection, vectors)
            updated += len(vectors)
            if offset is None:
                break
        logger.info("re-encoded %d BM25 vectors in %s (avg_len %.1f)", updated, collection, avg_len)
        return updated

    def delete(
        self, domain: str | Domain, tenant: str, filters: Mapping[str, FilterValue] | None = None
    ) -> int:
        """Delete a tenant's points (optionally only those matching filters); returns count."""
        validate_tenant(tenant)
        _, settings = self.domain_settings(domain)
        collection = settings.collection
        if not self.store.has_collection(collection):
            return 0
        removed, removed_len = 0, 0.0
        offset: str | int | None = None
        while True:
            page, offset = self.store.scroll(collection, tenant, filters, limit=1024, offset=offset)
            removed += len(page)
            removed_len += sum(float(p.payload.get("bm25_len", 0)) for p in page)
            if offset is None:
                break
        if not removed:
            return 0
        deltas = length_deltas(tenant, -removed, -removed_len)
        self.store.delete(collection, tenant, filters, meta_deltas=deltas)
        self.store.finish_writes(collection)
        return removed

    # -- search --------------------------------------------------------------------------------

    def validate_query(self, query: str, top_k: int, tenant: str) -> str:
        """Normalised query text, or InvalidRequestError with a readable reason."""
        validate_tenant(tenant)
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequestError("the query is empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidRequestError(
                f"the query has {len(query)} characters; the limit is "
                f"{self.settings.max_query_chars}"
            )
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise InvalidRequestError("top_k must be an integer")
        if not 1 <= top_k <= self.settings.max_top_k:
            raise InvalidRequestError(
                f"top_k must be between 1 and {self.settings.max_top_k}, got {top_k}"
            )
        return query.strip()

    def search(
        self,
        query: str,
        *,
        domain: str | Domain,
        tenant: str,
        top_k: int = 10,
        filters: Mapping[str, FilterValue] | None = None,
        mode: SearchMode = "hybrid+rerank",
    ) -> SearchResult:
        """Validated hybrid search for one tenant; top_k is capped by settings.max_top_k."""
        text = self.validate_query(query, top_k, tenant)
        return self.rank(
            text, domain=domain, tenant=tenant, limit=top_k, filters=filters, mode=mode
        )

    def rank(
        self,
        query: str,
        *,
        domain: str | Domain,
        tenant: str,
        limit: int,
        filters: Mapping[str, FilterValue] | None = None,
        mode: SearchMode = "hybrid+rerank",
    ) -> SearchResult:
        """The ranking itself, without the interactive caps (the eval asks for 100+ hits)."""
        if mode not in SEARCH_MODES:
            raise InvalidRequestError(f"unknown mode {mode!r}; expected one of {SEARCH_MODES}")
        validate_tenant(tenant)
        started = time.perf_counter()
        name, settings = self.domain_settings(domain)
        timings = Timings()
        fusion, keyword_reason = fusion_for(settings, query)
        fusion_label = (
            "dbsf"
            if fusion.method == "dbsf"
            else f"rrf(k={fusion.rrf_k}, weights=[{fusion.dense_weight}, {fusion.sparse_weight}])"
        )
        if keyword_reason:
            fusion_label += f" (keyword query: {keyword_reason})"
        if mode in ("bm25", "dense"):
            fusion_label = "none"
        want_rerank = mode == "hybrid+rerank" and settings.rerank_depth > 0
        result = SearchResult(
            query=query,
            domain=name.value,
            mode=mode,
            hits=[],
            fusion=fusion_label,
            rerank_applied=False,
            rerank_model=self.reranker.model_id if self.reranker and want_rerank else None,
        )
        if not self.store.has_collection(settings.collection):
            timings.total_ms = _elapsed_ms(started)
            result.timings = timings
            return result

        dense = sparse = None
        if mode != "bm25":
            t = time.perf_counter()
            dense = self.embedder.embed_query(normalize_text(query))
            timings.embed_ms = _elapsed_ms(t)
        if mode != "dense":
            t = time.perf_counter()
            sparse = self.sparse_encoder(name).encode_query(query)
            timings.sparse_ms = _elapsed_ms(t)
            if not sparse.indices:
                sparse = None
                result.notes.append(NO_QUERY_TERMS if dense is not None else NO_QUERY_TERMS_BM25)
                if dense is None:
                    timings.total_ms = _elapsed_ms(started)
                    result.timings = timings
                    return result
        depth = max(limit, settings.rerank_depth if want_rerank else 0)
        collapse = self.settings.collapse_duplicates
        # room for copies that collapse away, so they do not shorten the list (the fused list
        # may be longer than each stage's: it draws on both)
        fetch = max(depth, 2 * limit) if collapse else depth
        request = HybridQuery(
            tenant=tenant,
            limit=fetch,
            candidates=max(settings.candidates, depth),
            dense=dense,
            sparse=sparse,
            fusion=fusion,
            filters=dict(filters or {}),
            part_weight=settings.part_weight
            if dense is not None and self._parts_in_queries(settings)
            else None,
            hnsw_ef=settings.hnsw_ef,
        )
        t = time.perf_counter()
        response = self.store.query(settings.collection, request)
        hits = self._hits(response, mode)
        if collapse:
            hits = collapse_duplicates(hits)
            if len(hits) < depth and len(response.final) == request.limit:
                # so many copies that the list ran short: once more, as deep as the stages go
                deeper = replace(request, limit=2 * request.candidates)
                response = self.store.query(settings.collection, deeper)
                hits = collapse_duplicates(self._hits(response, mode))
        timings.search_ms = _elapsed_ms(t)
        if sparse is not None and not response.sparse and (response.final or dense is None):
            result.notes.append(NO_KEYWORD_MATCH if dense is not None else NO_KEYWORD_MATCH_BM25)
        hits = hits[:depth]

        if want_rerank:
            t = time.perf_counter()
            hits = self._rerank(query, settings, hits, result)
            timings.rerank_ms = _elapsed_ms(t)
        result.hits = hits[:limit]
        timings.total_ms = _elapsed_ms(started)
        result.timings = timings
        return result

    @staticmethod
    def _hits(response: QueryResponse, mode: SearchMode) -> list[Hit]:
        """Hits in score order, equal scores by point id: the store's order among ties depends
        on its segment layout, which other tenants' writes change."""
        dense_ranks = {p.id: (i + 1, p.score) for i, p in enumerate(_by_score(response.dense))}
        sparse_ranks = {p.id: (i + 1, p.score) for i, p in enumerate(_by_score(response.sparse))}
        hits: list[Hit] = []
        for rank, point in enumerate(_by_score(response.final), start=1):
            stages = StageScores()
            if point.id in dense_ranks:
                stages.dense_rank, stages.dense = dense_ranks[point.id]
            if point.id in sparse_ranks:
                stages.sparse_rank, stages.sparse = sparse_ranks[point.id]
            if mode in ("hybrid", "hybrid+rerank"):
                stages.fused, stages.fused_rank = point.score, rank
            hits.append(_hit_from_point(point, point.score, stages))
        return hits

    def _rerank(
        self, query: str, settings: DomainSettings, hits: list[Hit], result: SearchResult
    ) -> list[Hit]:
        reranker = self.reranker
        if reranker is None:
            result.rerank_note = "reranking is disabled (RETRIEVAL_RERANKER_MODEL=none)"
            return hits
        if not reranker.available:
            result.rerank_note = reranker.unavailable_reason
            return hits
        head, tail = hits[: settings.rerank_depth], hits[settings.rerank_depth :]
        scores = reranker.score(
            normalize_text(query), [self._dense_text(settings, h.title, h.text) for h in head]
        )
        order = sorted(range(len(head)), key=lambda i: scores[i], reverse=True)
        reranked: list[Hit] = []
        for rank, i in enumerate(order, start=1):
            hit = head[i]
            hit.stages.rerank, hit.stages.rerank_rank = scores[i], rank
            hit.score = scores[i]
            reranked.append(hit)
        result.rerank_applied = True
        return reranked + tail


def _by_score(points: Sequence[ScoredPoint]) -> list[ScoredPoint]:
    return sorted(points, key=lambda p: (-p.score, p.id))


def _hit_from_point(point: ScoredPoint, score: float, stages: StageScores) -> Hit:
    payload = dict(point.payload)
    core = {
        key: payload.pop(key, None)
        for key in (TENANT_FIELD, "doc_id", "source", "chunk_index", "title", "text", "bm25_len")
    }
    for derived in (PATH_PREFIXES_FIELD, SECTION_PREFIXES_FIELD):  # filter plumbing, not metadata
        payload.pop(derived, None)
    return Hit(
        id=point.id,
        doc_id=str(core["doc_id"] or ""),
        source=str(core["source"] or ""),
        chunk_index=int(core["chunk_index"] or 0),
        title=str(core["title"] or ""),
        text=str(core["text"] or ""),
        metadata=payload,
        score=score,
        stages=stages,
    )
