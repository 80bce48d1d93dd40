"""The bench harness: streaming synthetic corpus, per-process memory, build and serve steps."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval_eval.bench import BenchContext, Row, format_rows, run_bench
from retrieval_eval.bench_corpus import (
    TENANTS,
    BenchCorpus,
    chunk_text,
    iter_point_batches,
    source_texts,
)
from retrieval_eval.bench_process import memory_figures, run_in_fresh_process
from retrieval_eval.bench_steps import (
    QUERY_TENANT,
    TEST_CROSS_ENCODER_DIR,
    _load_reranker,
    build_store,
    measure_ingest,
    prepare_corpus,
    serve_queries,
    stream_points,
)
from server.retrieval.analysis import part_texts
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.length_stats import tenant_lengths
from server.retrieval.sparse import SparseEncoder
from server.retrieval.store_tuning import StoreTuning
from server.settings import Bm25Settings, Settings

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` skips it

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench_corpus(embedder: DenseEmbedder) -> BenchCorpus:
    passages, sentences = source_texts(REPO_ROOT / "no-such-dataset")  # bundled eval sets
    passages = [embedder.truncate(p) for p in passages[:24]]
    return BenchCorpus(passages, embedder.embed_documents(passages), sentences[:6])


def test_point_batches_are_bounded_deterministic_and_complete(bench_corpus: BenchCorpus) -> None:
    encoder = SparseEncoder(Bm25Settings())
    batches = list(iter_point_batches(bench_corpus, 130, encoder, 50.0, batch_size=40))
    assert [len(b) for b, _ in batches] == [40, 40, 40, 10]
    points = [p for b, _ in batches for p in b]
    assert len({p.id for p in points}) == 130
    assert {p.payload["tenant"] for p in points} == {f"t{i}" for i in range(TENANTS)}
    assert all(abs(np.linalg.norm(p.dense) - 1.0) < 1e-4 for p in points)
    # Past the first round, texts are recombined, so BM25 sees distinct documents.
    n = len(bench_corpus.passages)
    assert points[n].payload["text"] != points[0].payload["text"]
    assert points[n].payload["text"].startswith(bench_corpus.passages[0])
    assert points[7].payload["text"] == chunk_text(bench_corpus.passages, 7)
    # No exact copies within a tenant across rounds (copies would make every search collapse
    # them and query again, which is not the path real folders take).
    texts = [chunk_text(bench_corpus.passages, i) for i in range(12 * n)]
    assert len(set(texts)) == len(texts)
    assert points[3].payload["content_hash"] and points[3].payload["doc_type"] == "text"
    again = next(iter_point_batches(bench_corpus, 130, encoder, 50.0, batch_size=40))[0]
    assert [p.dense for p in again] == [p.dense for p in batches[0][0]]
    assert sum(t for _, t in batches) == sum(
        encoder.count_tokens(chunk_text(bench_corpus.passages, i)) for i in range(130)
    )


def test_point_batches_carry_jittered_part_vectors(
    bench_corpus: BenchCorpus, embedder: DenseEmbedder
) -> None:
    groups = [part_texts(p, 2) for p in bench_corpus.passages]
    assert any(groups) and not all(groups)
    offsets = np.cumsum([0] + [len(g) for g in groups])
    corpus = BenchCorpus(
        bench_corpus.passages,
        bench_corpus.vectors,
        bench_corpus.queries,
        embedder.embed_documents([t for g in groups for t in g]),
        offsets,
    )
    n = len(corpus.passages)
    encoder = SparseEncoder(Bm25Settings())
    [(points, _)] = iter_point_batches(corpus, n, encoder, 50.0, batch_size=n, with_parts=True)
    for row, point in enumerate(points):
        assert point.parts is not None and len(point.parts) == max(1, len(groups[row]))
        assert all(abs(np.linalg.norm(v) - 1.0) < 1e-4 for v in point.parts)
        own = corpus.parts_of(row, corpus.vectors[row])
        assert min(float(np.dot(a, b)) for a, b in zip(own, point.parts, strict=True)) > 0.9
    [(plain, _)] = iter_point_batches(corpus, n, encoder, 50.0, batch_size=n)
    assert all(p.parts is None for p in plain)


def test_memory_figures_of_a_fresh_process_are_its_own() -> None:
    here = memory_figures()
    assert here.peak >= here.current > 0
    assert here.anon > 0 and here.anon <= here.current
    child_pid = run_in_fresh_process(os.getpid)
    assert child_pid != os.getpid()


def test_build_then_serve_from_a_fresh_store(
    bench_corpus: BenchCorpus, tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    corpus_dir = tmp_path / "corpus"
    bench_corpus.save(corpus_dir)
    shutil.copytree(tiny_cross_encoder, corpus_dir / TEST_CROSS_ENCODER_DIR)
    store_dir = tmp_path / "store"

    built = build_store(str(corpus_dir), str(store_dir), 60)
    assert built["memory"].peak > 0 and built["disk_mb"] > 0
    store = EdgeStore(store_dir)
    try:
        assert store.count("docs", None) == 60
        assert store.count("docs", QUERY_TENANT) == 60 // TENANTS + (60 % TENANTS > 3)
        stats = tenant_lengths(store.read_meta("docs"), QUERY_TENANT)
        assert stats.points == store.count("docs", QUERY_TENANT) and stats.total_len > 0
        assert store.has_part_vectors("docs")  # built like the docs default
    finally:
        store.close()

    served = serve_queries(str(store_dir), str(corpus_dir), rerank_queries=2)
    queries = len(bench_corpus.queries)
    assert len(served["embed_ms"]) == len(served["hybrid_ms"]) == queries
    assert len(served["rerank_ms"]) == 2
    assert "TEST-SIZE" in served["reranker"]
    assert served["memory"].peak >= served["ready_memory"].current
    assert len(served["store_ms"]) == queries
    # 60 points are searched by full scan over the original vectors: nothing approximate
    recall = served["recall"]
    assert (recall.chunk, recall.dense, recall.hybrid, recall.queries) == (1.0, 1.0, 1.0, queries)


def test_run_bench_prints_each_section_in_order(tmp_path: Path) -> None:
    seen: list[BenchContext] = []

    def first(ctx: BenchContext) -> list[Row]:
        seen.append(ctx)
        ctx.shared["note"] = "from first"
        return [("--- first", ""), ("figure", "1.00x")]

    def second(ctx: BenchContext) -> list[Row]:
        return [("shared", str(ctx.shared["note"]))]

    report = run_bench([10], tmp_path, queries=5, sections=[first, second])
    assert report == format_rows([("--- first", ""), ("figure", "1.00x"), ("shared", "from first")])
    assert seen[0].sizes == [10] and seen[0].rerank_queries == 5


def test_test_cross_encoder_keeps_the_requested_shape(tiny_cross_encoder: Path) -> None:
    config = json.loads((tiny_cross_encoder / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (2, 32)
    assert config["intermediate_size"] == 128 and config["max_position_embeddings"] == 512


def test_query_cache_holds_compact_vectors_and_hands_out_copies(embedder: DenseEmbedder) -> None:
    embedder.cache.clear()
    first = embedder.embed_query("compact cache entry")
    assert isinstance(first, list) and len(first) == embedder.dimension
    first[0] = 99.0  # a caller's edit must not leak into the cache
    second = embedder.embed_query("compact cache entry")
    assert second[0] != 99.0
    cached = embedder.cache.get("compact cache entry")
    assert cached is not None and np.allclose(cached, second)
    # float32 vectors in one matrix taken when the cache was made
    assert embedder.cache.nbytes == 4 * embedder.dimension * embedder.cache.capacity


def test_measure_ingest_times_both_paths_on_the_same_chunks() -> None:
    result = measure_ingest(str(REPO_ROOT / "no-such-dataset"), 6, rounds=2)
    assert result["chunks"] == 6
    assert result["raw_rate"] > 0 and result["ingest_rate"] > 0
    # the fair baseline encodes the part texts too, so it is slower than chunk texts alone
    assert result["part_sentences"] == 2 and result["raw_all_rate"] > 0


class _RecordingStore(EdgeStore):
    """A real embedded store that also records the upserted batch sizes and when it was
    optimized (in points upserted so far)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.batches: list[int] = []
        self.optimized_at: list[int] = []

    def upsert(self, name: str, points: Any, meta_deltas: Any = None) -> None:
        super().upsert(name, points, meta_deltas)
        self.batches.append(len(points))

    def finish_writes(self, name: str) -> None:
        super().finish_writes(name)
        self.optimized_at.append(sum(self.batches))


