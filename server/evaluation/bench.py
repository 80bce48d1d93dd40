"""`retrieval-mcp bench`: latency, throughput and memory figures, as ratios from one run.

Stores of N chunks spread over several tenants are built from real passages (SciFact by
default): ``UNIQUE_PASSAGES`` distinct passages are embedded once and reused with a small
jitter on the dense vector and a recombined text for BM25, so a 100k-chunk store takes
minutes instead of the hour that embedding 100k passages costs on two cores. Ingest throughput
is measured separately through the real pipeline against raw ``encode`` on the same chunks.
"""

from __future__ import annotations

import random
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from server.evaluation.beir import load_corpus
from server.evaluation.metrics import percentile
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder, resolve_model_location
from server.retrieval.factory import load_embedder
from server.retrieval.passages import pack_passages, split_sentences
from server.retrieval.pipeline import DOMAIN_PAYLOAD_INDEXES, RetrievalPipeline
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.store import BASE_PAYLOAD_INDEXES, StoredPoint, point_id
from server.retrieval.types import Chunk
from server.settings import Domain, Settings

UNIQUE_PASSAGES = 1000
INGEST_SAMPLE = 400
TENANTS = 8
REPO_ROOT = Path(__file__).resolve().parents[2]


def build_test_cross_encoder(directory: Path, *, layers: int = 6, hidden: int = 384) -> Path:
    """Save a randomly initialised 2-layer BERT cross-encoder (for tests and benchmarks).

    It exercises the real CrossEncoder code path at a size comparable in cost to a small
    reranker when no trained cross-encoder is available offline.
    """
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_location("bundled"))
    config = BertConfig(  # type: ignore[call-arg]
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 32),
        intermediate_size=hidden * 4,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _latencies(fn: Callable[[str], object], inputs: Sequence[str]) -> list[float]:
    """Milliseconds of one call of ``fn`` per input."""
    times = []
    for item in inputs:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _source_texts(dataset: Path) -> tuple[list[str], list[str]]:
    """Passages and query-like sentences from a BEIR corpus (or the bundled eval sets)."""
    corpus_file = dataset / "corpus.jsonl"
    files = (
        [corpus_file]
        if corpus_file.exists()
        else [
            REPO_ROOT / "datasets/eval/legal/corpus.jsonl",
            REPO_ROOT / "datasets/eval/code/corpus.jsonl",
        ]
    )
    docs = [d for f in files for d in load_corpus(f)]
    passages = [f"{d.title}\n{d.text}".strip() for d in docs]
    sentences = [
        s for d in docs[:3000] for s in split_sentences(d.text) if 6 <= len(s.split()) <= 30
    ]
    return passages, sentences


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, label: str, value: str) -> None:
        self.lines.append(f"{label:<48}{value}")

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _ms(values: Sequence[float]) -> str:
    return f"p50 {percentile(values, 50):7.2f} ms   p95 {percentile(values, 95):7.2f} ms"


def run_bench(sizes: Sequence[int], dataset: Path, *, queries: int = 200) -> str:
    """Build stores of each size, measure, and return the printed report."""
    rng = random.Random(7)
    settings = Settings(reranker_model="none")
    embedder = load_embedder(settings)
    passages, sentences = _source_texts(dataset)
    budget = embedder.max_tokens - 2
    base = [
        p
        for text in passages[:UNIQUE_PASSAGES]
        for p in pack_passages(text, budget, embedder.count_tokens)
    ][:UNIQUE_PASSAGES]
    query_texts = rng.sample(sentences, min(queries, len(sentences)))
    report = _Report()
    report.add("passages / queries", f"{len(base)} distinct passages, {len(query_texts)} queries")

    # Bare query embedding (no cache): the baseline every search latency is compared with.
    embed_times = _latencies(lambda q: embedder.embed_documents([q]), query_texts)
    embed_p50 = percentile(embed_times, 50)
    report.add("query embedding (bare encode)", _ms(embed_times))

    # Ingest: the real pipeline vs raw encode on the same chunks.
    sample = base[:INGEST_SAMPLE]
    start = time.perf_counter()
    embedder.embed_documents(sample)
    raw_rate = len(sample) / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as scratch:
        store = EdgeStore(Path(scratch) / "ingest")
        pipeline = RetrievalPipeline(settings, store, embedder)
        chunks = [
            Chunk(tenant="t0", doc_id=f"d{i}", source=f"doc-{i}", text=text)
            for i, text in enumerate(sample)
        ]
        start = time.perf_counter()
        pipeline.index(Domain.DOCS, chunks)
        ingest_rate = len(sample) / (time.perf_counter() - start)
        store.close()
    report.add("raw encode throughput", f"{raw_rate:7.1f} chunks/s")
    report.add(
        "ingest throughput (embed+BM25+upsert+index)",
        f"{ingest_rate:7.1f} chunks/s   = {ingest_rate / raw_rate:.2f}x raw encode "
        "(target >= 0.8x)",
    )

    vectors = embedder.embed_documents(base)
    reranker, reranker_label = _bench_reranker()
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as scratch:
            _bench_size(
                size,
                Path(scratch),
                settings,
                embedder,
                base,
                vectors,
                query_texts,
                embed_p50,
                reranker,
                reranker_label,
                report,
                rng,
            )
    return str(report)


