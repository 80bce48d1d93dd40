"""What the tools return besides the read side's results (retrieval/results.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.retrieval.results import DomainCounts, RootFreshness


class EmbedResponse(BaseModel):
    """Dense vectors, one per input text, in input order."""

    model: str
    dimension: int
    normalized: bool
    vectors: list[list[float]]
    truncated: list[bool] = Field(
        description="Per text: longer than the model window, so only its start was embedded."
    )


class IndexStats(BaseModel):
    """What this server holds for the caller, and the state of its models."""

    tenant: str
    domains: list[DomainCounts]
    embedding_model: str
    embedding_dimension: int | None = Field(description="None while the model is loading.")
    models_loaded: bool
    reranker_model: str | None = Field(
        description="The cross-encoder configured (also while it loads); None: reranking off."
    )
    reranker_available: bool
    reranker_note: str | None = None
    freshness: list[RootFreshness] = Field(
        default_factory=list,
        description="Per indexed folder: last sync, pending changes, git commit and whether "
        "the work tree moved since.",
    )
