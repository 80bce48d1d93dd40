"""code_search: hybrid + rerank search over source code, by symbol-aware chunks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from server.retrieval.types import FilterValue
from server.runtime import ServerRuntime
from server.settings import Domain
from server.tools.common import (
    Query,
    StrOrList,
    TopK,
    app_state,
    as_list,
    caller_tenant,
    empty_search,
    path_conditions,
    render_search,
    run_search,
    tool_errors,
    with_text,
)
from server.tools.docs import PATH_GLOB_HELP
from server.tools.models import SearchResponse

SymbolKind = Literal["function", "method", "class", "module", "window"]


def search_code(
    runtime: ServerRuntime,
    tenant: str,
    query: str,
    top_k: int,
    *,
    language: StrOrList | None = None,
    path_glob: str | None = None,
    symbol_kind: SymbolKind | list[SymbolKind] | None = None,
) -> SearchResponse:
    """Search the code domain for one tenant with optional filters."""
    applied: dict[str, Any] = {
        key: value
        for key, value in (
            ("language", language),
            ("path_glob", path_glob),
            ("symbol_kind", symbol_kind),
        )
        if value is not None
    }
    conditions: dict[str, FilterValue] = {}
    lang = as_list(language)
    if lang is not None:
        lowered = [str(v).lower() for v in lang] if isinstance(lang, list) else str(lang).lower()
        conditions["language"] = lowered
    kind = as_list(symbol_kind)
    if kind is not None:
        conditions["symbol_kind"] = kind
    paths, any_file = path_conditions(
        runtime, tenant, Domain.CODE, path_prefix=None, path_glob=path_glob
    )
    conditions.update(paths)
    pipeline = runtime.pipeline()
    if not any_file:
        note = f"no indexed file matches path_glob {path_glob!r}"
        return empty_search(pipeline, Domain.CODE, query, top_k, tenant, applied, note)
    return run_search(pipeline, tenant, Domain.CODE, query, top_k, conditions, applied)


def code_search(
    query: Query,
    ctx: Context,
    top_k: TopK = 8,
    language: Annotated[
        StrOrList | None,
        Field(
            description="Programming language as recorded at ingestion, lower case ('python', "
            "'typescript', 'go', ...); a list matches any of them."
        ),
    ] = None,
    path_glob: Annotated[str | None, Field(description=PATH_GLOB_HELP)] = None,
    symbol_kind: Annotated[
        SymbolKind | list[SymbolKind] | None,
        Field(
            description="Kind of code unit: 'function', 'method', 'class', 'module' (top-level "
            "code) or 'window' (a slice of a file without a recognised symbol)."
        ),
    ] = None,
) -> Annotated[CallToolResult, SearchResponse]:
    """Search the user's source code by meaning and by identifiers (function, class and
    variable names, error messages, API calls). Use it to find where something is
    implemented, defined or used; use doc_search for prose documentation. Each hit cites
    'path:start-end (symbol)' and carries the code, its language, symbol and signature in
    metadata; call get_chunk with a hit's id to see the neighbouring code.
    """
    with tool_errors("code_search"):
        state = app_state(ctx)
        result = search_code(
            state.runtime,
            caller_tenant(ctx),
            query,
            top_k,
            language=language,
            path_glob=path_glob,
            symbol_kind=symbol_kind,
        )
        return with_text(result, render_search(result))
