"""Store faults as an MCP client sees them: a one-line tool error, and the server keeps serving.

A real server session over a real embedded store whose disk "fills up" (the free-space reserve
raised above the free space, as the statvfs check sees it; the real full file system is in
tests/retrieval/test_store_faults.py) and whose vector file is truncated under it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp_support import error_text

from server.app import build_server
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
