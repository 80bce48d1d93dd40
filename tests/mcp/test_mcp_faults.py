"""Store faults as an MCP client sees them: a one-line tool error, and the server keeps serving.

A real server session over a real embedded store whose disk "fills up" (the free-space reserve
raised above the free space, as the statvfs check sees it; the real full file system is in
tests/retrieval/test_store_faults.py) and whose vector file is truncated under it.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from mcp import Client
from mcp_support import error_text

from server.app import build_server
from server.errors import RetrievalError
from server.retrieval.disk_space import MIB, DiskGuard, free_bytes
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime
from server.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


async def test_a_full_disk_is_a_one_line_tool_error_and_search_keeps_working(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    store = EdgeStore(tmp_path / "store", disk_reserve_mb=0)
    settings = Settings(
        store_path=store.root,
        reranker_model="none",
        mcp={"allow_write": True, "load_delay_seconds": 0},
    )
    try:
        runtime = ServerRuntime(settings, store=store, embedder=embedder)
        async with Client(build_server(runtime, stdio_tenant="acme")) as session:
            text = "The quarrelite valve is checked every Monday by the night shift."
            first = await session.call_tool("add_text", {"text": text, "title": "Valves"})
            assert not first.is_error
            store.disk = DiskGuard(store.root, free_bytes(store.root) + 1024 * MIB)  # disk full
            refused = await session.call_tool(
                "add_text", {"text": "Another note about pumps.", "title": "Pumps"}
            )
            message = error_text(refused)
            assert refused.is_error and "\n" not in message.strip()
            assert "not enough free disk space" in message and "retry" in message
            found = await session.call_tool("doc_search", {"query": "quarrelite valve"})
            assert not found.is_error
            assert found.structured_content is not None
            assert found.structured_content["hits"][0]["text"].startswith("The quarrelite")
            store.disk = DiskGuard(store.root, MIB)  # space freed: no restart needed
            again = await session.call_tool(
                "add_text", {"text": "Another note about pumps.", "title": "Pumps"}
            )
            assert not again.is_error
    finally:
        store.close()


def test_a_call_waiting_for_the_models_ends_when_the_runtime_closes(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    """Field report: a stdio client died while its first search waited for the models; the
    loader, told to close, left them, and the waiting call held the exiting server for the
    whole model wait (5 minutes). It now ends as soon as the runtime closes."""
    store = EdgeStore(tmp_path / "store")
    settings = Settings(
        store_path=store.root, reranker_model="none", mcp={"model_wait_seconds": 600}
    )
    runtime = ServerRuntime(settings, store=store, embedder=embedder)
    runtime.start()
    never = threading.Event()  # models that will not come
    failures: list[BaseException] = []

    def wait() -> None:
        try:
            runtime._wait(never, "the models")
        except RetrievalError as exc:
            failures.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    started = time.monotonic()
    runtime.close()
    waiter.join(timeout=30)
    assert not waiter.is_alive() and time.monotonic() - started < 30
    assert [str(f) for f in failures] == ["the server is shutting down"]
