"""The event loop and HTTP parser the HTTP transports are served with (server/http_stack.py).

Invariant: the fast stack (uvloop + httptools) serves by default; the stock one (asyncio + h11)
when the setting says so, or, with a warning, when either package is missing. Both answer
MCP calls alike (the transport tests run on the default; one call here on the stock one).
"""

from __future__ import annotations

import logging
import sys

import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_support import TENANTS, http_server

from server.auth import TokenFile
from server.http_stack import FAST, STOCK, http_stack
from server.runtime import ServerRuntime
from server.settings import ConcurrencySettings, Settings


def test_fast_stack_by_default_stock_when_asked() -> None:
    assert http_stack(ConcurrencySettings()) == FAST
    assert http_stack(ConcurrencySettings(fast_http=False)) == STOCK
    assert Settings().concurrency.fast_http is True


@pytest.mark.parametrize("missing", ["uvloop", "httptools"])
def test_a_missing_package_falls_back_with_a_warning(
    missing: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # what an uninstalled package looks like
    with caplog.at_level(logging.WARNING, logger="server.http_stack"):
        assert http_stack(ConcurrencySettings()) == STOCK
    assert f"{missing} not installed" in caplog.text


def test_fast_http_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_CONCURRENCY__FAST_HTTP", "false")
    assert Settings().concurrency.fast_http is False


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("fast", [True, False])
async def test_both_stacks_answer_a_tool_call(
    fast: bool,
    runtime: ServerRuntime,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    anyio_backend: str,
) -> None:
    monkeypatch.setattr(runtime.settings.concurrency, "fast_http", fast)
    tokens = TokenFile(tmp_path_factory.mktemp("tokens") / "tokens.json")
    token = tokens.add(TENANTS[0])[0]
    with http_server(runtime, tokens, "streamable-http") as base:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            result = await client.call_tool("list_sources", {"domain": "docs"})
    assert not result.is_error
    assert result.structured_content and result.structured_content["sources"]
