"""mcp.json works as written: the stdio entry starts a server on the documented store, the
HTTP entry's header uses Cursor's `${env:NAME}` syntax and authenticates once expanded."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_support import REPO_ROOT, cli_env, http_server, server_settings

from server.auth import TokenFile
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime
from server.settings import Settings

pytestmark = pytest.mark.anyio
CURSOR_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
"""Cursor's interpolation of environment variables in mcp.json (`${NAME}` stays literal)."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def entries() -> dict[str, Any]:
    servers: dict[str, Any] = json.loads((REPO_ROOT / "mcp.json").read_text())["mcpServers"]
    return servers


def cursor_expand(value: str, env: dict[str, str]) -> str:
    """What Cursor sends for a config value: `${env:NAME}` replaced by the variable."""
    return CURSOR_ENV.sub(lambda m: env[m.group(1)], value)


def test_store_path_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_STORE_PATH", "~/somewhere/store")
    assert Settings().store_path == Path.home() / "somewhere/store"


@pytest.mark.slow
async def test_stdio_entry_runs_as_written(entries: dict[str, Any], tmp_path: Path) -> None:
    entry = entries["retrieval"]
    assert entry["command"] == "retrieval-mcp"  # run here as `python -m server.cli`
    cwd = tmp_path / "client-cwd"
    cwd.mkdir()
    env = {**cli_env(), **entry.get("env", {}), "HOME": str(tmp_path)}
    env.pop("XDG_DATA_HOME", None)
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "server.cli", *entry["args"]], env=env, cwd=cwd
    )
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        stats = await client.call_tool("index_stats", {})
    assert "doc_search" in names and not stats.is_error
    assert (tmp_path / ".local/share/retrieval-mcp/store").is_dir()
    assert not (cwd / "~").exists()


async def test_http_entry_authenticates_with_cursor_syntax(
    entries: dict[str, Any], tmp_path: Path, embedder: DenseEmbedder
) -> None:
    entry = entries["retrieval-http"]
    header = entry["headers"]["Authorization"]
    assert header == "Bearer ${env:RETRIEVAL_MCP_TOKEN}"
    tokens = TokenFile(tmp_path / "tokens.json")
    token, _ = tokens.add("acme")
    env = {**os.environ, "RETRIEVAL_MCP_TOKEN": token}
    store = EdgeStore(tmp_path / "store")
    runtime = ServerRuntime(server_settings(store.root), store=store, embedder=embedder)
    try:
        with http_server(runtime, tokens, "streamable-http") as base:
            url = entry["url"].replace("http://127.0.0.1:8000", base)
            http = create_mcp_http_client(headers={"Authorization": cursor_expand(header, env)})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                stats = await client.call_tool("index_stats", {})
        assert not stats.is_error and stats.structured_content is not None
        assert stats.structured_content["tenant"] == "acme"
    finally:
        store.close()
