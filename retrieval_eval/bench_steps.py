"""Benchmark steps, each meant to run in its own fresh process (see bench_process).

Every step returns a plain dict (picklable) of timings and that process's memory figures:
``prepare_corpus`` embeds the distinct passages once; ``measure_ingest`` compares the real
indexing pipeline with raw ``encode`` on the same chunks; ``build_store`` streams N synthetic
chunks into an embedded store; ``serve_queries`` opens the built store like the server does
(store + embedder + reranker) and measures query latencies.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_eval import product
from retrieval_eval.bench_corpus import (
    BenchCorpus,
    average_length,
    chunk_tenant,
    iter_point_batches,
    pick_passages,
    synthetic_chunk,
)
from retrieval_eval.bench_process import memory_figures, progress_line
from retrieval_eval.bench_recall import RecallFigures, measure_recall, product_query
from retrieval_eval.bench_test_models import build_test_cross_encoder
from retrieval_eval.product import (
    DEFAULT_PART_SENTENCES,
    TENANTS_KEY,
    CrossEncoderReranker,
    EdgeStore,
    HybridQuery,
    ScoredPoint,
    SparseEncoder,
    StoredPoint,
    assemble_pipeline,
    index_chunks,
    load_embedder,
    normalize_text,
    part_texts,
    payload_indexes,
    rank,
)
from server.retrieval.types import Chunk
from server.settings import Domain, Settings

WARMUP_QUERIES = 5
INGEST_ROUNDS = 4
QUERY_TENANT = chunk_tenant(3)
TEST_CROSS_ENCODER_DIR = "test-cross-encoder"


def _bench_settings() -> Settings:
    """The user's settings (RETRIEVAL_* env) with reranking handled by the bench itself."""
    return Settings(reranker_model="none")


def _latencies(fn: Callable[[str], object], inputs: Sequence[str]) -> list[float]:
    """Milliseconds of one call of ``fn`` per input."""
    times = []
    for item in inputs:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def prepare_corpus(dataset: str, directory: str, unique: int, queries: int) -> dict[str, Any]:
    """Pick and embed the distinct passages and query sentences; save them to ``directory``."""
    embedder = load_embedder(_bench_settings())
    passages, query_texts = pick_passages(Path(dataset), embedder, unique=unique, queries=queries)
    settings = _bench_settings()
    size = settings.domains[Domain.DOCS].part_sentences or DEFAULT_PART_SENTENCES
    groups = [part_texts(p, size) for p in passages]
    start = time.perf_counter()
    vectors = embedder.embed_documents(passages)
    seconds = time.perf_counter() - start
    part_vectors = embedder.embed_documents([t for g in groups for t in g])
    offsets = np.cumsum([0] + [len(g) for g in groups]).astype(np.int64)
    BenchCorpus(passages, vectors, query_texts, part_vectors, offsets).save(Path(directory))
    build_test_cross_encoder(Path(directory) / TEST_CROSS_ENCODER_DIR)
    # loaded once here so that its export for the configured backend is cached: a serving
    # process that exported it would load torch to do so (~0.5 GB more RSS than a server
    # whose exports are cached, as after its first start)
    _load_reranker(Path(directory), settings)
    return {"passages": len(passages), "queries": len(query_texts), "embed_s": seconds}


