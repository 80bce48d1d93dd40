"""The MCP server: tools registered on the SDK's MCPServer, a lifespan sharing one runtime,
and the three transports (stdio, SSE, Streamable HTTP with bearer tokens)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio.to_thread
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from server.auth import TokenFile, TokenFileVerifier
from server.http_guard import UnreadableIdResponder
from server.jobs import JobManager
from server.oauth import JwtVerifier
from server.oauth_http import publish_oauth
from server.request_gate import BusyResponder, RequestGate
from server.resources import register_resources
from server.retrieval.limits import Limits
from server.runtime import ServerRuntime
from server.settings import Settings
from server.tools import browse, code, docs, embed, legal, write
from server.tools.arguments import CheckedTool
from server.tools.common import DATA_NOT_INSTRUCTIONS, READ_ONLY, AppState
from server.tools.instructions import server_instructions
from server.tools.schemas import client_schema

logger = logging.getLogger(__name__)

Transport = Literal["stdio", "sse", "streamable-http"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "sse", "streamable-http")
SERVER_NAME = "retrieval-mcp"
_TOOLS: list[tuple[Callable[..., Any], str, bool]] = [
    (docs.doc_search, "Search documentation", True),
    (legal.legal_search, "Search legal documents", True),
    (code.code_search, "Search source code", True),
    (embed.embed, "Embed texts", False),
    (browse.get_chunk, "Read a chunk with its neighbours", True),
    (browse.list_sources, "List indexed sources", True),
    (browse.index_stats, "Index statistics", False),
]


def _set_bounds(target: dict[str, Any], bounds: dict[str, int]) -> None:
    if "anyOf" in target:  # optional parameters: bound the non-null branch
        for branch in target["anyOf"]:
            if branch.get("type") != "null":
                branch.update(bounds)
    else:
        target.update(bounds)


def _bounds_text(bounds: dict[str, int]) -> str:
    if "maximum" in bounds:
        return f" ({bounds['minimum']}-{bounds['maximum']})"
    if "maxItems" in bounds:
        return f" (at most {bounds['maxItems']})"
    return f" (at most {bounds['maxLength']} characters)"


def _forbid_unknown_arguments(tool: Tool) -> None:
    """An argument the tool does not have is an error (``additionalProperties: false``), not
    silently dropped: a misplaced filter would otherwise return unfiltered results."""
    model = tool.fn_metadata.arg_model
    model.model_config["extra"] = "forbid"
    model.model_rebuild(force=True)
    tool.parameters = model.model_json_schema(by_alias=True)


def _apply_caps(tool: Tool, limits: Limits) -> None:
    """Publish the configured limits in the input schema, bounds and descriptions alike: the
    read side enforces the same :class:`Limits`, so the two never disagree."""
    properties = tool.parameters.get("properties", {})
    for name, bounds in limits.schema_bounds().items():
        target = properties.get(name)
        if target is None:
            continue
        _set_bounds(target, bounds)
        if "description" in target:
            target["description"] = target["description"].rstrip(".") + _bounds_text(bounds) + "."
    budget = properties.get("max_chars")
    if budget is not None:  # None in the signature: the configured default applies
        budget["default"] = limits.default_output_chars
    texts = properties.get("texts")
    if texts is not None:
        texts.setdefault("items", {})["maxLength"] = limits.embed_chars
        texts["description"] += f" Each text at most {limits.embed_chars} characters."


def build_tools(settings: Settings) -> list[Tool]:
    """The seven read tools with LLM-facing descriptions, read-only hints and published caps,
    plus the write tools (write.WRITE_TOOLS) when ``settings.mcp.allow_write``.

    Input schemas are published in the client-compatible form (schemas.client_schema); each
    tool still validates with its pydantic model and answers a bad argument in one line
    (arguments.CheckedTool), naming the tool that has it if another one does.
    """
    limits = Limits.from_settings(settings)
    tools: list[Tool] = []
    for fn, title, quotes_data in _TOOLS:
        description = inspect.cleandoc(fn.__doc__ or "")
        if quotes_data:
            description += "\n\n" + DATA_NOT_INSTRUCTIONS
        tool = CheckedTool.from_function(
            fn, title=title, description=description, annotations=READ_ONLY
        )
        _forbid_unknown_arguments(tool)
        _apply_caps(tool, limits)
        tools.append(tool)
    if settings.mcp.allow_write:
        tools.extend(build_write_tools(settings))
    for tool in tools:
        tool.parameters = client_schema(tool.parameters)
    for tool in tools:
        if isinstance(tool, CheckedTool):
            tool.know_other_tools(tools)
    return tools


def build_write_tools(settings: Settings) -> list[Tool]:
    """index_path, job_status, cancel_job, remove_source, add_text with their annotations and
    the configured bounds (job_status's wait_s, add_text's text length)."""
    tools = []
    for fn, title, hints in write.WRITE_TOOLS:
        description = inspect.cleandoc(fn.__doc__ or "")
        tool = CheckedTool.from_function(
            fn, title=title, description=description, annotations=hints
        )
        _forbid_unknown_arguments(tool)
        properties = tool.parameters.get("properties", {})
        if "wait_s" in properties:
            for branch in properties["wait_s"].get("anyOf", [properties["wait_s"]]):
                if branch.get("type") != "null":
                    branch["maximum"] = settings.mcp.job_wait_seconds
        if fn is write.add_text:
            properties["text"]["maxLength"] = settings.mcp.max_note_chars
        tools.append(tool)
    return tools


def gated_tools(settings: Settings, gate: RequestGate) -> list[Tool]:
    """:func:`build_tools`, the read tools run through ``gate`` (bounded, with a timeout).

    The write tools keep the SDK's own worker threads: a write cut off by a timeout would go
    on in the background while the caller was told it failed."""
    read_tools = {fn.__name__ for fn, _, _ in _TOOLS}
    return [gate.guard(t) if t.name in read_tools else t for t in build_tools(settings)]


def build_server(
    runtime: ServerRuntime,
    *,
    stdio_tenant: str | None = None,
    tokens: TokenFile | None = None,
    oauth: JwtVerifier | None = None,
    base_url: str = "http://127.0.0.1:8000",
    jobs: JobManager | None = None,
    gate: RequestGate | None = None,
) -> MCPServer[AppState]:
    """An MCPServer whose sessions share ``runtime``.

    ``stdio_tenant`` binds every call to one tenant (stdio, in-process). With ``tokens`` the
    HTTP transports require a bearer token and each request acts for the token's tenant; with
    ``oauth`` (instead: the two never mix) a JWT of the configured issuer, whose tenant claim
    names the tenant, and the protected resource metadata is served (RFC 9728).
    ``jobs`` holds the index jobs (a new JobManager when not given; the caller that passes
    one shuts it down when the process exits). ``gate`` bounds the read tools' work (a new
    RequestGate from ``settings.concurrency`` when not given; pass the same one to
    :func:`http_app` for the HTTP 503 answers).
    """
    if sum(x is not None for x in (stdio_tenant, tokens, oauth)) > 1:
        raise ValueError("a server binds one of a launch tenant, tokens or OAuth")
    state = AppState(runtime=runtime, stdio_tenant=stdio_tenant, jobs=jobs or JobManager(runtime))

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        runtime.acquire()
        try:
            yield state
        finally:
            await anyio.to_thread.run_sync(runtime.release)

    auth: dict[str, Any] = {}
    if tokens is not None:
        auth = {
            "token_verifier": TokenFileVerifier(tokens),
            "auth": AuthSettings(issuer_url=base_url, resource_server_url=None),  # type: ignore[arg-type]
        }
    if oauth is not None:
        auth = {"token_verifier": oauth, "auth": oauth_auth_settings(oauth)}
    server = MCPServer(
        SERVER_NAME,
        title="Retrieval",
        instructions=server_instructions(runtime.settings),
        version=_version(),
        tools=gated_tools(runtime.settings, gate or RequestGate(runtime.settings.concurrency)),
        lifespan=lifespan,
        **auth,
    )
    register_resources(server)
    return server


def oauth_auth_settings(oauth: JwtVerifier) -> AuthSettings:
    """The SDK's resource-server settings: the issuer, this server's resource URL, the read
    scope required of every request (403 ``insufficient_scope`` without it). The verifier
    checks the audience itself, so the SDK's own resource check stays off."""
    return AuthSettings(
        issuer_url=oauth.config.issuer,  # type: ignore[arg-type]
        resource_server_url=oauth.config.resource,  # type: ignore[arg-type]
        required_scopes=[oauth.config.settings.read_scope],
        validate_token_resource=False,
    )


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("retrieval-mcp")
    except Exception:
        return "0"


