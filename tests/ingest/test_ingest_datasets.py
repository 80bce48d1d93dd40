"""Smoke test: the shipped sample corpora (package data, read as the demo reads them) ingest
cleanly and their queries find the right file."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.demo import sample_folder, sample_queries
from server.ingest.runner import run_ingest
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.types import SearchRequest
from server.settings import Settings

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` skips it


@pytest.mark.parametrize("domain", ["docs", "legal", "code"])
def test_sample_corpus_queries_find_the_expected_source(
    domain: str, tmp_path: Path, embedder: DenseEmbedder
) -> None:
    settings = Settings(store_path=tmp_path / "store", reranker_model="none")
    store = EdgeStore(settings.store_path)
    try:
        with sample_folder(domain) as folder:
            assert (folder / "README.md").read_text().strip()
            retrieval = assemble(settings, store, embedder, None)
            report = run_ingest(
                retrieval.indexer,
                [folder / "corpus"],
                domain=domain,
                tenant="smoke",
                progress=False,
            )
            assert not report.skipped, report.skipped
            files = [p for p in (folder / "corpus").rglob("*") if p.is_file()]
            assert len(report.added) == len([p for p in files if "__pycache__" not in p.parts])
            queries = sample_queries(domain)
            assert len(queries) >= 5
            misses = []
            for q in queries:
                request = SearchRequest(q["query"], domain, "smoke", top_k=3, mode="hybrid")
                result = retrieval.searcher.search(request)
                found = [h.metadata["rel_path"] for h in result.hits]
                if q["expected"] not in found:
                    misses.append((q["query"], q["expected"], found))
            assert not misses, misses
    finally:
        store.close()
