"""A lean MCP client for the concurrency bench: one session over one keep-alive HTTP/1.1
connection, JSON-RPC written by hand, responses parsed by httptools (the server's own parser).

Why: the SDK's client (``mcp.Client`` over ``streamable_http_client``) costs 4-6 ms of CPU per
call of the bench's mix (pydantic models of every message, anyio memory streams, a task per
request), about what the server spends. On a 2-core machine with the clients on the server's
cores, that caps the calls per second the bench can see near the issue's target whatever the
server does. This client speaks the same protocol (initialize, notifications/initialized,
tools/call with the session id; Streamable HTTP answers as an SSE stream or JSON) for ~0.3 ms
of CPU a call, so its runs measure the server. Real clients run on their users' machines; both
figures are reported (``bench --sections concurrency``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httptools

PROTOCOL_VERSION = "2025-06-18"


class LeanSession:
    """An MCP session over Streamable HTTP: :meth:`open`, then :meth:`call_tool`. One request
    at a time (the bench's clients are closed-loop); the connection is kept alive."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.token = token
        self.session_id: str | None = None
        self._next_id = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect and run the protocol's handshake. Raises RuntimeError when it fails."""
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        params = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "retrieval-mcp-bench-lean", "version": "1"},
        }
        reply = await self.request("initialize", params)
        if "result" not in reply:
            raise RuntimeError(f"initialize failed: {reply}")
        status, _ = await self._exchange({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status != 202:
            raise RuntimeError(f"notifications/initialized answered HTTP {status}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The JSON-RPC response to ``tools/call`` (``result`` or ``error``)."""
        return await self.request("tools/call", {"name": name, "arguments": arguments})

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One JSON-RPC request and its response message; RuntimeError on an HTTP error."""
        self._next_id += 1
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}
        status, body = await self._exchange(message)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        reply = _response_message(body)
        if reply is None:
            raise RuntimeError(f"no JSON-RPC response in the body: {body[:200]!r}")
        return reply

    async def _exchange(self, message: dict[str, Any]) -> tuple[int, bytes]:
        assert self._reader is not None and self._writer is not None, "open() first"
        data = json.dumps(message).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\n"
            "Accept: application/json, text/event-stream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        )
        if self.session_id:
            head += f"Mcp-Session-Id: {self.session_id}\r\n"
        self._writer.write(head.encode() + b"\r\n" + data)
        response = _Response()
        parser = httptools.HttpResponseParser(response)
        while not response.complete:
            chunk = await self._reader.read(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            parser.feed_data(chunk)
        session = response.headers.get(b"mcp-session-id")
        if session:
            self.session_id = session.decode()
        return parser.get_status_code(), b"".join(response.body)


class _Response:
    """httptools' callbacks: headers (lower-cased names), body pieces, completion."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


def _response_message(body: bytes) -> dict[str, Any] | None:
    """The JSON-RPC response in a body: a JSON object, or the ``data:`` of an SSE event
    holding one (notifications the server sends first are skipped)."""
    text = body.decode()
    if text.lstrip().startswith("{"):
        message: dict[str, Any] = json.loads(text)
        return message
    for line in text.splitlines():
        if line.startswith("data:"):
            event = json.loads(line[5:])
            if "id" in event and ("result" in event or "error" in event):
                return dict(event)
    return None
