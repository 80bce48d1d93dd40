"""legal_search: hybrid + rerank search over contracts, statutes and licences."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from server.retrieval.chunk_record import LegalDocType
from server.retrieval.results import SearchResponse
from server.settings import Domain
from server.tools.common import MaxChars, Query, StrOrList, TopK, run_search, tool_errors
from server.tools.docs import PATH_PREFIX_HELP, TAGS_HELP


class LegalFilters(BaseModel):
    """Restrictions for legal_search; all given conditions must hold."""

    model_config = ConfigDict(extra="forbid")

    doc_type: LegalDocType | list[LegalDocType] | None = Field(
        default=None,
        description="Kind of document: 'contract', 'statute', 'licence' or 'other'; a list "
        "matches any of them.",
    )
    jurisdiction: StrOrList | None = Field(
        default=None,
        description="Jurisdiction recorded at ingestion, as listed by list_sources, in any case "
        "(e.g. 'EU', 'DE', 'US-CA'); a list matches any of them.",
    )
    section: str | None = Field(
        default=None,
        description="Only this section and everything under it: a section path as in the "
        "citations ('Art. 14', '12 > 12.3') or one section label ('12.3', '§ 5').",
    )
    path_prefix: str | None = Field(default=None, description=PATH_PREFIX_HELP)
    tags: StrOrList | None = Field(default=None, description=TAGS_HELP)


def legal_search(
    query: Query,
    ctx: Context,
    top_k: TopK = 8,
    filters: LegalFilters | None = None,
    max_chars: MaxChars = None,
) -> Annotated[CallToolResult, SearchResponse]:
    """Search the user's contracts, statutes, regulations and licences by meaning and by exact
    words, including clause references such as '12.3(b)' or '§ 5'. Use it for obligations,
    rights, definitions, liability, termination and similar legal questions; use doc_search
    for general documentation and code_search for source code. Each hit cites the document and
    its section path; call get_chunk with a hit's id to read the clauses around it. Quote the
    text as retrieved; this tool is not legal advice.
    """
    with tool_errors("legal_search"):
        given = filters.model_dump(exclude_none=True) if filters else {}
        return run_search(ctx, Domain.LEGAL, query, top_k, given, max_chars)
