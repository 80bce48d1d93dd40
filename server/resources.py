"""MCP resources: the chunks and sources behind every hit, read for the caller's tenant.

Three resource templates (uris.py): a chunk with its neighbours as text, the same as JSON,
and a whole source page by page. A read acts for the same tenant a tool call would (the
bearer token's, else the launch tenant) and reads through the store's tenant filter, so
another tenant's chunk id or source path is "not found", exactly like an unknown one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.mcpserver.resources.templates import ResourceSecurity
from pydantic import Field

from server.errors import NotFoundError, RetrievalError
from server.retrieval import browse
from server.retrieval.results import ChunkContext, SourceChunks
from server.retrieval.uris import CHUNK_JSON_TEMPLATE, CHUNK_TEMPLATE, SOURCE_TEMPLATE
from server.settings import Domain
from server.tools.browse import render_chunk
from server.tools.common import DATA_NOT_INSTRUCTIONS, app_state, caller_tenant

logger = logging.getLogger(__name__)

PATH_IS_AN_INDEX_KEY = ResourceSecurity(exempt_params=frozenset({"path"}))
"""A source path is looked up in the tenant's index, never opened on disk, and sources are
absolute paths: the SDK's file-path checks (absolute paths, ``..``) would refuse real ones."""


@contextmanager
def resource_errors(uri_kind: str) -> Iterator[None]:
    """Not found (including another tenant's) becomes the protocol's not-found error, other
    readable errors a resource error with their one-line message; the rest is logged."""
    try:
        yield
    except NotFoundError as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except (RetrievalError, ToolError) as exc:
        raise ResourceError(str(exc)) from None
    except ResourceError:
        raise
    except Exception as exc:
        logger.exception("reading a %s resource failed", uri_kind)
        raise ResourceError(
            f"reading the {uri_kind} failed unexpectedly ({type(exc).__name__}); see the server log"
        ) from None


def _domain(name: str) -> Domain:
    try:
        return Domain(name)
    except ValueError:
        raise ResourceNotFoundError(
            f"unknown domain {name!r}; expected one of: {', '.join(d.value for d in Domain)}"
        ) from None


def _count(name: str, value: str) -> int:
    """A query parameter that must be a whole number; the SDK passes it as text and would
    answer a malformed one with an opaque internal error."""
    try:
        return int(value)
    except ValueError:
        raise ResourceError(f"{name} must be an integer, got {value!r}") from None


def _chunk_window(domain: str, chunk_id: str, ctx: Context, neighbors: str) -> ChunkContext:
    runtime = app_state(ctx).runtime
    name = _domain(domain)
    return browse.read_chunk(
        runtime.store(),
        runtime.settings,
        caller_tenant(ctx),
        chunk_id,
        _count("neighbors", neighbors),
        domain=name,
    )


Neighbors = Annotated[str, Field(description="Chunks either side of the chunk (a number).")]


def chunk_text(domain: str, id: str, ctx: Context, neighbors: Neighbors = "1") -> str:
    """A chunk with its neighbouring chunks from the same source, in reading order, as text
    (the get_chunk rendering); ``?neighbors=N`` widens the window."""
    with resource_errors("chunk"):
        return render_chunk(_chunk_window(domain, id, ctx, neighbors))


def chunk_json(domain: str, id: str, ctx: Context, neighbors: Neighbors = "1") -> str:
    """The same window as JSON: the get_chunk result (chunk, before, after)."""
    with resource_errors("chunk"):
        return _chunk_window(domain, id, ctx, neighbors).model_dump_json()


def render_source(result: SourceChunks) -> str:
    """A source's chunks as reading-order text with chunk markers, and where it continues."""
    shown = (
        f"chunks {result.chunks[0].chunk_index}-{result.chunks[-1].chunk_index}"
        if result.chunks
        else "no chunks"
    )
    parts = [
        f"{result.source}  ({result.domain.value}, {shown} of {result.total_chunks}; "
        "consecutive chunks overlap)"
    ]
    parts += [f"[chunk {c.chunk_index}] {c.citation}\n{c.text}" for c in result.chunks]
    if result.next_start is not None:
        parts.append(f"continues: {result.uri}?start={result.next_start}")
    return "\n\n".join(parts)


def source_text(domain: str, path: str, ctx: Context, start: str = "0") -> str:
    """A whole indexed source (the hit's 'source'), chunk by chunk in reading order;
    ``?start=N`` continues a long source where the previous read said."""
    with resource_errors("source"):
        runtime = app_state(ctx).runtime
        result = browse.read_source(
            runtime.store(),
            runtime.settings,
            caller_tenant(ctx),
            _domain(domain),
            path,
            start=_count("start", start),
        )
        return render_source(result)


_TEMPLATES: list[tuple[str, Any, str, str, str]] = [
    (
        CHUNK_JSON_TEMPLATE,
        chunk_json,
        "chunk-json",
        "A chunk with its neighbours (JSON)",
        "application/json",
    ),
    (CHUNK_TEMPLATE, chunk_text, "chunk", "A chunk with its neighbours", "text/plain"),
    (SOURCE_TEMPLATE, source_text, "source", "A whole indexed source", "text/plain"),
]


def register_resources(server: MCPServer[Any]) -> None:
    """Add the resource templates (listed by resources/templates/list) to ``server``."""
    for uri, fn, name, title, mime_type in _TEMPLATES:
        description = " ".join((fn.__doc__ or "").split()) + " " + DATA_NOT_INSTRUCTIONS
        server.resource(
            uri,
            name=name,
            title=title,
            description=description,
            mime_type=mime_type,
            security=PATH_IS_AN_INDEX_KEY,
        )(fn)
