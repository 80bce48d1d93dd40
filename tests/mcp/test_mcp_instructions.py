"""Server instructions describe the server as configured: reranking only where it is on, the
write tools only with --allow-write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_support import server_settings

from server.app import build_server
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime

WRITE_TOOL_NAMES = ("index_path", "add_text", "remove_source", "job_status")


@pytest.fixture
def store(tmp_path: Path, embedder: DenseEmbedder) -> Iterator[tuple[EdgeStore, DenseEmbedder]]:
    opened = EdgeStore(tmp_path / "store")
    yield opened, embedder
    opened.close()


def instructions(store: tuple[EdgeStore, DenseEmbedder], **settings: Any) -> str:
    # no model loads in the background: the instructions come from the settings alone
    edge, embedder = store
    runtime = ServerRuntime(
        server_settings(edge.root, **settings), store=edge, embedder=embedder, load_reranker=False
    )

    async def read() -> str:
        async with Client(build_server(runtime, stdio_tenant="acme")) as client:
            assert client.instructions is not None
            return client.instructions

    return anyio.run(read)


def test_no_rerank_claim_when_reranking_is_off(store: tuple[EdgeStore, DenseEmbedder]) -> None:
    text = instructions(store)  # server_settings: reranker_model none
    assert "no reranking" in text and "cross-encoder" not in text
    for tool in ("doc_search", "legal_search", "code_search", "get_chunk", "index_stats"):
        assert tool in text
    assert "read-only" in text and not any(name in text for name in WRITE_TOOL_NAMES)


def test_reranking_named_per_domain_when_on(
    store: tuple[EdgeStore, DenseEmbedder], tiny_cross_encoder: Path
) -> None:
    on = instructions(store, reranker_model=str(tiny_cross_encoder))
    assert "cross-encoder reranks the results in all domains" in on
    code_off = instructions(
        store, reranker_model=str(tiny_cross_encoder), domains={"code": {"rerank_depth": 0}}
    )
    assert "reranks the results in docs, legal once" in code_off


def test_write_tools_only_with_allow_write(store: tuple[EdgeStore, DenseEmbedder]) -> None:
    text = instructions(store, mcp={"allow_write": True})
    assert all(name in text for name in WRITE_TOOL_NAMES) and "read-only" not in text


def test_no_rerank_claim_when_the_cross_encoder_cannot_load_offline(
    store: tuple[EdgeStore, DenseEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a hub id in no local cache, downloads off: no search can ever rerank
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = instructions(store, reranker_model="example-org/no-such-cross-encoder")
    assert "not on this machine" in text and "reranks the results" not in text


def test_a_cross_encoder_to_download_is_named_as_such(
    store: tuple[EdgeStore, DenseEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    # downloads allowed but the model not here: it may never load, so no unconditional claim
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    text = instructions(store, reranker_model="example-org/no-such-cross-encoder")
    assert "if its model can be downloaded" in text and "fused only" in text