def _bench_reranker() -> tuple[CrossEncoderReranker, str]:
    settings = Settings()
    real = CrossEncoderReranker(settings.reranker_model)
    if real.load():
        return real, settings.reranker_model
    directory = Path(tempfile.mkdtemp(prefix="bench-cross-encoder-"))
    test_model = CrossEncoderReranker(str(build_test_cross_encoder(directory)))
    test_model.load()
    return test_model, "TEST-SIZE random 6-layer cross-encoder (real one not available offline)"


def _bench_size(
    size: int,
    root: Path,
    settings: Settings,
    embedder: DenseEmbedder,
    base: Sequence[str],
    vectors: np.ndarray,
    query_texts: Sequence[str],
    embed_p50: float,
    reranker: CrossEncoderReranker,
    reranker_label: str,
    report: _Report,
    rng: random.Random,
) -> None:
    store = EdgeStore(root / "store")
    pipeline = RetrievalPipeline(settings, store, embedder, reranker)
    domain_settings = settings.domains[Domain.DOCS]
    collection = domain_settings.collection
    encoder = pipeline.sparse_encoder(Domain.DOCS)
    store.ensure_collection(
        collection,
        embedder.dimension,
        {**BASE_PAYLOAD_INDEXES, **DOMAIN_PAYLOAD_INDEXES[Domain.DOCS]},
    )
    start = time.perf_counter()
    texts = [
        base[i % len(base)]
        if i < len(base)
        else f"{base[i % len(base)]} {base[rng.randrange(len(base))][:200]}"
        for i in range(size)
    ]
    lengths = [encoder.count_tokens(text) for text in texts]
    avg_len = sum(lengths) / size
    for begin in range(0, size, 2000):
        batch: list[StoredPoint] = []
        for i in range(begin, min(size, begin + 2000)):
            noise = np.random.default_rng(i).normal(0, 0.01, vectors.shape[1])
            dense = vectors[i % len(base)] + noise
            tenant = f"t{i % TENANTS}"
            payload: dict[str, object] = {"tenant": tenant, "doc_id": f"d{i}", "source": f"doc-{i}"}
            payload.update(chunk_index=0, title="", text=texts[i], bm25_len=lengths[i])
            batch.append(
                StoredPoint(
                    id=point_id(tenant, "docs", f"doc-{i}", 0),
                    dense=(dense / np.linalg.norm(dense)).tolist(),
                    sparse=encoder.encode_document(texts[i], avg_len),
                    payload=payload,
                )
            )
        store.upsert(collection, batch)
    meta = {"points": size, "total_len": sum(lengths), "encoded_avg_len": avg_len}
    store.write_meta(collection, meta)
    store.finish_writes(collection)
    build_s = time.perf_counter() - start

    def search(query: str, mode: str) -> None:
        pipeline.rank(query, domain=Domain.DOCS, tenant="t3", limit=10, mode=mode)  # type: ignore[arg-type]

    embedder.cache.clear()
    hybrid = _latencies(lambda q: search(q, "hybrid"), query_texts)
    store_only = _latencies(lambda q: search(q, "hybrid"), query_texts)  # embedding cached
    embedder.cache.clear()
    depth = domain_settings.rerank_depth
    rerank = _latencies(lambda q: search(q, "hybrid+rerank"), query_texts[:50])
    report.add(f"--- {size:,} chunks, {TENANTS} tenants", f"(store built in {build_s:.0f}s)")
    report.add(
        "hybrid search, no rerank (incl. embedding)",
        f"{_ms(hybrid)}   = {percentile(hybrid, 50) / embed_p50:.2f}x bare embed p50 "
        "(target <= 1.5x)",
    )
    report.add("hybrid search, embedding cached (store only)", _ms(store_only))
    report.add(f"hybrid + rerank depth {depth}", f"{_ms(rerank)}   [{reranker_label}]")
    report.add("peak RSS so far", f"{_peak_rss_mb():7.0f} MB (target <= 1536 MB at 100k)")
    store.close()
