"""The lazy embedder: token counts without the weights, the same vectors once loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.ingest.budget import TokenBudget
from server.ingest.runner import run_ingest
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble, load_embedder
from server.retrieval.lazy_embedder import LazyEmbedder
from server.settings import Settings

TEXTS = ["Honey bees communicate with a waggle dance.", "Übergrößenträger — naïve café ☕ 42"]


def test_counts_tokens_without_loading_then_embeds_like_the_eager_one(
    embedder: DenseEmbedder,
) -> None:
    lazy = load_embedder(Settings(reranker_model="none"), lazy=True)
    assert isinstance(lazy, LazyEmbedder) and not lazy.model_loaded
    assert lazy.max_tokens == embedder.max_tokens
    assert [lazy.count_tokens(t) for t in TEXTS] == [embedder.count_tokens(t) for t in TEXTS]
    long_text = " ".join(["tokenisation"] * 400)
    assert lazy.truncate(long_text) == embedder.truncate(long_text)
    assert not lazy.model_loaded  # the tokenizer alone answered

    assert lazy.dimension == embedder.dimension
    assert lazy.model_loaded
    np.testing.assert_allclose(
        lazy.embed_documents(TEXTS), embedder.embed_documents(TEXTS), atol=1e-5
    )
    assert lazy.embed_query(TEXTS[0]) == lazy.embed_query(TEXTS[0])
    assert lazy.cache.hits == 1


def test_a_noop_reingest_never_loads_the_model(tmp_path: Path, embedder: DenseEmbedder) -> None:
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"n{i}.md").write_text(f"# Note {i}\n\nBees and tides, paragraph {i}.\n")
    settings = Settings(store_path=tmp_path / "store", reranker_model="none")
    store = EdgeStore(settings.store_path)
    try:
        first = assemble(settings, store, embedder, None)
        assert (
            len(
                run_ingest(first.indexer, [corpus], domain="docs", tenant="t", progress=False).added
            )
            == 3
        )
        lazy = load_embedder(settings, lazy=True)
        again = assemble(settings, store, lazy, None)
        report = run_ingest(again.indexer, [corpus], domain="docs", tenant="t", progress=False)
        assert report.unchanged == 3 and report.chunks_written == 0
        assert isinstance(lazy, LazyEmbedder) and not lazy.model_loaded
        (corpus / "n0.md").write_text("# Note 0\n\nAn edit about moons.\n")
        report = run_ingest(again.indexer, [corpus], domain="docs", tenant="t", progress=False)
        assert report.updated and lazy.model_loaded
    finally:
        store.close()


def test_measuring_a_text_past_the_window_prints_no_tokenizer_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Ingest measures whole files in word-pieces; transformers' "Token indices sequence length
    is longer than the specified maximum" warning then reads to users as an error."""
    lazy = load_embedder(Settings(reranker_model="none"), lazy=True)
    tokenizer = lazy._tokenizer
    tokenizer.deprecation_warnings.clear()  # the warning is printed once per tokenizer
    long_text = " ".join(["tokenisation"] * 700)
    assert lazy.count_tokens(long_text) > lazy.max_tokens
    assert lazy.truncate(long_text) != long_text
    budget = TokenBudget(lazy.count_tokens, lazy.max_tokens - 2)
    assert budget.measure(long_text) > lazy.max_tokens  # the offsets path of long texts
    assert len(budget.split_oversized(long_text, 100)) > 1
    assert "longer than the specified maximum" not in capfd.readouterr().err
