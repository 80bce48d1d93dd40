"""Passage packing never exceeds the model window; settings load from env and TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.errors import InvalidRequestError
from server.ingest.runner import IngestJob
from server.retrieval.analysis import part_texts, resolve_domain
from server.retrieval.boundaries import split_sentences
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.types import SearchRequest
from server.settings import CONFIG_FILE_ENV, Domain, Settings
from server.tenants import validate_tenant


def _words(text: str) -> int:
    return len(text.split())


def test_one_sentence_splitter_breaks_at_blank_lines_not_abbreviations() -> None:
    text = "Setup\n\nInstall it, e.g. with pip. Then run Art. 5 checks!\n  \nDone"
    assert split_sentences(text) == [
        "Setup",
        "Install it, e.g. with pip.",
        "Then run Art. 5 checks!",
        "Done",
    ]
    # part vectors group the same sentences
    assert part_texts(text, 2) == [
        "Setup Install it, e.g. with pip.",
        "Then run Art. 5 checks! Done",
    ]


def test_truncate_fits_the_window(embedder: DenseEmbedder) -> None:
    long = "tokenization " * 1000
    assert embedder.count_tokens(embedder.truncate(long)) <= embedder.max_tokens - 2
    assert embedder.truncate("short text") == "short text"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRIEVAL_STORE_PATH", str(tmp_path / "st"))
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", "none")
    monkeypatch.setenv("RETRIEVAL_DOMAINS__CODE__CANDIDATES", "321")
    s = Settings()
    assert s.store_path == tmp_path / "st"
    assert not s.reranker_enabled
    assert s.domains[Domain.CODE].candidates == 321
    # a partial domain override keeps the other domains' defaults
    assert s.domains[Domain.LEGAL].bm25.legal_references


def test_settings_from_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "retrieval.toml"
    config.write_text(
        'qdrant_url = "http://qdrant.internal:6333"\n'
        "[domains.docs]\n"
        'collection = "handbook"\n'
        "[domains.docs.fusion]\n"
        'method = "rrf"\n'
        "dense_weight = 2.0\n"
    )
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    s = Settings()
    assert s.qdrant_url == "http://qdrant.internal:6333"
    assert s.domains[Domain.DOCS].collection == "handbook"
    assert s.domains[Domain.DOCS].fusion.method == "rrf"
    assert s.domains[Domain.DOCS].fusion.dense_weight == 2.0


def test_unknown_domain_message() -> None:
    with pytest.raises(ValueError, match="expected one of: docs, legal, code"):
        resolve_domain(Settings(), "finance")


def test_legal_default_routes_citations_to_sparse_heavy_rrf() -> None:
    """The legal sweep (README, Evaluation): citations want sparse-heavy RRF with k=1, section
    titles and questions want DBSF (zero-filled: README, "Rare-word lookups"); no static setting
    serves both."""
    legal = Settings().domains[Domain.LEGAL]
    keyword = legal.keyword_fusion
    assert keyword is not None and keyword.method == "rrf" and keyword.rrf_k == 1
    assert keyword.sparse_weight > keyword.dense_weight
    assert legal.keyword_triggers == ["citation"]
    assert legal.fusion.method == "dbsf_zero_fill"
    assert Settings().domains[Domain.DOCS].fusion.method == "dbsf_zero_fill"
    assert Settings().domains[Domain.DOCS].keyword_fusion is None


@pytest.mark.parametrize("tenant", ["a b", "", " ", "-lead", "x" * 129, "ü", "a/b"])
def test_tenant_names_are_one_rule_everywhere(tenant: str, tmp_path: Path) -> None:
    """ingest, index, delete and search refuse a tenant name that serve and token refuse, so
    no data is stored that no server would serve."""
    with pytest.raises(InvalidRequestError, match="tenant"):
        validate_tenant(tenant)
    store = EdgeStore(tmp_path / "store")
    try:
        retrieval = assemble(Settings(reranker_model="none"), store, _NoModel(), None)
        with pytest.raises(InvalidRequestError, match="tenant"):
            retrieval.searcher.search(SearchRequest("query", domain="docs", tenant=tenant))
        with pytest.raises(InvalidRequestError, match="tenant"):
            retrieval.indexer.delete("docs", tenant)
        with pytest.raises(InvalidRequestError, match="tenant"):
            IngestJob(retrieval.indexer, domain="docs", tenant=tenant)
    finally:
        store.close()


class _NoModel:
    """Nothing here may reach the embedder: the tenant is refused first."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"embedder used: {name}")