def test_streaming_builder_writes_every_point_in_bounded_batches(
    bench_corpus: BenchCorpus, tmp_path: Path
) -> None:
    """The builder holds one batch at a time and optimizes every segment's worth of points,
    so its memory does not grow with the store; every point and tenant tally arrives."""
    encoder = SparseEncoder(Bm25Settings())
    store = _RecordingStore(tmp_path / "store")
    try:
        store.ensure_collection("docs", bench_corpus.vectors.shape[1], {"tenant": "tenant"})
        batches = iter_point_batches(bench_corpus, 130, encoder, 50.0, batch_size=40)
        tenants = stream_points(store, "docs", batches, 130, segment=50, avg_len=50.0)
        assert store.batches == [40, 40, 40, 10]
        assert store.optimized_at == [80, 130]  # after the batch that reaches each 50
        assert store.count("docs", None) == 130
        assert sum(t["points"] for t in tenants.values()) == 130
        assert {t: v["points"] for t, v in tenants.items()} == {
            t: store.count("docs", t) for t in tenants
        }
    finally:
        store.close()


def test_segment_points_follow_the_largest_vector_storage() -> None:
    tuning = StoreTuning(max_segment_mb=1)
    assert tuning.segment_points(384) == 1024 * 1024 // (4 * 384)  # float32 chunk vectors
    assert tuning.segment_points(384, 3.0) == 1024 * 1024 // (2 * 384 * 3)  # float16 parts