def measure_ingest(dataset: str, sample: int, rounds: int = INGEST_ROUNDS) -> dict[str, Any]:
    """Chunks/s of the real indexing pipeline vs raw ``encode`` on the same ``sample`` chunks.

    The chunks are split into ``rounds`` slices; each slice is encoded raw and indexed through
    the pipeline (one ``index`` call, as one ingest batch), in alternating order, so both
    timings see the same load from other processes and the same warm-up.
    """
    settings = _bench_settings()
    embedder = load_embedder(settings)
    passages, _ = pick_passages(Path(dataset), embedder, unique=sample, queries=0)
    chunks = [synthetic_chunk(passages, i) for i in range(len(passages))]
    embedder.embed_documents(passages[:8])  # first-call warm-up, outside both timings
    step = max(1, -(-len(chunks) // rounds))
    raw_s = raw_all_s = ingest_s = 0.0
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-ingest-") as scratch:
        store = EdgeStore(Path(scratch))
        try:
            pipeline = assemble_pipeline(settings, store, embedder)
            for round_no, begin in enumerate(range(0, len(chunks), step)):
                part = chunks[begin : begin + step]

                def raw(part: list[Chunk] = part) -> float:
                    start = time.perf_counter()
                    embedder.embed_documents([c.text for c in part])
                    return time.perf_counter() - start

                def raw_all(part: list[Chunk] = part) -> float:
                    texts, groups = product.texts_to_embed(pipeline, Domain.DOCS, part)
                    start = time.perf_counter()
                    embedder.embed_documents(texts + [t for g in groups for t in g])
                    return time.perf_counter() - start

                def ingest(part: list[Chunk] = part) -> float:
                    start = time.perf_counter()
                    index_chunks(pipeline, Domain.DOCS, part)
                    return time.perf_counter() - start

                # Whichever runs second meets the same input shapes warm: alternate the order.
                if round_no % 2:
                    ingest_s += ingest()
                    raw_all_s += raw_all()
                    raw_s += raw()
                else:
                    raw_s += raw()
                    raw_all_s += raw_all()
                    ingest_s += ingest()
        finally:
            store.close()
    return {
        "chunks": len(chunks),
        "raw_rate": len(chunks) / raw_s,
        "raw_all_rate": len(chunks) / raw_all_s,
        "part_sentences": settings.domains[Domain.DOCS].part_sentences,
        "ingest_rate": len(chunks) / ingest_s,
        "memory": memory_figures(),
    }


def build_store(corpus_dir: str, store_dir: str, size: int) -> dict[str, Any]:
    """Stream ``size`` synthetic chunks into a new embedded store (docs collection).

    Memory stays bounded whatever ``size``: points go in batches (bench_corpus), and every
    segment's worth of points (``StoreTuning.segment_points``) the store is optimized, which
    turns the in-memory appendable segment into an indexed, memory-mapped one of the size the
    optimizer would not merge further, so no graph is built twice.
    """
    settings = _bench_settings()
    corpus = BenchCorpus.load(Path(corpus_dir))
    encoder = SparseEncoder(settings.domains[Domain.DOCS].bm25)  # as the pipeline builds it
    collection = settings.domains[Domain.DOCS].collection
    start = time.perf_counter()
    avg_len = average_length(corpus.passages, size, encoder)
    store = EdgeStore(Path(store_dir), tuning=settings.store_tuning)
    try:
        with_parts = settings.domains[Domain.DOCS].part_sentences > 0
        dim = int(corpus.vectors.shape[1])
        store.ensure_collection(
            collection, dim, payload_indexes(Domain.DOCS), part_vectors=with_parts
        )
        parts = corpus.parts_per_point if with_parts else 0.0
        segment = settings.store_tuning.segment_points(dim, parts)
        batches = iter_point_batches(corpus, size, encoder, avg_len, with_parts=with_parts)
        tenants = stream_points(store, collection, batches, size, segment, avg_len)
        store.write_meta(collection, {TENANTS_KEY: tenants})
        store.finish_writes(collection)
    finally:
        store.close()
    return {
        "seconds": time.perf_counter() - start,
        "memory": memory_figures(),
        "segment_points": segment,
        "disk_mb": _disk_mb(Path(store_dir)),
    }


def stream_points(
    store: EdgeStore,
    collection: str,
    batches: Iterable[tuple[list[StoredPoint], int]],
    size: int,
    segment: int,
    avg_len: float,
) -> dict[str, dict[str, Any]]:
    """Upsert the synthetic points batch by batch, optimizing every ``segment`` points; the
    per-tenant statistics as the pipeline keeps them (length_stats.py). The synthetic tenants
    share one length distribution, so one average encodes them all (``encoded_avg_len``)."""
    per_tenant: dict[str, list[float]] = {}
    since_optimize = 0
    for batch, _ in batches:
        store.upsert(collection, batch)
        for point in batch:
            tally = per_tenant.setdefault(str(point.payload["tenant"]), [0, 0.0])
            tally[0] += 1
            tally[1] += float(point.payload["bm25_len"])
        since_optimize += len(batch)
        if since_optimize >= segment:
            store.finish_writes(collection)
            since_optimize = 0
            progress_line(f"built {sum(int(t[0]) for t in per_tenant.values()):,} of {size:,}")
    return {
        tenant: {"points": int(n), "total_len": total, "encoded_avg_len": avg_len}
        for tenant, (n, total) in per_tenant.items()
    }


def _disk_mb(directory: Path) -> float:
    """Bytes on disk under ``directory`` (allocated blocks, as ``du``), in MiB."""
    total = sum(p.lstat().st_blocks * 512 for p in directory.rglob("*") if p.is_file())
    return total / (1024 * 1024)


def _load_reranker(corpus_dir: Path, settings: Settings) -> tuple[CrossEncoderReranker, str]:
    """The configured cross-encoder if it loads, else the test-size one (labelled as such),
    either on the inference backend the server would run it on (``settings``, as
    factory.load_reranker builds it): loaded on torch, the serving figures carried torch's
    memory, which a server on the exported graphs never holds."""
    configured = Settings()  # the user's choice, read as the server reads it

    def reranker(model: str) -> CrossEncoderReranker:
        return CrossEncoderReranker(
            model,
            batch_size=settings.rerank_batch_size,
            device=settings.device,
            backend=settings.inference_backend,
            model_cache=settings.model_cache_path,
            threads=settings.torch_threads,
        )

    model_id = configured.reranker_model_id
    if model_id is not None:
        real = reranker(model_id)
        if real.load():
            return real, model_id
    test_model = reranker(str(corpus_dir / TEST_CROSS_ENCODER_DIR))
    if not test_model.load():
        raise RuntimeError(test_model.unavailable_reason or "test cross-encoder did not load")
    why = f"{model_id} not available" if model_id else configured.reranker_off_note
    return test_model, f"TEST-SIZE random cross-encoder, ms-marco-MiniLM-L-6-v2 shape ({why})"


def serve_queries(
    store_dir: str, corpus_dir: str, rerank_queries: int, recall_queries: int = 50
) -> dict[str, Any]:
    """Open the built store with the models, as the server does, and time queries.

    Bare query embedding and hybrid search (query embedding included, cache cleared) are
    measured alternately, query by query, so load from other processes hits both alike. The
    serving memory is read before the recall check, whose exact searches read every original
    vector of the tenant (bench_recall).
    """
    settings = _bench_settings()
    queries = BenchCorpus.load(Path(corpus_dir)).queries
    store = EdgeStore(Path(store_dir), tuning=settings.store_tuning)
    try:
        embedder = load_embedder(settings)
        reranker, reranker_label = _load_reranker(Path(corpus_dir), settings)
        pipeline = assemble_pipeline(settings, store, embedder, reranker)
        ready = memory_figures()
        figures = _search_latencies(pipeline, embedder, queries, rerank_queries)
        serving = memory_figures()
        vectors = [(q, embedder.embed_query(normalize_text(q))) for q in queries]
        figures["store_ms"] = _store_latencies(store, settings, vectors)
        figures["recall"] = _recall(store, settings, vectors[:recall_queries])
    finally:
        store.close()
    return {
        **figures,
        "reranker": reranker_label,
        "ready_memory": ready,
        "memory": serving,
        "after_recall_memory": memory_figures(),
    }


def _search_latencies(
    pipeline: Any, embedder: Any, queries: Sequence[str], rerank_queries: int
) -> dict[str, Any]:
    """Bare embedding, hybrid, hybrid with the embedding cached, and hybrid + rerank (ms)."""

    def search(query: str, mode: str) -> None:
        rank(pipeline, query, domain=Domain.DOCS, tenant=QUERY_TENANT, limit=10, mode=mode)

    def bare_embed(query: str) -> None:
        embedder.embed_documents([query])

    for query in queries[:WARMUP_QUERIES]:  # first-call costs stay out of the figures
        bare_embed(query)
        search(query, "hybrid")
    embedder.cache.clear()
    embed_ms: list[float] = []
    hybrid_ms: list[float] = []
    for query in queries:
        embed_ms += _latencies(bare_embed, [query])
        hybrid_ms += _latencies(lambda q: search(q, "hybrid"), [query])
    cached_ms = _latencies(lambda q: search(q, "hybrid"), queries)  # embeddings now cached
    no_rerank = memory_figures()
    search(queries[-1], "hybrid+rerank")  # the reranker's first call, untimed
    embedder.cache.clear()
    rerank_ms = _latencies(lambda q: search(q, "hybrid+rerank"), queries[:rerank_queries])
    return {
        "embed_ms": embed_ms,
        "hybrid_ms": hybrid_ms,
        "cached_ms": cached_ms,
        "rerank_ms": rerank_ms,
        "rerank_depth": _bench_settings().domains[Domain.DOCS].rerank_depth,
        "no_rerank_memory": no_rerank,
    }


def _docs_query(
    store: EdgeStore, settings: Settings
) -> tuple[str, Callable[[str, list[float]], HybridQuery]]:
    """The docs collection and the Searcher's hybrid query for (text, dense vector)."""
    docs = settings.domains[Domain.DOCS]
    encoder = SparseEncoder(docs.bm25)
    parts = docs.part_sentences > 0 and store.has_part_vectors(docs.collection)

    def query(text: str, vector: list[float]) -> HybridQuery:
        return product_query(docs, QUERY_TENANT, vector, encoder, text, parts=parts)

    return docs.collection, query


def _store_latencies(
    store: EdgeStore, settings: Settings, vectors: Sequence[tuple[str, list[float]]]
) -> list[float]:
    """Milliseconds of the store's hybrid query alone (both round trips), per query."""
    collection, query = _docs_query(store, settings)
    requests = {text: query(text, vector) for text, vector in vectors}
    return _latencies(lambda text: store.query(collection, requests[text]), list(requests))


def _recall(
    store: EdgeStore, settings: Settings, vectors: Sequence[tuple[str, list[float]]]
) -> RecallFigures:
    """Top-10 recall of the approximate search against exact dense search (bench_recall)."""
    docs = settings.domains[Domain.DOCS]
    parts = docs.part_sentences > 0 and store.has_part_vectors(docs.collection)

    def run(request: HybridQuery) -> tuple[list[ScoredPoint], list[ScoredPoint]]:
        response = store.query(docs.collection, request)
        return response.final, response.dense

    encoder = SparseEncoder(docs.bm25)
    return measure_recall(run, docs, QUERY_TENANT, vectors, encoder, parts=parts)
