"""get_chunk, list_sources, index_stats: reading the caller's index without a query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from server.retrieval import browse
from server.retrieval.freshness import render_freshness, root_freshness
from server.retrieval.results import ChunkContext, SourceList
from server.runtime import ServerRuntime
from server.settings import Domain
from server.tools.common import (
    app_state,
    caller_tenant,
    resource_links,
    tool_errors,
    with_text,
)
from server.tools.docs import PATH_PREFIX_HELP
from server.tools.models import IndexStats


def render_chunk(result: ChunkContext) -> str:
    """The window as reading-order text with chunk markers."""
    parts = [f"{result.chunk.citation}  (id {result.chunk.id}, {result.domain.value})"]
    for view in [*result.before, result.chunk, *result.after]:
        marker = ">>" if view.id == result.chunk.id else "  "
        parts.append(f"{marker} [chunk {view.chunk_index}] {view.citation}\n{view.text}")
    return "\n\n".join(parts)


def render_sources(result: SourceList) -> str:
    """One line per source."""
    lines = [f"{len(result.sources)} {result.domain.value} source(s)"]
    for entry in result.sources:
        extra = f" [{entry.chunks} chunks]" if entry.chunks is not None else ""
        title = f" - {entry.title}" if entry.title else ""
        lines.append(f"{entry.source}{title}{extra}")
    if result.next_cursor:
        lines.append(f"more: call again with cursor={result.next_cursor}")
    if result.note:
        lines.append(f"note: {result.note}")
    return "\n".join(lines)


def tenant_stats(
    runtime: ServerRuntime, tenant: str, domains: Sequence[Domain] = tuple(Domain)
) -> IndexStats:
    """Counts per domain (``domains``, default all) for the tenant and the state of the
    models (does not wait for them)."""
    store = runtime.store()
    status = runtime.model_status()
    fresh = [r for d in domains for r in root_freshness(store, runtime.settings, tenant, d)]
    return IndexStats(
        tenant=tenant,
        domains=[browse.domain_counts(store, runtime.settings, tenant, d) for d in domains],
        embedding_model=status.embedding_model,
        embedding_dimension=status.embedding_dimension,
        models_loaded=status.loaded,
        reranker_model=status.reranker_model,
        reranker_available=status.reranker_available,
        reranker_note=status.reranker_note,
        freshness=fresh,
    )


def render_stats(result: IndexStats) -> str:
    """Counts and model state as short lines."""
    lines = [f"tenant {result.tenant}"]
    lines += [f"{c.domain.value}: {c.chunks} chunks in {c.sources} sources" for c in result.domains]
    loaded = "loaded" if result.models_loaded else "loading"
    lines.append(f"embedding model {result.embedding_model} ({loaded})")
    if result.reranker_available:
        lines.append(f"reranker {result.reranker_model}: available")
    elif result.reranker_note:  # it names the model, or says reranking is off and why
        note = result.reranker_note
        lines.append(note if note.startswith("reranker ") else f"reranker: {note}")
    elif result.reranker_model and not result.models_loaded:
        lines.append(f"reranker {result.reranker_model} (loading)")
    else:
        lines.append(f"reranker {result.reranker_model or '-'}: off")
    lines += [render_freshness(root) for root in result.freshness]
    return "\n".join(lines)


def get_chunk(
    id: Annotated[str, Field(description="The 'id' of a search hit or of a listed chunk.")],
    ctx: Context,
    neighbors: Annotated[
        int,
        Field(description="Chunks to include before and after it."),
    ] = 1,
) -> Annotated[CallToolResult, ChunkContext]:
    """Read one chunk by id together with its neighbouring chunks from the same file, in
    reading order. Use it after a search when a hit is cut off or you need the text around
    it (the rest of a function, the preceding paragraph, the sub-clauses of a section).
    """
    with tool_errors("get_chunk"):
        state = app_state(ctx)
        runtime = state.runtime
        result = browse.read_chunk(
            runtime.store(), runtime.settings, caller_tenant(ctx), id, neighbors
        )
        views = [*result.before, result.chunk, *result.after]
        return with_text(result, render_chunk(result), resource_links(ctx, views))


def list_sources(
    domain: Annotated[Domain, Field(description="Which index: 'docs', 'legal' or 'code'.")],
    ctx: Context,
    path_prefix: Annotated[str | None, Field(description=PATH_PREFIX_HELP)] = None,
    limit: Annotated[int, Field(description="Sources per page.")] = 100,
    cursor: Annotated[
        str | None, Field(description="'next_cursor' from the previous page.")
    ] = None,
) -> Annotated[CallToolResult, SourceList]:
    """List the files and documents indexed in one domain (path, title, chunk count, type,
    language or jurisdiction), page by page. Use it to see what can be searched, to find exact
    values for search filters, or to check whether a file was ingested.
    """
    with tool_errors("list_sources"):
        state = app_state(ctx)
        runtime = state.runtime
        result = browse.list_sources(
            runtime.store(),
            runtime.settings,
            caller_tenant(ctx),
            domain,
            prefix=path_prefix,
            limit=limit,
            cursor=cursor,
        )
        return with_text(result, render_sources(result))


def index_stats(
    ctx: Context,
    domain: Annotated[
        Domain | None,
        Field(description="Only this index: 'docs', 'legal' or 'code'; all three when omitted."),
    ] = None,
) -> Annotated[CallToolResult, IndexStats]:
    """Show how many chunks and sources are indexed per domain (docs, legal, code) and whether
    the embedding model and the reranker are loaded. Use it to check that the index is
    populated before searching, or to explain empty results.
    """
    with tool_errors("index_stats"):
        state = app_state(ctx)
        domains = tuple(Domain) if domain is None else (domain,)
        result = tenant_stats(state.runtime, caller_tenant(ctx), domains)
        return with_text(result, render_stats(result))