@pytest.mark.parametrize("backend", ["openvino", "torch"])
def test_bench_reranks_on_the_backend_the_server_would_use(
    tiny_cross_encoder: Path, tmp_path: Path, backend: str
) -> None:
    """The serving figures are the server's: the cross-encoder runs on the configured inference
    backend (on torch regardless, the 100k serving peak carried torch's ~390 MB)."""
    corpus_dir = tmp_path / "corpus"
    shutil.copytree(tiny_cross_encoder, corpus_dir / TEST_CROSS_ENCODER_DIR)
    settings = Settings(
        reranker_model="none", inference_backend=backend, model_cache_path=tmp_path / "cache"
    )
    reranker, label = _load_reranker(corpus_dir, settings)
    assert "TEST-SIZE" in label
    assert reranker.batch_size == settings.rerank_batch_size
    assert getattr(reranker._model, "backend", "torch") == backend
    scores = reranker.score("a query", ["a passage", "another passage", "a third"])
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)


@pytest.mark.parametrize("value", ["none", "", "  ", " Off "])
def test_the_bench_reads_reranking_off_as_the_server_does(
    tiny_cross_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Every value that switches the server's reranking off makes the bench use its test-size
    cross-encoder, saying why in the server's words (it took only ``none`` as off and tried to
    load a model named ``''`` or ``Off``)."""
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", value)
    corpus_dir = tmp_path / "corpus"
    shutil.copytree(tiny_cross_encoder, corpus_dir / TEST_CROSS_ENCODER_DIR)
    settings = Settings(inference_backend="torch", model_cache_path=tmp_path / "cache")
    _, label = _load_reranker(corpus_dir, settings)
    assert label.startswith("TEST-SIZE ") and label.endswith(
        f"(reranking is off (RETRIEVAL_RERANKER_MODEL={value!r}))"
    ), label


def _loads_torch_to_rerank(corpus_dir: str) -> bool:
    """In a fresh process: whether loading the bench's cross-encoder imports torch."""
    _load_reranker(Path(corpus_dir), Settings(reranker_model="none"))
    return "torch" in sys.modules


def test_the_serving_process_finds_the_cross_encoder_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving figures are a server's after its first start: the corpus step leaves the
    test cross-encoder exported for the configured backend, so the serving process loads no
    torch to export it (on a machine whose model cache was cold it did, and its RSS carried
    ~0.5 GB of torch)."""
    monkeypatch.setenv("RETRIEVAL_MODEL_CACHE_PATH", str(tmp_path / "cache"))
    monkeypatch.setenv("RETRIEVAL_INFERENCE_BACKEND", "openvino")
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", "none")
    corpus_dir = str(tmp_path / "corpus")
    run_in_fresh_process(prepare_corpus, str(tmp_path / "no-dataset"), corpus_dir, 6, 2)
    assert run_in_fresh_process(_loads_torch_to_rerank, corpus_dir) is False
