"""Ingest benchmark: throughput per domain against raw encode, and the cost of a no-op re-ingest.

Per domain, the bundled sample corpus (``retrieval_samples/<domain>/corpus``) goes through the
real ingest job (walk, chunk, embed, BM25, upsert) into a scratch Qdrant Edge store; the baseline is
``embed_documents`` alone on exactly the texts that were embedded (title + chunk). The no-op
case ingests a folder of small files once, then times the second run over the unchanged
folder, counting model calls (there must be none).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from retrieval_eval.product import (
    DenseEmbedder,
    EdgeStore,
    assemble_pipeline,
    chunk_file,
    discover,
    keyword_text,
    make_budget,
    part_texts,
    run_ingest,
    sample_folder,
)
from server.settings import Domain, Settings

NOOP_TARGET_S = 2.0


def _corpus_texts(
    settings: Settings, embedder: DenseEmbedder, domain: Domain
) -> tuple[list[str], int]:
    """The texts ingest embeds for the domain's sample corpus (title + chunk, then the part
    texts when the domain has part vectors) and the number of chunks."""
    budget = make_budget(embedder, settings.ingest)
    part_size = settings.domains[domain].part_sentences
    texts: list[str] = []
    parts: list[str] = []
    with sample_folder(domain) as folder:
        for file in discover([folder / "corpus"], domain, 10**9).files:
            pieces = chunk_file(
                file, file.path.read_bytes(), domain, budget, settings.ingest.code_overlap_lines
            )
            texts.extend(keyword_text(p.title, p.text) for p in pieces)
            if part_size:
                parts.extend(t for p in pieces for t in part_texts(p.text, part_size))
    return texts + parts, len(texts)


def _write_small_files(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"note_{i:04d}.md").write_text(
            f"# Note {i}\n\nShort note number {i} about topic {i % 37}.\n", encoding="utf-8"
        )


class _CountingEmbed:
    """Counts calls to the embedder's document encoder while installed."""

    def __init__(self, embedder: DenseEmbedder) -> None:
        self.embedder = embedder
        self.calls = 0
        self._original: Callable[..., Any] = embedder.embed_documents

    def __enter__(self) -> _CountingEmbed:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return self._original(*args, **kwargs)

        self.embedder.embed_documents = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.embedder.embed_documents  # back to the class method


def bench_ingest(
    embedder: DenseEmbedder,
    *,
    domains: Sequence[Domain] = tuple(Domain),
    noop_files: int = 1000,
) -> list[tuple[str, str]]:
    """(label, figure) rows: per-domain ingest vs raw encode, and the no-op re-ingest."""
    settings = Settings(reranker_model="none")
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-ingest-") as scratch:
        root = Path(scratch)
        store = EdgeStore(root / "store")
        try:
            pipeline = assemble_pipeline(settings, store, embedder)
            for domain in domains:
                texts, chunk_count = _corpus_texts(settings, embedder, domain)
                start = time.perf_counter()
                embedder.embed_documents(texts)
                raw_rate = chunk_count / (time.perf_counter() - start)
                with sample_folder(domain) as folder:
                    report = run_ingest(
                        pipeline.indexer,
                        [folder / "corpus"],
                        domain=domain,
                        tenant="bench",
                        progress=False,
                    )
                rate = report.chunks_written / max(report.seconds, 1e-9)
                rows.append(
                    (
                        f"ingest {domain.value} ({len(report.added)} files, "
                        f"{report.chunks_written} chunks)",
                        f"{rate:7.1f} chunks/s vs raw encode {raw_rate:7.1f} chunks/s "
                        f"= {rate / raw_rate:.2f}x (walk+chunk+embed+BM25+upsert; raw encode "
                        "covers the same texts, part texts included)",
                    )
                )

            folder = root / "noop"
            _write_small_files(folder, noop_files)
            first = run_ingest(
                pipeline.indexer, [folder], domain="docs", tenant="noop", progress=False
            )
            with _CountingEmbed(embedder) as counter:
                again = run_ingest(
                    pipeline.indexer, [folder], domain="docs", tenant="noop", progress=False
                )
            verdict = "ok" if again.seconds < NOOP_TARGET_S and counter.calls == 0 else "MISSED"
            rows.append(
                (
                    f"no-op re-ingest ({noop_files} unchanged files)",
                    f"{again.seconds:6.2f} s, {counter.calls} model calls, "
                    f"{again.chunks_written} upserts (first run {first.seconds:.1f} s; "
                    f"target < {NOOP_TARGET_S:.0f} s, 0 calls: {verdict})",
                )
            )
        finally:
            store.close()
    return rows


def format_rows(rows: list[tuple[str, str]]) -> str:
    """Aligned two-column text."""
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
