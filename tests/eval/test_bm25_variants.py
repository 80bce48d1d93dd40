"""BM25 k1 / b variants on an indexed eval store: re-encoding equals indexing with them."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval_eval.beir import BeirDataset, BeirDocument
from retrieval_eval.bm25_variants import encode_variant, restore_default, stored_variant
from retrieval_eval.runner import EVAL_TENANT, ensure_indexed
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.store import HybridQuery
from server.settings import Domain, Settings

DOCS = [
    BeirDocument("d1", "Licence", "1. Each contributor grants you a patent licence."),
    BeirDocument("d2", "Licence", "2. You may distribute copies of the work in any medium."),
    BeirDocument(
        "d3",
        "Licence",
        "3. Patent claims licensable by a contributor are covered; patent litigation ends the "
        "patent licence granted to you for that work, and the licence terminates at once.",
    ),
    BeirDocument("d4", "Policy", "Packages must not install files in both /bin and /usr/bin."),
]
QUERY = "patent licence"


def _pipeline(path: Path, embedder: DenseEmbedder, **bm25: float) -> Retrieval:
    settings = Settings(
        store_path=path,
        reranker_model="none",
        domains={"legal": {"bm25": bm25}} if bm25 else {},  # type: ignore[dict-item]
    )
    return assemble(settings, EdgeStore(path), embedder, None)


def _sparse_scores(retrieval: Retrieval) -> dict[str, float]:
    request = HybridQuery(
        tenant=EVAL_TENANT,
        limit=10,
        candidates=10,
        sparse=retrieval.searcher.analysis.sparse_encoder(Domain.LEGAL).encode_query(QUERY),
    )
    return {p.id: p.score for p in retrieval.store.query("legal", request).sparse}


def test_variant_equals_indexing_with_it(tmp_path: Path, embedder: DenseEmbedder) -> None:
    dataset = BeirDataset("tiny", DOCS, {"q": QUERY}, {"q": {"d1": 1}})
    retrieval = _pipeline(tmp_path / "a", embedder)
    other = _pipeline(tmp_path / "b", embedder, k1=2.0, b=0.2)
    try:
        assert not ensure_indexed(retrieval, dataset, "legal")["reused"]
        ensure_indexed(other, dataset, "legal")
        default = _sparse_scores(retrieval)
        bm25 = retrieval.settings.domains[Domain.LEGAL].bm25
        own = (bm25.k1, bm25.b)
        assert stored_variant(retrieval, "legal") == own
        assert encode_variant(retrieval, "legal", *own) == 0  # already stored

        assert encode_variant(retrieval, "legal", 2.0, 0.2) == len(DOCS)
        assert stored_variant(retrieval, "legal") == (2.0, 0.2)
        variant = _sparse_scores(retrieval)
        assert variant == pytest.approx(_sparse_scores(other), rel=1e-5)
        assert variant != pytest.approx(default, rel=1e-3)

        # the next eval run on this store puts the settings' own vectors back
        assert ensure_indexed(retrieval, dataset, "legal")["reused"]
        assert stored_variant(retrieval, "legal") == own
        assert _sparse_scores(retrieval) == pytest.approx(default, rel=1e-5)
        assert restore_default(retrieval, "legal") == 0
    finally:
        retrieval.store.close()
        other.store.close()
