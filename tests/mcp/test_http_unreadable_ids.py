"""Over HTTP too, every request that asks for an answer gets one.

The SDK reads a message whose ``id`` is no integer or string as a notification: over
Streamable HTTP it answered ``202 Accepted`` and never ran it, so the client waited for a
response that never came (as over stdio: test_stdio_unreadable_lines.py). Invariant: such a
request gets 400 and a JSON-RPC invalid request with ``"id": null``; notifications, readable
requests and callers without a valid token are untouched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp_support import http_server

from server.auth import TokenFile
from server.http_guard import unreadable_id_error
from server.runtime import ServerRuntime

pytestmark = pytest.mark.anyio

UNREADABLE_IDS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
REQUEST_METHODS = st.sampled_from(["tools/call", "tools/list", "ping", "resources/read"])


@given(ident=UNREADABLE_IDS, method=REQUEST_METHODS)
def test_a_request_with_an_unreadable_id_is_answered(ident: Any, method: str) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method}).encode()
    error = unreadable_id_error(body)
    assert error is not None and error["id"] is None and error["error"]["code"] == -32600
    # the key written as JSON escapes is the same key (fresh user: it slipped past)
    escaped = body.replace(b'"id"', b'"\\u0069\\u0064"')
    assert json.loads(escaped) == json.loads(body)
    assert unreadable_id_error(escaped) == error


@given(ident=st.integers() | st.text(max_size=8), method=REQUEST_METHODS)
def test_what_the_sdk_reads_passes(ident: Any, method: str) -> None:
    for value in (
        {"jsonrpc": "2.0", "id": ident, "method": method},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": method},  # no id: a notification, however odd
        {"jsonrpc": "2.0", "id": None, "result": {}},  # a response
        [{"jsonrpc": "2.0", "id": {}, "method": method}],  # a batch: the SDK refuses it
    ):
        assert unreadable_id_error(json.dumps(value).encode()) is None, value
    assert unreadable_id_error(b"not json") is None


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def served(
    runtime: ServerRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    tokens = TokenFile(tmp_path_factory.mktemp("tokens") / "tokens.json")
    token = tokens.add("acme")[0]
    with http_server(runtime, tokens, "streamable-http") as base:
        yield base, token


async def test_http_answers_a_request_whose_id_it_cannot_read(served: tuple[str, str]) -> None:
    base, token = served
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-06-18",
    }
    async with httpx.AsyncClient(timeout=30) as http:
        hello = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        opened = await http.post(f"{base}/mcp", json=hello, headers=headers)
        session = opened.headers.get("mcp-session-id")
        if session:
            headers["Mcp-Session-Id"] = session
        for ident in ({"n": 1}, True, 1.5):
            sent = {"jsonrpc": "2.0", "id": ident, "method": "tools/list"}
            answer = await http.post(f"{base}/mcp", json=sent, headers=headers)
            assert answer.status_code == 400, answer.text
            body = answer.json()
            assert body["id"] is None and body["error"]["code"] == -32600
            assert "'tools/list'" in body["error"]["message"]
        listed = await http.post(
            f"{base}/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers
        )
        assert listed.status_code == 200 and "doc_search" in listed.text  # still serving
        anonymous = {k: v for k, v in headers.items() if k != "Authorization"}
        refused = await http.post(
            f"{base}/mcp", json={"jsonrpc": "2.0", "id": {}, "method": "ping"}, headers=anonymous
        )
        assert refused.status_code == 401  # no token: the route's answer, not ours
