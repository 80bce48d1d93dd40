"""`retrieval-mcp bench`: latency, throughput and memory figures, as ratios from one run.

The report is a list of sections; each section is a function that takes the run's
``BenchContext`` and returns printable rows (``Row``: label, figures; a label starting with
``---`` opens a block). Adding a benchmark is one entry in ``SECTIONS``, e.g.
``SECTIONS.append(server_section)`` from a module of its own; such a section can reuse
``run_in_fresh_process`` / ``memory_figures`` (bench_process), ``ms_figures`` and ``progress``.

Each measured role runs in its own fresh process (bench_process), so memory figures belong to
that role alone: the ingest measurement, the store builder (which streams synthetic chunks in
bounded batches, bench_corpus), and the serving process (store opened from disk + embedder +
reranker, as `retrieval-mcp serve` holds them), whose peak RSS is the figure users live with.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retrieval_eval.bench_process import MemoryFigures, run_in_fresh_process
from retrieval_eval.bench_recall import RecallFigures
from retrieval_eval.bench_steps import (
    INGEST_ROUNDS,
    build_store,
    measure_ingest,
    prepare_corpus,
    serve_queries,
)
from retrieval_eval.bench_test_models import build_test_cross_encoder
from retrieval_eval.metrics import percentile
from server.settings import Settings

__all__ = [
    "SECTIONS",
    "SECTION_NAMES",
    "BenchContext",
    "BenchSection",
    "Row",
    "build_test_cross_encoder",
    "run_bench",
]

RSS_TARGETS_MB = {100_000: 1200, 1_000_000: 2500}
"""Serving peak RSS targets (issue 13) by store size: the largest size at or below applies."""
RECALL_TARGET = 0.95
LABEL_WIDTH = 52

Row = tuple[str, str]
"""One printed line: a label and its figures. A label starting with ``---`` is a heading."""


@dataclass
class BenchContext:
    """What every section may use: the run's parameters and a scratch directory."""

    sizes: Sequence[int]
    dataset: Path
    workdir: Path
    queries: int = 200
    unique_passages: int = 1000
    ingest_sample: int = 400
    rerank_queries: int = 50
    soak_seconds: float = 0.0
    """``--soak-seconds``: the concurrency section's soak at 16 clients (0: no soak)."""
    shared: dict[str, object] = field(default_factory=dict)
    """Results sections hand to later sections (e.g. the prepared corpus directory)."""


BenchSection = Callable[[BenchContext], list[Row]]


def ms_figures(values: Sequence[float]) -> str:
    """``p50 … ms   p95 … ms`` of a latency sample."""
    return f"p50 {percentile(values, 50):7.2f} ms   p95 {percentile(values, 95):7.2f} ms"


