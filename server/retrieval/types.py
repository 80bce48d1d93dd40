"""Typed records that flow through the pipeline: chunks in, hits and results out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

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


class StageScores(BaseModel):
    """Score and 1-based rank of a hit at each stage (None: the stage did not see it)."""

    dense: float | None = Field(
        default=None,
        description="Cosine of the chunk vector; where the domain has part vectors, "
        "(1 - w) * chunk cosine + w * best sentence-group cosine.",
    )
    dense_rank: int | None = None
    sparse: float | None = Field(default=None, description="BM25 score (IDF over the tenant).")
    sparse_rank: int | None = None
    fused: float | None = None
    fused_rank: int | None = None
    rerank: float | None = None
    rerank_rank: int | None = None


class Occurrence(BaseModel):
    """Another stored chunk with exactly the same text as a hit (a copy of the passage)."""

    id: str
    doc_id: str
    source: str
    chunk_index: int
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class Hit(BaseModel):
    """One retrieved chunk with its provenance and scores."""

    id: str = Field(description="Point id; stable for (tenant, domain, source, chunk_index).")
    doc_id: str
    source: str
    chunk_index: int
    title: str = ""
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    score: float = Field(description="Final score: rerank score if reranked, else fused score.")
    stages: StageScores = Field(default_factory=StageScores)
    also_in: list[Occurrence] = Field(
        default_factory=list,
        description="Other chunks with the same text, collapsed into this hit (ranked lower).",
    )


class Timings(BaseModel):
    """Wall-clock milliseconds per stage of one search."""

    embed_ms: float = 0.0
    sparse_ms: float = 0.0
    search_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


class SearchResult(BaseModel):
    """Everything one search returns."""

    query: str
    domain: str
    mode: SearchMode
    hits: list[Hit]
    fusion: str = Field(description="Fusion used, e.g. 'rrf(k=60, weights=[1.0, 1.0])'.")
    rerank_applied: bool
    rerank_model: str | None = None
    rerank_note: str | None = Field(
        default=None, description="Why reranking was not applied, when it was not."
    )
    notes: list[str] = Field(
        default_factory=list, description="What the caller should know about this ranking."
    )
    timings: Timings = Field(default_factory=Timings)


class IndexReport(BaseModel):
    """Outcome of indexing a batch of chunks."""

    collection: str
    chunks: int
    seconds: float
    avg_len: float = Field(description="BM25 average document length used for encoding.")
    reencoded: int = Field(default=0, description="Sparse vectors re-encoded after avg drift.")
