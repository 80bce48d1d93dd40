"""`retrieval-mcp bench --sections backends`: each inference backend beside torch float32.

One fresh process loads every backend and measures them side by side, query by query and
round by round, so load from other processes hits all alike: bare query embedding, the
cross-encoder at rerank depth 20 (a random model of the ms-marco-MiniLM-L-6-v2 shape), the
real ingest pipeline on the same chunks, and each backend's cosine to torch. Then one fresh
process per backend holds a serving pair (embedder + cross-encoder, as `serve` loads them) and
reports its resident memory and whether it imported torch.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from retrieval_eval.bench import BenchContext, Row, ms_figures, progress
from retrieval_eval.bench_corpus import pick_passages, synthetic_chunk
from retrieval_eval.bench_process import MemoryFigures, memory_figures, run_in_fresh_process
from retrieval_eval.bench_test_models import build_test_cross_encoder
from retrieval_eval.metrics import percentile
from retrieval_eval.product import (
    CrossEncoderReranker,
    DenseEmbedder,
    EdgeStore,
    InferenceBackend,
    assemble_pipeline,
    index_chunks,
    load_embedder,
    load_reranker,
)
from server.settings import Domain, Settings

BACKENDS: tuple[InferenceBackend, ...] = ("torch", "onnx", "openvino")
RERANK_DEPTH = 20


def _embedders(settings: Settings, cache: Path) -> dict[InferenceBackend, DenseEmbedder]:
    return {
        backend: load_embedder(
            settings.model_copy(update={"inference_backend": backend, "model_cache_path": cache})
        )
        for backend in BACKENDS
    }


def _timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - start) * 1000


def _ingest_rates(
    settings: Settings,
    embedders: dict[InferenceBackend, DenseEmbedder],
    passages: list[str],
    rounds: int,
) -> dict[str, float]:
    """Chunks/s of the indexing pipeline per backend on the same chunks, rounds rotated."""
    chunks = [synthetic_chunk(passages, i) for i in range(len(passages))]
    step = max(1, -(-len(chunks) // rounds))
    seconds = dict.fromkeys(embedders, 0.0)
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-backends-") as scratch:
        stores = {b: EdgeStore(Path(scratch) / b) for b in embedders}
        pipelines = {b: assemble_pipeline(settings, stores[b], e) for b, e in embedders.items()}
        try:
            for round_no, begin in enumerate(range(0, len(chunks), step)):
                part = chunks[begin : begin + step]
                order = list(embedders)
                shift = round_no % len(order)
                for backend in order[shift:] + order[:shift]:  # who goes first rotates
                    seconds[backend] += _timed(index_chunks, pipelines[backend], Domain.DOCS, part)
        finally:
            for store in stores.values():
                store.close()
    return {backend: len(chunks) / (ms / 1000) for backend, ms in seconds.items()}


def measure_backends(dataset: str, sample: int, queries: int, rounds: int) -> dict[str, Any]:
    """Per backend: query-embedding and rerank latencies (ms), ingest chunks/s, cosine to torch."""
    settings = Settings(reranker_model="none")
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-models-") as scratch:
        cache = Path(scratch) / "cache"
        embedders = _embedders(settings, cache)
        torch_embedder = embedders["torch"]
        passages, query_texts = pick_passages(
            Path(dataset), torch_embedder, unique=sample, queries=queries
        )
        cross = build_test_cross_encoder(Path(scratch) / "cross-encoder")
        rerankers = {
            b: CrossEncoderReranker(
                str(cross),
                batch_size=settings.rerank_batch_size,
                backend=b,
                model_cache=cache,
                threads=settings.torch_threads,  # as load_reranker: same threads as the embedder
            )
            for b in BACKENDS
        }
        reference = torch_embedder.embed_documents(passages)
        cosine: dict[str, list[float]] = {}
        for backend in BACKENDS:
            vectors = embedders[backend].embed_documents(passages)  # also the first-call warm-up
            cosine[backend] = [float(c) for c in (vectors * reference).sum(axis=1)]
            rerankers[backend].score(query_texts[0], passages[:RERANK_DEPTH])
        embed_ms: dict[str, list[float]] = {b: [] for b in BACKENDS}
        rerank_ms: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for i, query in enumerate(query_texts):
            depth = passages[(i * RERANK_DEPTH) % len(passages) :][:RERANK_DEPTH]
            for backend in BACKENDS:
                embed_ms[backend].append(_timed(embedders[backend].embed_documents, [query]))
                if i < queries // 4:
                    rerank_ms[backend].append(_timed(rerankers[backend].score, query, depth))
        rates = _ingest_rates(settings, embedders, passages, rounds)
        actual = {b: embedders[b].backend for b in BACKENDS}
    return {
        "embed_ms": embed_ms,
        "rerank_ms": rerank_ms,
        "ingest_rate": rates,
        "cosine": cosine,
        "actual": actual,
        "chunks": len(passages),
    }


def serving_memory(backend: InferenceBackend, dataset: str, queries: int) -> dict[str, Any]:
    """A serving process's memory: embedder + ms-marco-shape cross-encoder on ``backend``.

    A child process builds the cross-encoder, exports both models (their first use) and picks
    the texts, so this process holds only what a warm server holds.
    """
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-serve-") as scratch:
        cache, cross = Path(scratch) / "cache", Path(scratch) / "cross-encoder"
        passages, query_texts = run_in_fresh_process(
            _prepare_serving, backend, dataset, queries, str(cross), str(cache)
        )
        settings = Settings(
            reranker_model=str(cross), inference_backend=backend, model_cache_path=cache
        )
        embedder = load_embedder(settings)
        reranker = load_reranker(settings)
        assert reranker is not None
        for query in query_texts:
            embedder.embed_query(query)
            reranker.score(query, passages[:RERANK_DEPTH])
        return {"memory": memory_figures(), "torch": "torch" in sys.modules}


def _prepare_serving(
    backend: InferenceBackend, dataset: str, queries: int, cross: str, cache: str
) -> tuple[list[str], list[str]]:
    build_test_cross_encoder(Path(cross))
    settings = Settings(
        reranker_model=cross, inference_backend=backend, model_cache_path=Path(cache)
    )
    embedder = load_embedder(settings)
    embedder.embed_query("warm")
    reranker = load_reranker(settings)
    assert reranker is not None
    reranker.score("warm", ["up"])
    return pick_passages(Path(dataset), embedder, unique=RERANK_DEPTH, queries=queries)


def backend_rows(ctx: BenchContext) -> list[Row]:
    """Latency, throughput, fidelity and serving memory of each backend beside torch."""
    progress(f"backends: {', '.join(BACKENDS)} side by side ({ctx.ingest_sample} chunks)")
    result = run_in_fresh_process(
        measure_backends, str(ctx.dataset), ctx.ingest_sample, min(ctx.queries, 100), 4
    )
    torch_embed = percentile(result["embed_ms"]["torch"], 50)
    torch_rerank = percentile(result["rerank_ms"]["torch"], 50)
    torch_rate = float(result["ingest_rate"]["torch"])
    rows: list[Row] = [("--- inference backends (one process, side by side)", "")]
    for backend in BACKENDS:
        embed = percentile(result["embed_ms"][backend], 50)
        rerank = percentile(result["rerank_ms"][backend], 50)
        rate = float(result["ingest_rate"][backend])
        cos = np.asarray(result["cosine"][backend])
        served = result["actual"][backend]
        rows += [
            (f"{backend} (ran on {served})", ""),
            (
                "  query embedding",
                f"{ms_figures(result['embed_ms'][backend])}   = {embed / torch_embed:.2f}x torch",
            ),
            (
                f"  cross-encoder depth {RERANK_DEPTH} (ms-marco-MiniLM-L-6 shape)",
                f"{ms_figures(result['rerank_ms'][backend])}   "
                f"= {rerank / torch_rerank:.2f}x torch",
            ),
            (
                "  ingest (pipeline, docs domain)",
                f"{rate:7.1f} chunks/s   = {rate / torch_rate:.2f}x torch",
            ),
            ("  cosine to torch fp32", f"min {cos.min():.5f}   mean {cos.mean():.5f}"),
        ]
    for backend in BACKENDS:
        progress(f"backends: serving memory on {backend}")
        served_mem = run_in_fresh_process(serving_memory, backend, str(ctx.dataset), 20)
        memory: MemoryFigures = served_mem["memory"]
        rows.append(
            (
                f"serving memory, {backend} (embedder + cross-encoder)",
                f"{memory.describe()}   torch imported: {served_mem['torch']}",
            )
        )
    return rows