def transport_security(settings: Settings, host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection: Host and Origin must name this server or localhost."""
    hosts = {host, "127.0.0.1", "localhost", "[::1]"}
    allowed_hosts = sorted(f"{h}:*" for h in hosts) + sorted(hosts) + settings.mcp.allowed_hosts
    allowed_origins = [f"http://{h}:*" for h in sorted(hosts)] + settings.mcp.allowed_origins
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )


class HostOriginGuard:
    """Rejects a bad Host (421) or Origin (403) before any route runs.

    The SDK checks these inside each transport too, but its SSE endpoint raises after sending
    the rejection, which aborts the connection instead of answering cleanly.
    """

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self.app = app
        self.check = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            rejection = await self.check.validate_request(Request(scope, receive), is_post=False)
            if rejection is not None:
                await rejection(scope, receive, send)
                return
        await self.app(scope, receive, send)


def http_app(
    server: MCPServer[AppState],
    transport: Transport,
    settings: Settings,
    host: str,
    gate: RequestGate | None = None,
) -> Starlette:
    """The Starlette app of an HTTP transport (``/mcp`` or ``/sse`` + ``/messages/``).

    With the server's ``gate``, an authenticated tool call arriving while it is saturated gets
    503 with ``Retry-After`` before it reaches the transport; without a valid token it gets the
    route's 401 whatever the load."""
    security = transport_security(settings, host)
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host)
    elif transport == "streamable-http":
        app = server.streamable_http_app(transport_security=security, host=host)
    else:
        raise ValueError(f"{transport!r} is not an HTTP transport")
    auth = server.settings.auth
    if auth is not None and auth.resource_server_url is not None:  # OAuth mode
        oauth = settings.mcp.oauth
        scopes = [oauth.read_scope, oauth.write_scope]
        publish_oauth(app, auth.resource_server_url, auth.issuer_url, scopes)
    if gate is not None:
        # innermost middleware, inside the SDK's authentication: a call that carries no valid
        # token is answered 401 by the route, never 503, so the busy answer says nothing to
        # a caller that is not allowed in (and the refusal costs an attacker a valid token)
        app.user_middleware.append(Middleware(BusyResponder, gate=gate))
    # inside authentication too: a caller without a valid token learns nothing from it
    app.user_middleware.append(Middleware(UnreadableIdResponder))
    app.add_middleware(HostOriginGuard, security=security)  # outermost: checked first
    return app
