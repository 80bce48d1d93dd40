"""doc_search: hybrid + rerank search over the tenant's documentation and notes."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from server.retrieval.results import SearchResponse
from server.settings import Domain
from server.tools.common import MaxChars, Query, StrOrList, TopK, run_search, tool_errors

PATH_PREFIX_HELP = (
    "Only files under this directory, or this one file: an absolute path, or a path relative "
    "to the folder that was ingested (as in 'metadata.rel_path'). Matches whole path segments "
    "('guides' matches 'guides/a.md', not 'guides-old/a.md')."
)
TAGS_HELP = (
    "Only documents whose front matter lists this tag ('tags: [release, ops]'); a list matches "
    "documents with any of them. In any case ('ops' matches 'Ops')."
)
PATH_GLOB_HELP = (
    "Only files whose path matches this glob: '*' and '?' stay within one path segment, '**' "
    "spans directories, '[ab]' matches 'a' or 'b' and also the literal text '[ab]' (so "
    "'app/[id]/page.tsx' finds that folder); '\\[' '\\*' '\\?' match the character only. "
    "Relative globs match the path relative to the ingested folder; a glob without '/' matches "
    "the file name anywhere ('*.md')."
)


class DocFilters(BaseModel):
    """Restrictions for doc_search; all given conditions must hold."""

    model_config = ConfigDict(extra="forbid")

    doc_type: StrOrList | None = Field(
        default=None,
        description="File type set at ingestion: 'markdown', 'rst', 'html', 'pdf' or 'text'; a "
        "list matches any of them.",
    )
    path_prefix: str | None = Field(default=None, description=PATH_PREFIX_HELP)
    path_glob: str | None = Field(default=None, description=PATH_GLOB_HELP)
    tags: StrOrList | None = Field(default=None, description=TAGS_HELP)


def doc_search(
    query: Query,
    ctx: Context,
    top_k: TopK = 8,
    filters: DocFilters | None = None,
    max_chars: MaxChars = None,
) -> Annotated[CallToolResult, SearchResponse]:
    """Search the user's documentation, manuals, notes and other prose (Markdown, reST, HTML,
    PDF, text) by meaning and by exact words. Use it for how-to, concept and reference
    questions; use legal_search for contracts, statutes and licences and code_search for
    source code. Each hit has a citation (file > heading path, or file, p. N), the passage
    text and scores; call get_chunk with a hit's id for the surrounding text.
    """
    with tool_errors("doc_search"):
        given = filters.model_dump(exclude_none=True) if filters else {}
        return run_search(ctx, Domain.DOCS, query, top_k, given, max_chars)
