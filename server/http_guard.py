"""HTTP: a request whose id the SDK cannot read is answered, not accepted and dropped.

The SDK reads a message whose ``id`` is no integer or string (``{"id": {"n": 1}}``, ``true``,
``1.5``) as a notification: over Streamable HTTP it answers ``202 Accepted`` and never runs it,
so a client waits for a response that never comes (the stdio transport drops it alike:
stdio_guard.py). :class:`UnreadableIdResponder` reads each POST's JSON body first and answers
such a request itself: 400 and a JSON-RPC invalid request with ``"id": null``, as JSON-RPC 2.0
answers a request whose id cannot be read. Everything else passes on untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from server.request_gate import authenticated, read_body, replay
from server.stdio_guard import NO_ID, request_id

MAX_INSPECTED_BYTES = 4 * 1024 * 1024
"""Bodies larger than this are passed on unread (the transport bounds them itself)."""
_SUSPECT = re.compile(rb'"id"\s*:\s*(?:[^\s"0-9-]|-?[0-9]+[.eE])')
"""An ``"id"`` member whose value is no string and no integer: only such a body is parsed here
(a large ``embed`` call is not parsed twice)."""


def unreadable_id_error(body: bytes) -> dict[str, Any] | None:
    """The JSON-RPC error answering ``body`` when it is a request (a method not under
    ``notifications/``) carrying an ``id`` that is no integer or string; None otherwise (not
    JSON, a batch, a notification, a response, a readable id: the SDK answers those)."""
    if _SUSPECT.search(body) is None and b"\\u" not in body:  # "\u0069d" is "id" too
        return None
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or "id" not in message:
        return None
    method = message.get("method")
    if not isinstance(method, str) or method.startswith("notifications/"):
        return None
    if request_id(message) is not None:
        return None
    text = f"{method!r}: {NO_ID}"
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": text}}


class UnreadableIdResponder:
    """ASGI middleware: answers a POSTed request whose id the SDK would drop (see module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not authenticated(scope):
            # without a valid token the route answers 401, whatever the body
            await self.app(scope, receive, send)
            return
        body, complete = await read_body(receive, MAX_INSPECTED_BYTES)
        error = unreadable_id_error(body) if complete else None
        if error is None:
            await self.app(scope, replay(body, complete, receive), send)
            return
        payload = json.dumps(error).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
