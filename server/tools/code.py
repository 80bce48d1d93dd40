"""code_search: hybrid + rerank search over source code, by symbol-aware chunks."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from server.retrieval.chunk_record import SymbolKind
from server.retrieval.results import SearchResponse
from server.settings import Domain
from server.tools.common import MaxChars, Query, StrOrList, TopK, run_search, tool_errors
from server.tools.docs import PATH_GLOB_HELP


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
    max_chars: MaxChars = None,
) -> Annotated[CallToolResult, SearchResponse]:
    """Search the user's source code by meaning and by identifiers (function, class and
    variable names, error messages, API calls). Use it to find where something is
    implemented, defined or used; use doc_search for prose documentation. Each hit cites
    'path:start-end (symbol)' and carries the code, its language, symbol and signature in
    metadata; call get_chunk with a hit's id to see the neighbouring code. A query that is
    just a name ('parseConfig', 'Cache.load', 'def raw_decode') lists the definitions of
    that name first, then imports, exports and calls.
    """
    with tool_errors("code_search"):
        given = {"language": language, "path_glob": path_glob, "symbol_kind": symbol_kind}
        return run_search(ctx, Domain.CODE, query, top_k, given, max_chars)