def progress(message: str) -> None:
    """A progress line on stderr (stdout carries the report)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _load_average() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.1f} (1 min) / {five:.1f} (5 min)"


# -- sections ----------------------------------------------------------------------------------


def _tuning_label(settings: Settings) -> str:
    tuning = settings.store_tuning
    disk = "on disk" if tuning.vectors_on_disk else "in RAM"
    return (
        f"vectors {disk}, quantization {tuning.quantization} (rescore {tuning.rescore}, "
        f"oversampling {tuning.oversampling}), HNSW m {tuning.hnsw_m} / ef_construct "
        f"{tuning.hnsw_ef_construct}, segments <= {tuning.max_segment_mb} MB"
    )


def environment_section(ctx: BenchContext) -> list[Row]:
    """Machine and run parameters: the context every figure below is read in."""
    settings = Settings()
    threads = str(settings.torch_threads or "torch default (one per core)")
    return [
        ("--- environment", ""),
        ("CPUs / load average at start", f"{os.cpu_count()} / {_load_average()}"),
        ("torch threads (RETRIEVAL_TORCH_THREADS)", threads),
        ("inference backend (RETRIEVAL_INFERENCE_BACKEND)", settings.inference_backend),
        ("rerank batch (RETRIEVAL_RERANK_BATCH_SIZE)", str(settings.rerank_batch_size)),
        ("store layout (RETRIEVAL_STORE_TUNING__*)", _tuning_label(settings)),
        ("queries per latency figure", f"{ctx.queries} (rerank: {ctx.rerank_queries})"),
    ]


def ingest_section(ctx: BenchContext) -> list[Row]:
    """Real indexing pipeline vs raw ``encode`` on the same chunks (fresh process)."""
    progress(f"ingest: raw encode vs pipeline on {ctx.ingest_sample} chunks")
    result = run_in_fresh_process(measure_ingest, str(ctx.dataset), ctx.ingest_sample)
    raw, ingest = float(result["raw_rate"]), float(result["ingest_rate"])
    raw_all = float(result["raw_all_rate"])
    memory: MemoryFigures = result["memory"]
    parts = int(result["part_sentences"])
    return [
        (
            "--- ingest",
            f"({result['chunks']} real chunks, docs domain; raw and pipeline alternate in "
            f"{INGEST_ROUNDS} rounds)",
        ),
        ("raw encode throughput, chunk texts", f"{raw:7.1f} chunks/s"),
        (
            f"raw encode, chunk + part texts (part_sentences={parts})",
            f"{raw_all:7.1f} chunks/s   (what the pipeline embeds)",
        ),
        (
            "ingest throughput (embed+BM25+upsert+index)",
            f"{ingest:7.1f} chunks/s   = {ingest / raw_all:.2f}x raw encode of the same texts "
            f"(target >= 0.8x); {ingest / raw:.2f}x chunk texts alone",
        ),
        ("ingest process memory", memory.describe()),
    ]


def _prepared_corpus(ctx: BenchContext) -> Path:
    directory = ctx.shared.get("corpus_dir")
    if isinstance(directory, Path):
        return directory
    directory = ctx.workdir / "corpus"
    progress(f"embedding {ctx.unique_passages} distinct passages for the synthetic stores")
    run_in_fresh_process(
        prepare_corpus, str(ctx.dataset), str(directory), ctx.unique_passages, ctx.queries
    )
    ctx.shared["corpus_dir"] = directory
    return directory


def _rss_note(size: int, peak_mb: float) -> str:
    """`` = 0.9x the 1200 MB target (met)`` for sizes with a target, else empty."""
    applicable = [chunks for chunks in RSS_TARGETS_MB if chunks <= size]
    if not applicable:
        return ""
    target = RSS_TARGETS_MB[max(applicable)]
    verdict = "met" if peak_mb <= target else "NOT met"
    return f"   = {peak_mb / target:.2f}x the {target} MB target ({verdict})"


def _recall_rows(recall: RecallFigures) -> list[Row]:
    def figure(value: float) -> str:
        verdict = "met" if value >= RECALL_TARGET else "NOT met"
        return f"{value:.3f}   (target >= {RECALL_TARGET}: {verdict})"

    return [
        (f"exact top-10 recall ({recall.queries} queries)", "HNSW + int8 rescored vs exact"),
        ("  chunk-vector nearest neighbours", figure(recall.chunk)),
        ("  dense stage (chunk + best part blend)", figure(recall.dense)),
        ("  hybrid fused top 10 vs fused over exact dense", figure(recall.hybrid)),
    ]


def store_size_rows(ctx: BenchContext, size: int) -> list[Row]:
    """Build a store of ``size`` chunks in one process, serve queries from another."""
    corpus_dir = _prepared_corpus(ctx)
    store_dir = ctx.workdir / f"store-{size}"
    progress(f"building a {size:,}-chunk store")
    built = run_in_fresh_process(build_store, str(corpus_dir), str(store_dir), size)
    progress(f"serving queries from the {size:,}-chunk store")
    served = run_in_fresh_process(
        serve_queries, str(store_dir), str(corpus_dir), ctx.rerank_queries
    )
    embed_p50 = percentile(served["embed_ms"], 50)
    hybrid = served["hybrid_ms"]
    serving: MemoryFigures = served["memory"]
    builder: MemoryFigures = built["memory"]
    return [
        (
            f"--- {size:,} chunks, 8 tenants",
            f"(store built in {built['seconds']:.0f}s, {built['disk_mb']:,.0f} MB on disk, "
            f"optimized every {built['segment_points']:,} points)",
        ),
        ("bare query embedding (baseline)", ms_figures(served["embed_ms"])),
        (
            "hybrid search, no rerank (incl. embedding)",
            f"{ms_figures(hybrid)}   = {percentile(hybrid, 50) / embed_p50:.2f}x bare embed "
            "p50 (target <= 1.5x)",
        ),
        ("hybrid search, embedding cached (Searcher)", ms_figures(served["cached_ms"])),
        ("store-only hybrid query (both round trips)", ms_figures(served["store_ms"])),
        (f"hybrid + rerank depth {served['rerank_depth']}", ms_figures(served["rerank_ms"])),
        ("  reranker", str(served["reranker"])),
        (
            "serving process memory (store+models, queried)",
            serving.describe() + _rss_note(size, serving.peak),
        ),
        ("  after opening store and loading models", served["ready_memory"].describe()),
        ("  after the searches without rerank", served["no_rerank_memory"].describe()),
        *_recall_rows(served["recall"]),
        ("store builder process memory (streaming)", builder.describe()),
        ("load average after this size", _load_average()),
    ]


def stores_section(ctx: BenchContext) -> list[Row]:
    """Search latency and memory for each requested store size."""
    return [row for size in ctx.sizes for row in store_size_rows(ctx, size)]


def domain_ingest_section(ctx: BenchContext) -> list[Row]:
    """`ingest` per domain on the sample corpora, and a no-op re-ingest of 1,000 files."""
    from retrieval_eval.bench_ingest import bench_ingest
    from retrieval_eval.product import load_embedder

    progress("ingest per domain: sample corpora, then a no-op re-ingest of 1,000 files")
    rows = bench_ingest(load_embedder(Settings(reranker_model="none")))
    return [
        ("--- ingest per domain (retrieval_samples/*/corpus, `retrieval-mcp ingest` path)", ""),
        *rows,
    ]


def server_section(ctx: BenchContext) -> list[Row]:
    """MCP server: start-up to tools/list, and doc_search over stdio / HTTP vs in-process."""
    from retrieval_eval.bench_server import run_server_bench

    progress("MCP server: start-up and protocol overhead (stdio, Streamable HTTP)")
    rows = run_server_bench(queries=min(ctx.queries, 100))
    return [("--- MCP server (subprocesses: `retrieval-mcp serve`)", ""), *rows]


def watch_section(ctx: BenchContext) -> list[Row]:
    """`retrieval-mcp watch`: save-to-searchable latency, idle CPU and memory (subprocess)."""
    from retrieval_eval.bench_watch import run_watch_bench

    progress("watch: saving files with a watcher running, then idle")
    rows = run_watch_bench()
    return [("--- watch (subprocess: `retrieval-mcp watch`, editor-style saves)", ""), *rows]


def backends_section(ctx: BenchContext) -> list[Row]:
    """Each inference backend beside torch float32 (latency, ingest, cosine, serving RSS)."""
    from retrieval_eval.bench_backends import backend_rows

    return backend_rows(ctx)


def concurrency_section(ctx: BenchContext) -> list[Row]:
    """1, 4 and 16 Streamable HTTP clients, before/after batching and bounds (subprocesses)."""
    from retrieval_eval.bench_concurrency import run_concurrency_bench

    progress("concurrency: 1, 4, 16 HTTP clients, two tenants, before and after")
    rows = run_concurrency_bench(soak_seconds=ctx.soak_seconds)
    heading = "--- concurrency (Streamable HTTP clients, two tenants, mixed tools; subprocesses)"
    return [(heading, ""), *rows]


SECTIONS: list[BenchSection] = [
    environment_section,
    backends_section,
    ingest_section,
    stores_section,
    domain_ingest_section,
    server_section,
    watch_section,
]
"""The report, in order. Other benchmark modules add their section function here."""

SECTION_NAMES: dict[str, BenchSection] = {
    "environment": environment_section,
    "backends": backends_section,
    "ingest": ingest_section,
    "stores": stores_section,
    "domains": domain_ingest_section,
    "server": server_section,
    "watch": watch_section,
    "concurrency": concurrency_section,
}
"""Names for `retrieval-mcp bench --sections`."""


# -- running -----------------------------------------------------------------------------------


def format_rows(rows: Sequence[Row]) -> str:
    """Aligned report lines."""
    return "\n".join(f"{label:<{LABEL_WIDTH - 1}} {value}".rstrip() for label, value in rows)


def run_bench(
    sizes: Sequence[int],
    dataset: Path,
    *,
    queries: int = 200,
    sections: Sequence[BenchSection] | None = None,
    unique_passages: int = 1000,
    ingest_sample: int = 400,
    rerank_queries: int = 50,
    soak_seconds: float = 0.0,
) -> str:
    """Run each section in order and return the printed report."""
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as scratch:
        ctx = BenchContext(
            sizes=list(sizes),
            dataset=dataset,
            workdir=Path(scratch),
            queries=queries,
            unique_passages=unique_passages,
            ingest_sample=ingest_sample,
            rerank_queries=min(rerank_queries, queries),
            soak_seconds=soak_seconds,
        )
        rows: list[Row] = []
        for section in SECTIONS if sections is None else sections:
            section_rows = section(ctx)
            print(format_rows(section_rows), file=sys.stderr, flush=True)
            rows.extend(section_rows)
    return format_rows(rows)
