"""Bounded work under load: a full gate answers "busy, retry" at once (a tool error in-process,
503 + Retry-After over real HTTP), a call past its deadline gets a one-line timeout error, and
the server keeps serving afterwards.

The gate is held by work that blocks on an event the test controls (standing in for a slow
call), so which calls are refused never depends on timing.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_support import SECRET_WORD, error_text, http_server

from server.app import build_server
from server.auth import TokenFile
from server.request_gate import RequestGate
from server.runtime import ServerRuntime
from server.settings import ConcurrencySettings

pytestmark = pytest.mark.anyio

SEARCH = {"query": "zephyrium", "top_k": 3}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def held(gate: RequestGate, slots: int) -> AsyncIterator[None]:
    """``slots`` calls occupying ``gate`` until the block ends."""
    release = threading.Event()

    async def hold() -> None:
        with contextlib.suppress(ToolError):  # a holder may time out: its work holds on
            await gate.run("hold", release.wait)

    async with anyio.create_task_group() as tasks:
        for _ in range(slots):
            tasks.start_soon(hold)
        # wait for the holders to be admitted and running, not for a duration
        while gate.pending < slots or gate.running < min(slots, gate.settings.max_in_flight):
            await anyio.sleep(0.01)
        try:
            yield
        finally:
            release.set()


async def _search_works(client: Client) -> None:
    result = await client.call_tool("doc_search", SEARCH)
    assert not result.is_error, result.content
    assert SECRET_WORD["acme"] in str(result.structured_content)


async def test_a_full_gate_refuses_with_a_one_line_busy_error(runtime: ServerRuntime) -> None:
    gate = RequestGate(ConcurrencySettings(max_in_flight=1, max_queued=1, retry_after_seconds=3))
    async with Client(build_server(runtime, stdio_tenant="acme", gate=gate)) as client:
        async with held(gate, 2):
            assert gate.saturated
            result = await client.call_tool("doc_search", SEARCH)
            text = error_text(result)
            assert "\n" not in text
            assert "busy" in text and "retry in 3s" in text and "limit 2" in text
            assert gate.refused == 1
        await _search_works(client)
        assert gate.pending == 0


async def test_a_call_past_its_deadline_gets_a_one_line_timeout(runtime: ServerRuntime) -> None:
    settings = ConcurrencySettings(max_in_flight=1, max_queued=4, request_timeout_seconds=0.2)
    gate = RequestGate(settings)
    async with Client(build_server(runtime, stdio_tenant="acme", gate=gate)) as client:
        async with held(gate, 1):  # the only worker is taken: the search waits past its deadline
            text = error_text(await client.call_tool("doc_search", SEARCH))
            assert "\n" not in text
            assert "doc_search: timed out after 0.2s" in text
            # the search never started and is no longer counted; the held work still is, and
            # keeps its worker (the holder's own caller may have timed out too)
            assert gate.pending == gate.running == 1
        await _search_works(client)
        assert gate.pending == 0


@pytest.fixture(scope="module")
def acme_token(tmp_path_factory: pytest.TempPathFactory) -> tuple[TokenFile, str]:
    tokens = TokenFile(tmp_path_factory.mktemp("tokens") / "tokens.json")
    return tokens, tokens.add("acme")[0]


@pytest.fixture(scope="module")
def gated_http(
    runtime: ServerRuntime, acme_token: tuple[TokenFile, str]
) -> Iterator[tuple[str, RequestGate]]:
    gate = RequestGate(ConcurrencySettings(max_in_flight=1, max_queued=0, retry_after_seconds=2))
    with http_server(runtime, acme_token[0], "streamable-http", gate) as base:
        yield base, gate


def _client(base: str, token: str) -> Client:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(f"{base}/mcp", http_client=http))


async def _raw_tool_call(base: str, token: str, session: str | None) -> httpx.Response:
    headers: dict[str, Any] = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    if session:
        headers["Mcp-Session-Id"] = session
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "doc_search", "arguments": SEARCH},
    }
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{base}/mcp", json=call, headers=headers)


async def test_http_answers_503_with_retry_after_and_keeps_serving(
    gated_http: tuple[str, RequestGate], acme_token: tuple[TokenFile, str]
) -> None:
    base, gate = gated_http
    token = acme_token[1]
    async with _client(base, token) as client:
        await _search_works(client)
        async with held(gate, 1):
            response = await _raw_tool_call(base, token, None)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "2"
            error = response.json()["error"]
            assert response.json()["id"] == 7
            assert "busy" in error["message"] and "\n" not in error["message"]
            # the SDK client sees the refusal as a failed call, and its session survives it
            with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces HTTP errors its way
                await client.call_tool("doc_search", SEARCH)
            assert (await client.list_tools()).tools  # protocol messages pass while busy
        await _search_works(client)
    assert gate.pending == 0


@pytest.mark.parametrize("token", ["x", "not-a-token"])
async def test_a_call_without_a_valid_token_gets_401_even_while_saturated(
    gated_http: tuple[str, RequestGate], acme_token: tuple[TokenFile, str], token: str
) -> None:
    """Authentication comes before backpressure: the busy answer (and its Retry-After) goes
    only to callers who are let in; anyone else learns nothing about the server's load."""
    base, gate = gated_http
    async with held(gate, 1):
        assert gate.saturated
        refused_before = gate.refused
        response = await _raw_tool_call(base, token, None)
        assert response.status_code == 401
        assert "retry-after" not in response.headers
        assert gate.refused == refused_before  # never reached the gate's refusal
        allowed = await _raw_tool_call(base, acme_token[1], None)
        assert allowed.status_code == 503  # the same moment, a valid token: busy
    assert gate.pending == 0
