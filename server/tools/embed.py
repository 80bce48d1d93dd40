"""embed: dense vectors from the server's embedding model, for the caller's own use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from server.retrieval.limits import Limits
from server.settings import Settings
from server.tools.common import app_state, tool_errors, with_text
from server.tools.models import EmbedResponse

if TYPE_CHECKING:
    from server.retrieval.embedder import DenseEmbedder


def embed_texts(
    embedder: DenseEmbedder, settings: Settings, texts: list[str], normalize: bool
) -> EmbedResponse:
    """Vectors for ``texts`` within the configured caps (count, characters per text)."""
    Limits.from_settings(settings).check_texts(texts)
    window = embedder.max_tokens - 2
    truncated = [embedder.count_tokens(text) > window for text in texts]
    vectors = embedder.embed_documents(texts, normalize=normalize)
    return EmbedResponse(
        model=embedder.model_id,
        dimension=embedder.dimension,
        normalized=normalize,
        vectors=[[float(x) for x in row] for row in vectors],
        truncated=truncated,
    )


def render_embed(result: EmbedResponse) -> str:
    """One summary line (count, dimension, model, normalisation, truncations). The vectors
    are in the structured content only: 64 texts would put ~230k characters of numbers into
    the context of a client that reads text content."""
    cut = [i for i, was_cut in enumerate(result.truncated) if was_cut]
    return (
        f"{len(result.vectors)} vector(s), dimension {result.dimension}, model {result.model}, "
        f"{'L2-normalised' if result.normalized else 'not normalised'}"
        + (f"; text(s) {', '.join(map(str, cut))} truncated to the model window" if cut else "")
        + "; the vectors are in the structured content ('vectors', in input order)"
    )


def embed(
    texts: Annotated[
        list[str],
        Field(description="Texts to embed, in order."),
    ],
    ctx: Context,
    normalize: Annotated[
        bool,
        Field(
            description="L2-normalise each vector (cosine = dot product). False returns the "
            "model's own output, which for models ending in a Normalize layer (the default "
            "MiniLM) is unit length anyway."
        ),
    ] = True,
) -> Annotated[CallToolResult, EmbedResponse]:
    """Turn texts into dense vectors with the same sentence-transformers model the search
    index uses (all-MiniLM-L6-v2 by default, 384 dimensions). Use it to compare texts by
    meaning or to feed your own vector math; to find passages, use the search tools instead.
    Texts longer than the model window (about 256 word pieces) are embedded from their start;
    'truncated' says which.
    """
    with tool_errors("embed"):
        state = app_state(ctx)
        result = embed_texts(state.runtime.embedder(), state.runtime.settings, texts, normalize)
        return with_text(result, render_embed(result))
