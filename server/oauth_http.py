"""The HTTP side of OAuth mode: say why a token was refused, and publish the metadata.

The SDK's bearer middleware answers every refused token with the same "Authentication
required"; :class:`RejectionReason` puts the verifier's one-line reason (expired, wrong
audience, ...) into that 401's ``error_description`` (RFC 6750 section 3), body and header
alike. The verifier runs inside the request, so a context variable carries the reason out.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REASON: ContextVar[list[str] | None] = ContextVar("retrieval_mcp_token_rejection", default=None)


def note_rejection(reason: str) -> None:
    """Record why this request's token was refused (no-op outside an HTTP request)."""
    slot = _REASON.get()
    if slot is not None:
        slot.append(reason)


def _quoted(text: str) -> str:
    """A header quoted-string: no quotes, backslashes or line breaks inside."""
    return " ".join(text.replace("\\", "/").replace('"', "'").split())


class RejectionReason:
    """ASGI middleware: a 401 ``invalid_token`` answer carries the recorded reason; a 401 to a
    request that sent no credentials carries no error code (RFC 6750 section 3.1: the client
    did not know authentication was needed), only where the resource metadata is."""

    def __init__(self, app: ASGIApp, resource_metadata_url: str) -> None:
        self.app = app
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slot: list[str] = []
        reset = _REASON.set(slot)
        rewriting = False
        anonymous = not any(name == b"authorization" for name, _ in scope.get("headers", []))

        async def send_with_reason(message: Message) -> None:
            nonlocal rewriting
            if message["type"] == "http.response.start" and message["status"] == 401:
                rewriting = bool(slot) or anonymous
                if rewriting:
                    return  # sent with the body, whose length changes
            if rewriting and message["type"] == "http.response.body":
                await self._send_401(send, slot[-1] if slot else None)
                return
            await send(message)

        try:
            await self.app(scope, receive, send_with_reason)
        finally:
            _REASON.reset(reset)

    async def _send_401(self, send: Send, reason: str | None) -> None:
        if reason is None:  # no credentials sent: no error code, just where to get a token
            body = json.dumps({"error_description": "Authentication required"}).encode()
            challenge = f'Bearer resource_metadata="{self.resource_metadata_url}"'
        else:
            description = _quoted(reason)
            body = json.dumps({"error": "invalid_token", "error_description": description}).encode()
            challenge = (
                f'Bearer error="invalid_token", error_description="{description}", '
                f'resource_metadata="{self.resource_metadata_url}"'
            )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge.encode()),
        ]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def publish_oauth(
    app: Starlette, resource: AnyHttpUrl, issuer: AnyHttpUrl, scopes: list[str]
) -> None:
    """Serve the protected resource metadata (RFC 9728) listing every scope this server
    knows (the SDK's lists only the required one) and explain refused tokens."""
    routes: list[Any] = create_protected_resource_routes(
        resource_url=resource,
        authorization_servers=[issuer],
        scopes_supported=scopes,
        resource_name="retrieval-mcp",
    )
    app.router.routes[:0] = routes  # ahead of the SDK's own metadata route
    metadata_url = str(build_resource_metadata_url(resource))
    app.add_middleware(RejectionReason, resource_metadata_url=metadata_url)
