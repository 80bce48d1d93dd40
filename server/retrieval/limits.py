"""The request limits, checked in one place and published as the same numbers.

Every bound a caller can hit (query length, ``top_k``, output budget, neighbours, page size,
texts to embed)
comes from settings through :class:`Limits`: the read side checks requests with it, and the MCP
layer writes the same numbers into each tool's input schema (:meth:`Limits.schema_bounds`), so
a published bound never disagrees with the one enforced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.errors import InvalidRequestError, not_unicode_message, unicode_problem
from server.settings import Settings

MIN_OUTPUT_CHARS = 100
"""The smallest output budget: about one sentence of one hit."""


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an integer")
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Limits:
    """Bounds on one request (units: characters, hits, chunks, sources, texts)."""

    query_chars: int
    top_k: int
    output_chars: int
    """Most characters of hit text one search may return (``max_chars`` upper bound)."""
    default_output_chars: int
    """The output budget of a search tool call that gives no ``max_chars``."""
    neighbors: int
    source_chunks: int
    """Chunks per read of a source resource."""
    list_sources: int
    glob_sources: int
    embed_texts: int
    embed_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits that ``settings`` configure (``max_query_chars``, ``mcp.max_*``)."""
        caps = settings.mcp
        return cls(
            query_chars=settings.max_query_chars,
            top_k=settings.max_top_k,
            output_chars=caps.max_output_chars,
            default_output_chars=caps.output_chars,
            neighbors=caps.max_neighbors,
            source_chunks=caps.max_source_chunks,
            list_sources=caps.max_list_sources,
            glob_sources=caps.max_glob_sources,
            embed_texts=caps.max_embed_texts,
            embed_chars=caps.max_embed_chars,
        )

    def query(self, query: object) -> str:
        """The query stripped; InvalidRequestError when empty or over ``query_chars``."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidRequestError("the query is empty")
        problem = unicode_problem(query)
        if problem is not None:
            raise InvalidRequestError(not_unicode_message("the query", problem))
        if len(query) > self.query_chars:
            raise InvalidRequestError(
                f"the query has {len(query)} characters; the limit is {self.query_chars}"
            )
        return query.strip()

    def check_top_k(self, top_k: object) -> int:
        """``top_k`` within 1..``top_k``, or InvalidRequestError."""
        return _check_int("top_k", top_k, 1, self.top_k)

    def check_output(self, max_chars: object) -> int:
        """An output budget within MIN_OUTPUT_CHARS..``output_chars``."""
        return _check_int("max_chars", max_chars, MIN_OUTPUT_CHARS, self.output_chars)

    def check_neighbors(self, neighbors: object) -> int:
        """Neighbours either side of a chunk, within 0..``neighbors``."""
        return _check_int("neighbors", neighbors, 0, self.neighbors)

    def check_page(self, limit: object) -> int:
        """A list_sources page size, within 1..``list_sources``."""
        return _check_int("limit", limit, 1, self.list_sources)

    def check_texts(self, texts: Sequence[str]) -> None:
        """Texts to embed: 1..``embed_texts`` non-empty texts of at most ``embed_chars``."""
        if not texts:
            raise InvalidRequestError("texts is empty; pass at least one text")
        if len(texts) > self.embed_texts:
            raise InvalidRequestError(
                f"{len(texts)} texts given; the limit is {self.embed_texts} per call"
            )
        for i, text in enumerate(texts):
            if not text.strip():
                raise InvalidRequestError(f"texts[{i}] is empty")
            if len(text) > self.embed_chars:
                raise InvalidRequestError(
                    f"texts[{i}] has {len(text)} characters; the limit is {self.embed_chars}"
                )

    def schema_bounds(self) -> dict[str, dict[str, int]]:
        """JSON-schema bounds per tool argument name, as the tools publish them."""
        return {
            "query": {"minLength": 1, "maxLength": self.query_chars},
            "top_k": {"minimum": 1, "maximum": self.top_k},
            "max_chars": {"minimum": MIN_OUTPUT_CHARS, "maximum": self.output_chars},
            "neighbors": {"minimum": 0, "maximum": self.neighbors},
            "limit": {"minimum": 1, "maximum": self.list_sources},
            "texts": {"minItems": 1, "maxItems": self.embed_texts},
        }
