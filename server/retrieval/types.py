"""Typed records that flow in: chunks to index, search requests (results: results.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from server.settings import Domain

SearchMode = Literal["bm25", "dense", "hybrid", "hybrid+rerank"]
SEARCH_MODES: tuple[SearchMode, ...] = ("bm25", "dense", "hybrid", "hybrid+rerank")

FilterValue = str | int | bool | list[str] | list[int]


class Chunk(BaseModel):
    """One retrievable unit as it enters the store."""

    tenant: str = Field(min_length=1)
    doc_id: str = Field(min_length=1)
    source: str = Field(description="Where the text came from: a path, URL or corpus id.")
    chunk_index: int = Field(default=0, ge=0)
    text: str
    title: str = Field(default="", description="Document title / heading path / symbol.")
    metadata: dict[str, Any] = Field(default_factory=dict)


class IndexReport(BaseModel):
    """Outcome of indexing a batch of chunks."""

    collection: str
    chunks: int
    seconds: float
    avg_len: float = Field(description="BM25 average document length used for encoding.")
    reencoded: int = Field(default=0, description="Sparse vectors re-encoded after avg drift.")
    reused: int = Field(
        default=0, description="Chunks that took their source's stored vectors (text unchanged)."
    )


@dataclass(frozen=True)
class SearchRequest:
    """One search as the caller states it.

    ``filters`` maps filter names (request_filters.filter_names: the domain's metadata fields,
    ``path_prefix``, ``path_glob``, legal ``section``) to a value or a list matching any.
    ``max_chars`` is the output budget: the hits' texts together are trimmed to at most that
    many characters (trimming.py); None returns them whole.
    """

    query: str
    domain: Domain | str
    tenant: str
    top_k: int = 10
    filters: Mapping[str, Any] = field(default_factory=dict)
    mode: SearchMode = "hybrid+rerank"
    max_chars: int | None = None
