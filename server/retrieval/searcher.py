"""The read side: one search from request to ranked, cited hits.

A :class:`SearchRequest` states what the caller wants (query, domain, tenant, top_k, filters by
name, mode). :meth:`Searcher.search` owns everything between it and the
:class:`~server.retrieval.results.SearchResponse`:

1. limits (limits.py) and the tenant rule (tenants.py);
2. filters resolved into exact store conditions (request_filters.py: globs to file lists);
3. the query encoded: BM25 terms (sparse.py), then the dense vector (bi-encoder); a hybrid
   search's BM25 search runs on a worker thread while the query is embedded (run_ahead.py);
4. the fusion chosen for the query (query_routing.py) and one hybrid query to the store, which
   runs the plan (query_plan.py: dense searches under the tenant filter, the blend, and the
   fusion of the dense and BM25 lists, score_fusion.py);
5. stored points decoded into hits with citations (chunk_record.py), copies collapsed
   (duplicates.py), and the head reranked by the cross-encoder when one is loaded; for a query
   that is one name, the chunks defining it placed first (definitions.py);
6. with an output budget, the hits' texts trimmed around their best-matching sentences
   (trimming.py).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from server.errors import InvalidRequestError
from server.retrieval import chunk_record
from server.retrieval.analysis import DomainAnalysis, dense_text, resolve_domain
from server.retrieval.definitions import asked_name, definitions_first
from server.retrieval.duplicates import collapsed_head, passage_key
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.freshness import root_freshness
from server.retrieval.limits import Limits
from server.retrieval.query_batcher import QueryBatcher
from server.retrieval.query_routing import fusion_for
from server.retrieval.request_filters import resolve_filters, why_nothing_matches
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.results import (
    SearchHit,
    SearchResponse,
    StageScores,
    bound_copies,
    declare_once,
)
from server.retrieval.run_ahead import Ahead, RunAhead
from server.retrieval.sparse import SparseVector, normalize_text
from server.retrieval.store import HybridQuery, QueryResponse, ScoredPoint, VectorStore
from server.retrieval.trimming import trim_texts
from server.retrieval.types import SEARCH_MODES, FilterValue, SearchMode, SearchRequest
from server.settings import Domain, DomainSettings, FusionSettings, Settings
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
FILTERED = " among those the filters select"
"""Added to the keyword notes of a filtered search: the filter, not the index, may be why
nothing matched (the filter note, when it is the cause, says so)."""
DEFINITIONS_FIRST = (
    "definitions of {name} placed first ({n} moved ahead of hits that only use the name)"
)
"""The note of a one-name query whose definitions were moved ahead (definitions.py)."""
NOTHING_INDEXED = (
    "nothing is indexed for this tenant in the {domain} domain yet: ingest files first "
    "(retrieval-mcp ingest, or index_path where writes are enabled)"
)


@dataclass
class _Encoded:
    """The query as the two stages read it (None: the stage does not run), and the BM25 list
    when it was searched while the query was embedded."""

    dense: list[float] | None
    sparse: SparseVector | None
    sparse_found: Ahead[list[ScoredPoint]] | None = None


@dataclass(frozen=True)
class _Scope:
    """What one search asks of the store, fixed before the query is encoded."""

    tenant: str
    settings: DomainSettings
    fusion: FusionSettings
    conditions: Mapping[str, FilterValue]
    limit: int


def _nothing_indexed(domain: Domain) -> str:
    return NOTHING_INDEXED.format(domain=domain.value)


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 3)


SCORE_TIE = 6
"""Decimals to which scores are compared for ties, and shown in hits: copies of one text
embedded in different batches differ in the last float bits, not in anything a ranking can
mean."""


MAX_CANDIDATES = 1000
"""Deepest stage lists a search widens to when copies of one passage fill them (the
``candidates`` setting's own upper bound)."""


def _stages_full(stored: QueryResponse, candidates: int) -> bool:
    """Whether a stage returned as many candidates as asked: more may lie below them."""
    return len(stored.dense) >= candidates or len(stored.sparse) >= candidates


def trimmed_note(cut: int, total: int, budget: int) -> str:
    """The note of a response whose hit texts were trimmed to fit ``max_chars``."""
    return (
        f"{cut} of {total} hit texts trimmed around their best-matching sentences to fit "
        f"max_chars={budget}; get_chunk (or the hit's uri) has the whole text"
    )


def _by_score(
    points: Sequence[ScoredPoint], sources: Mapping[str, str] | None = None
) -> list[ScoredPoint]:
    """Score order. Equal scores (copies of one passage, mostly) go nearest the root first,
    then by source and point id: an archived or vendored copy sits deeper than the live one,
    and the store's own order among ties depends on its segment layout, which other tenants'
    writes change.
    ``sources``: point id -> source for points that carry no payload (the stage lists); a
    point with no known source (a copy the fused list cut off) goes after the known ones it
    ties with, as it comes after them in the fused list."""

    rounded = [round(p.score, SCORE_TIE) for p in points]
    if all(a > b for a, b in itertools.pairwise(rounded)):
        return list(points)  # the store's order, best first, without ties: nothing to place

    def key(point: ScoredPoint) -> tuple[float, bool, int, str, str]:
        return (-round(point.score, SCORE_TIE), *_place(point, sources))

    return sorted(points, key=key)


def _place(
    point: ScoredPoint, sources: Mapping[str, str] | None = None
) -> tuple[bool, int, str, str]:
    """Where a point's source sits, nearest the root first (then by path and point id); a
    point whose source is unknown last. Orders equal scores, and picks the copy of a passage
    a hit shows."""
    source = str((point.payload or {}).get(chunk_record.SOURCE) or "")
    if not source and sources:
        source = sources.get(point.id, "")
    return (not source, source.count("/"), source, point.id)


def _ties_last(point: ScoredPoint, hits: Sequence[SearchHit]) -> bool:
    """Whether ``point`` ties (at :data:`SCORE_TIE` decimals, as hits are ranked) with the
    last of ``hits``, whose scores are already rounded so."""
    return bool(hits) and round(point.score, SCORE_TIE) == hits[-1].score


def _copy_of_kept(point: ScoredPoint, hits: Sequence[SearchHit]) -> bool:
    """Whether ``point`` is a copy of a passage ``hits`` show: past a cut that falls among a
    passage's copies may lie more of them, one of them nearer the root."""
    key = passage_key(chunk_record.point_text(point))
    return any(passage_key(hit.text) == key for hit in hits)


def _same_score(a: ScoredPoint, b: ScoredPoint) -> bool:
    return round(a.score, SCORE_TIE) == round(b.score, SCORE_TIE)


def fusion_label(fusion: FusionSettings, keyword_reason: str | None, mode: SearchMode) -> str:
    """How the response says the lists were fused: the method name, or ``rrf(k=.., weights=..)``."""
    if mode in ("bm25", "dense"):
        return "none"
    label: str = fusion.method
    if fusion.method == "rrf":
        label = f"rrf(k={fusion.rrf_k}, weights=[{fusion.dense_weight}, {fusion.sparse_weight}])"
    return f"{label} (keyword query: {keyword_reason})" if keyword_reason else label


class Searcher:
    """Hybrid search over one store for any tenant and domain (thread-compatible: the models
    and the store serialise their own calls)."""

    def __init__(
        self,
        settings: Settings,
        store: VectorStore,
        embedder: DenseEmbedder,
        reranker: CrossEncoderReranker | None = None,
        analysis: DomainAnalysis | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        # concurrent searches share one embedding call (the embedder's query cache still first)
        self.query_embedder = QueryBatcher(
            embedder,
            settings.concurrency.batch_window_ms / 1000,
            settings.concurrency.max_batch,
        )
        self.reranker = reranker
        self.limits = Limits.from_settings(settings)
        self.analysis = analysis or DomainAnalysis(settings, store)
        self.run_ahead = RunAhead(settings.concurrency.search_ahead_threads)

    def search(self, request: SearchRequest) -> SearchResponse:
        """A search within the interactive limits (query length, ``top_k`` <= max_top_k,
        ``max_chars`` <= the output limit).

        Raises InvalidRequestError (empty or long query, top_k out of range, unknown domain,
        mode or filter, bad tenant name) with a one-line message.
        """
        query = self.limits.query(request.query)
        top_k = self.limits.check_top_k(request.top_k)
        if request.max_chars is not None:
            self.limits.check_output(request.max_chars)
        response = self._run(request, query, top_k)
        try:
            response.freshness = root_freshness(
                self.store, self.settings, request.tenant, response.domain
            )
        except Exception:  # freshness is a report about the index, never a reason to fail
            logger.exception("reading the freshness of %s failed", response.domain.value)
            response.notes.append("the freshness of the indexed folders could not be read")
        return response

    def rank(self, request: SearchRequest) -> SearchResponse:
        """The same ranking without the interactive limits: evaluations ask for 100+ hits."""
        if not request.query.strip():
            raise InvalidRequestError("the query is empty")
        return self._run(request, request.query.strip(), request.top_k)

    def _run(self, request: SearchRequest, query: str, limit: int) -> SearchResponse:
        with self.query_embedder.searching():  # a lone search's query skips the batch window
            return self._run_marked(request, query, limit)

    def _run_marked(self, request: SearchRequest, query: str, limit: int) -> SearchResponse:
        started = time.perf_counter()
        validate_tenant(request.tenant)
        if request.mode not in SEARCH_MODES:
            raise InvalidRequestError(
                f"unknown mode {request.mode!r}; expected one of {SEARCH_MODES}"
            )
        domain, settings = resolve_domain(self.settings, request.domain)
        given = {k: v for k, v in request.filters.items() if v is not None}
        resolved = resolve_filters(self.store, self.settings, request.tenant, domain, given)
        fusion, keyword_reason = fusion_for(settings, query)
        response = self._empty_response(query, domain, settings, request.mode, given)
        response.fusion = fusion_label(fusion, keyword_reason, request.mode)
        if resolved.nothing_matches is not None:
            response.fusion = "none"
            response.notes.append(resolved.nothing_matches)
        elif self.store.has_collection(settings.collection):
            scope = _Scope(request.tenant, settings, fusion, resolved.conditions, limit)
            self._retrieve(response, scope)
            if not response.hits:
                self._say_why_nothing(response, scope, given)
        else:
            response.notes.append(_nothing_indexed(domain))
        if response.mode == "hybrid+rerank" and not response.rerank_applied:
            response.mode = "hybrid"  # the stages that ranked; rerank_note says why not
        if request.max_chars is not None:  # an answer to read: bounded
            self._trim(response, request.max_chars)
            declare_once(response.hits)
            bound_copies(response.hits)
        response.timings.total_ms = _elapsed_ms(started)
        return response

    def _trim(self, response: SearchResponse, budget: int) -> None:
        """Hit texts trimmed to share ``budget`` characters around the sentences holding most
        of the query's keyword terms (the domain's BM25 analysis: stems, CJK bigrams, legal
        references), each trimmed hit flagged ``truncated``."""
        encoder = self.analysis.sparse_encoder(response.domain)
        terms = set(encoder.encode_query(response.query).indices)

        def score(text: str) -> int:
            return len(terms.intersection(encoder.encode_query(text).indices)) if terms else 0

        code = response.domain is Domain.CODE
        texts = [h.text for h in response.hits]
        positions = [(h.source, h.chunk_index) for h in response.hits]
        trimmed = trim_texts(texts, budget, score, code=code, positions=positions)
        for hit, result in zip(response.hits, trimmed, strict=True):
            hit.text, hit.truncated = result.text, result.truncated
        cut = sum(result.truncated for result in trimmed)
        if cut:
            response.notes.append(trimmed_note(cut, len(trimmed), budget))

    def _empty_response(
        self,
        query: str,
        domain: Domain,
        settings: DomainSettings,
        mode: SearchMode,
        filters: Mapping[str, Any],
    ) -> SearchResponse:
        return SearchResponse(
            query=query,
            domain=domain,
            mode=mode,
            hits=[],
            filters=dict(filters),
            fusion="none",
            rerank_applied=False,
            rerank_model=self.reranker.model_id
            if self.reranker and self._wants_rerank(settings, mode)
            else None,
        )

    def _say_why_nothing(
        self, response: SearchResponse, scope: _Scope, given: Mapping[str, Any]
    ) -> None:
        """A note on an empty result: the tenant has nothing indexed here, or which filter
        matches none of its chunks (counted only when nothing was found: searches that hit
        pay nothing)."""
        collection, tenant = scope.settings.collection, scope.tenant
        if self.store.count(collection, tenant) == 0:
            response.notes.append(_nothing_indexed(response.domain))
            return
        why = why_nothing_matches(
            self.store,
            self.settings,
            tenant,
            response.domain,
            collection,
            given,
            scope.conditions,
        )
        if why is not None:
            response.notes.append(why)

    @staticmethod
    def _wants_rerank(settings: DomainSettings, mode: SearchMode) -> bool:
        return mode == "hybrid+rerank" and settings.rerank_depth > 0

    def _encode(self, response: SearchResponse, scope: _Scope, depth: int) -> _Encoded | None:
        """The query's BM25 terms and dense vector; None when there is nothing to search
        (a BM25-only search of a query without keyword terms). A hybrid search's BM25 search
        starts before the embedding, to run while it does (run_ahead.py)."""
        timings, mode = response.timings, response.mode
        encoded = _Encoded(None, None)
        if mode != "dense":
            t = time.perf_counter()
            sparse = self.analysis.sparse_encoder(response.domain).encode_query(response.query)
            timings.sparse_ms = _elapsed_ms(t)
            if sparse.indices:
                encoded.sparse = sparse
            elif mode == "bm25":
                response.notes.append(NO_QUERY_TERMS_BM25)
                return None
            else:
                response.notes.append(NO_QUERY_TERMS)
        if mode != "bm25":
            t = time.perf_counter()
            text = normalize_text(response.query)
            # one cache lookup per search: embed_missed does not look again (hit/miss counted once)
            encoded.dense = self.query_embedder.cached_query(text)
            if encoded.dense is None:  # a model call: time for BM25 to run meanwhile
                if encoded.sparse is not None:
                    encoded.sparse_found = self._bm25_ahead(scope, encoded.sparse, depth)
                encoded.dense = self.query_embedder.embed_missed(text)
            timings.embed_ms = _elapsed_ms(t)
        return encoded

    def _bm25_ahead(
        self, scope: _Scope, sparse: SparseVector, depth: int
    ) -> Ahead[list[ScoredPoint]]:
        """The search's BM25 list, searched on a spare thread: a BM25-only query of the same
        tenant, terms, filters and depth, asking for no final list (nothing fetched)."""
        bm25 = replace(self._request(scope, _Encoded(None, sparse), depth, parts=False), limit=0)
        collection = scope.settings.collection
        return self.run_ahead.start(lambda: self.store.query(collection, bm25).sparse)

    def _request(self, scope: _Scope, encoded: _Encoded, depth: int, parts: bool) -> HybridQuery:
        settings, limit = scope.settings, scope.limit
        return HybridQuery(
            tenant=scope.tenant,
            # room for copies that collapse away, so they do not shorten the list (the fused
            # list may be longer than each stage's: it draws on both)
            # (without collapsing, one point more: whether the cut fell inside a group of ties)
            limit=max(depth, 2 * limit) if self.settings.collapse_duplicates else depth + 1,
            candidates=max(settings.candidates, depth),
            dense=encoded.dense,
            sparse=encoded.sparse,
            fusion=scope.fusion,
            filters=dict(scope.conditions),
            part_weight=settings.part_weight if parts else None,
            hnsw_ef=settings.hnsw_ef,
            sparse_found=None
            if encoded.sparse_found is None
            else tuple(encoded.sparse_found.result()),
        )

    def _retrieve(self, response: SearchResponse, scope: _Scope) -> None:
        """Fill ``response.hits``: the store's hybrid query, decoded, collapsed, reranked."""
        settings, limit = scope.settings, scope.limit
        want_rerank = self._wants_rerank(settings, response.mode)
        # the head is fetched and decoded rerank_depth deep only for a cross-encoder that will
        # score it: with reranking off or its model unavailable, a search costs what a
        # top_k search does (hits and also_in are the same either way: the list goes deeper
        # wherever its cut could hide copies, _query)
        reranks = want_rerank and self.reranker is not None and self.reranker.available
        name = asked_name(response.query) if settings.definition_depth else None
        depth = max(
            limit,
            settings.rerank_depth if reranks else 0,
            settings.definition_depth if name else 0,
        )
        encoded = self._encode(response, scope, depth)
        if encoded is None:
            return
        parts = encoded.dense is not None and self.analysis.parts_in_queries(settings)
        t = time.perf_counter()
        request = self._request(scope, encoded, depth, parts)
        stored, hits = self._query(settings.collection, request, response, depth)
        response.timings.search_ms = _elapsed_ms(t)
        dense_ran = encoded.dense is not None
        if encoded.sparse is not None and not stored.sparse and (stored.final or not dense_ran):
            where = FILTERED if scope.conditions else ""
            response.notes.append(
                NO_KEYWORD_MATCH.replace(":", where + ":", 1)
                if dense_ran
                else NO_KEYWORD_MATCH_BM25 + where
            )
        hits = hits[:depth]
        if want_rerank:
            t = time.perf_counter()
            hits = self._rerank(response, settings, hits)
            response.timings.rerank_ms = _elapsed_ms(t)
        if name:
            hits, moved = definitions_first(hits, name, settings.definition_depth)
            if moved:
                response.notes.append(DEFINITIONS_FIRST.format(name=".".join(name), n=moved))
        response.hits = hits[:limit]

    def _query(
        self, collection: str, request: HybridQuery, response: SearchResponse, depth: int
    ) -> tuple[QueryResponse, list[SearchHit]]:
        """Run the hybrid query and decode its first ``depth`` hits. Go once more as deep as
        the stages go when the fused list was cut where it could hide copies (which of tied
        points a cut keeps depends on the store's layout; the copy shown and its also_in would
        too): with copies collapsing, when so many collapsed that the list ran short, or its
        last point is a copy of a passage kept or ties with the last hit kept; without, when
        the one point fetched beyond ``depth`` ties with the last one kept."""
        stored = self.store.query(collection, request)
        deeper = partial(replace, request, limit=2 * request.candidates)  # all the stages found
        if not self.settings.collapse_duplicates:
            final = stored.final
            if len(final) > depth and _same_score(final[depth], final[depth - 1]):
                stored = self.store.query(collection, deeper())
            return stored, self._hits(stored, response)[:depth]
        hits = self._hits(stored, response, collapse_to=depth)
        cut = len(stored.final) == request.limit
        if cut and (
            len(hits) < depth
            or _ties_last(stored.final[-1], hits)
            or _copy_of_kept(stored.final[-1], hits)
        ):
            stored = self.store.query(collection, deeper())
            hits = self._hits(stored, response, collapse_to=depth)
        # copies can fill both stages' lists (one passage in 300 files): the other passages
        # are further down, so widen the stages, up to MAX_CANDIDATES, until they show
        candidates = request.candidates
        while (
            len(hits) < depth and _stages_full(stored, candidates) and candidates < MAX_CANDIDATES
        ):
            candidates = min(MAX_CANDIDATES, candidates * 4)
            # (the BM25 list searched ahead is as deep as the old stages: searched again)
            wider = replace(request, candidates=candidates, limit=2 * candidates, sparse_found=None)
            stored = self.store.query(collection, wider)
            hits = self._hits(stored, response, collapse_to=depth)
        return stored, hits

    @staticmethod
    def _hits(
        stored: QueryResponse, response: SearchResponse, collapse_to: int | None = None
    ) -> list[SearchHit]:
        """The fused list as hits, each with its rank and score at every stage; with
        ``collapse_to``, copies collapsed and only the first ``collapse_to`` hits decoded
        (duplicates.collapsed_head: the list is the same as collapsing every hit and cutting)."""
        # the stage lists carry no payloads: their ties take the fused list's sources, so a
        # copy's stage ranks follow the same order as the copy shown
        sources = {
            p.id: str((p.payload or {}).get(chunk_record.SOURCE) or "") for p in stored.final
        }
        dense = _by_score(stored.dense, sources)
        sparse = _by_score(stored.sparse, sources)
        # scores are shown at the precision they are ranked by (SCORE_TIE): a copy ranked first
        # by the tie rule must not show a score a few float bits below the next one
        dense_ranks = {p.id: (i + 1, round(p.score, SCORE_TIE)) for i, p in enumerate(dense)}
        sparse_ranks = {p.id: (i + 1, round(p.score, SCORE_TIE)) for i, p in enumerate(sparse)}
        fused = response.mode in ("hybrid", "hybrid+rerank")

        def hit(ranked: tuple[int, ScoredPoint]) -> SearchHit:
            rank, point = ranked
            stages = StageScores()
            if point.id in dense_ranks:
                stages.dense_rank, stages.dense = dense_ranks[point.id]
            if point.id in sparse_ranks:
                stages.sparse_rank, stages.sparse = sparse_ranks[point.id]
            if fused:
                stages.fused, stages.fused_rank = round(point.score, SCORE_TIE), rank
            shown = chunk_record.search_hit(response.domain, point, stages)
            shown.score = round(shown.score, SCORE_TIE)
            return shown

        ranked = list(enumerate(_by_score(stored.final), start=1))
        if collapse_to is None:
            return [hit(item) for item in ranked]
        return collapsed_head(
            ranked,
            lambda item: chunk_record.point_text(item[1]),
            hit,
            collapse_to,
            place=lambda item: _place(item[1]),
        )

    def _rerank(
        self, response: SearchResponse, settings: DomainSettings, hits: list[SearchHit]
    ) -> list[SearchHit]:
        """The head (``rerank_depth``) reordered by the cross-encoder, or the hits unchanged
        with ``rerank_note`` saying why not."""
        reranker = self.reranker
        if reranker is None:
            response.rerank_note = self.settings.reranker_off_note
            return hits
        if not reranker.available:
            response.rerank_note = reranker.unavailable_reason
            return hits
        head, tail = hits[: settings.rerank_depth], hits[settings.rerank_depth :]
        texts = [dense_text(settings, h.title, h.text) for h in head]
        scores = reranker.score(normalize_text(response.query), texts)
        order = sorted(range(len(head)), key=lambda i: scores[i], reverse=True)
        for rank, i in enumerate(order, start=1):
            head[i].stages.rerank, head[i].stages.rerank_rank = scores[i], rank
            head[i].score = scores[i]
        response.rerank_applied = True
        return [head[i] for i in order] + tail
