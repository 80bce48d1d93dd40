"""Query-adaptive fusion: a fusion setting chosen per query from features of its text.

Keyword-exact queries (a citation such as ``§ 5`` or ``12.3(b)``, an identifier such as
``getUserName``, ``snake_case`` or ``Foo.bar``, a quoted phrase, or very few words) are where
BM25 is strongest and MiniLM weakest; natural-language questions are the opposite. An
``AdaptiveFusion`` routes each query to one of two fusion settings by those features. The sweep
evaluates it as one more candidate configuration under the same selection rule as the static
settings (README of the sweep: best worst-set score on the tune parts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from server.retrieval.sparse import legal_reference_tokens
from server.settings import FusionSettings

Route = Literal["keyword", "natural"]

_IDENTIFIER = re.compile(
    r"""
    \b[a-z]+[A-Z]\w*                   # camelCase: getUserName, toString
    | \b[A-Z][a-z0-9]+[A-Z]\w*         # PascalCase with an inner capital: HttpServer, ReadAll
    | \b[A-Z]{2,}[a-z]{2,}\w*          # acronym then word: HTTPServer (not plurals: URLs)
    | \b[A-Za-z]\w*_\w+                # snake_case, SCREAMING_CASE: read_file, HTTP_PROXY
    | \b[A-Za-z_]\w*\.[A-Za-z_]\w+     # dotted path: Foo.bar, os.path (not e.g, i.e)
    | \b[A-Za-z_]\w*::\w+              # Rust / C++ path: Vec::new
    | \b[A-Za-z_]\w*\((?!e?s\))        # a call: len(, open( (not a plural: file(s))
    """,
    re.VERBOSE,
)
# A phrase in double quotes, typographic quotes or backticks, or in single quotes that are not
# apostrophes (no word character right outside them: "don't" is not a quote).
_QUOTED = re.compile(r"\"[^\"]+\"|“[^”]+”|`[^`]+`|(?<!\w)'[^']+'(?!\w)")


@dataclass(frozen=True)
class QueryFeatures:
    """What the router looks at in a query's text."""

    citation: bool
    """A legal reference as the legal BM25 analyzer tokenizes it (``§ 5``, ``12.3(b)``,
    ``section 4``, ``Art. 14(2)``; a bare dotted number such as ``3.11`` counts too)."""
    identifier: bool
    """A code identifier: camelCase, PascalCase with an inner capital, snake_case, a dotted or
    ``::`` path, or a call ``name(``."""
    quoted: bool
    """A phrase in quotes or backticks."""
    words: int
    """Whitespace-separated words."""


def query_features(text: str) -> QueryFeatures:
    """The routing features of one query text."""
    return QueryFeatures(
        citation=bool(legal_reference_tokens(text)),
        identifier=bool(_IDENTIFIER.search(text)),
        quoted=bool(_QUOTED.search(text)),
        words=len(text.split()),
    )


Trigger = Literal["citation", "identifier", "quoted"]
ALL_TRIGGERS: frozenset[Trigger] = frozenset({"citation", "identifier", "quoted"})


@dataclass(frozen=True)
class AdaptiveFusion:
    """Two fusion settings and the rule that picks one per query.

    A query is ``keyword`` when it has one of the ``triggers`` features (by default any of a
    citation, an identifier or a quoted phrase), or at most ``short_words`` words (0: length
    alone never makes a query keyword-like); every other query is ``natural``.
    """

    keyword: FusionSettings
    natural: FusionSettings
    short_words: int = 0
    triggers: frozenset[Trigger] = ALL_TRIGGERS

    @property
    def name(self) -> str:
        """The routing rule in words: ``citation|identifier|quoted``, ``citation or <=3 words``."""
        rule = "|".join(sorted(self.triggers)) or "none"
        return f"{rule} or <={self.short_words} words" if self.short_words else rule

    def route(self, text: str) -> Route:
        """Which of the two settings serves this query."""
        features = query_features(text)
        keyword_like = (
            ("citation" in self.triggers and features.citation)
            or ("identifier" in self.triggers and features.identifier)
            or ("quoted" in self.triggers and features.quoted)
            or features.words <= self.short_words
        )
        return "keyword" if keyword_like else "natural"

    def fusion_for(self, text: str) -> FusionSettings:
        """The fusion setting for this query."""
        return self.keyword if self.route(text) == "keyword" else self.natural
