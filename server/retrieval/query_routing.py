"""Query-adaptive fusion: the fusion setting chosen per query from features of its text.

Keyword-exact queries (a citation such as ``§ 5`` or ``12.3(b)``, an identifier such as
``getUserName``, ``snake_case`` or ``Foo.bar``, a quoted phrase) are where BM25 is strongest and
MiniLM weakest; natural-language questions are the opposite. A domain with ``keyword_fusion``
set fuses the first kind with it and every other query with ``fusion``. Whether a domain routes,
and with which settings, is chosen on the tuning sets (README, "Evaluation").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.retrieval.sparse import legal_reference_tokens
from server.settings import DomainSettings, FusionSettings, KeywordTrigger

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

    def keyword_like(self, triggers: list[KeywordTrigger], max_words: int) -> str:
        """The first trigger this query has (or ``"short"``), "" when it is natural language."""
        for trigger in triggers:
            if getattr(self, trigger):
                return trigger
        return "short" if self.words <= max_words else ""


def query_features(text: str) -> QueryFeatures:
    """The routing features of one query text."""
    return QueryFeatures(
        citation=bool(legal_reference_tokens(text)),
        identifier=bool(_IDENTIFIER.search(text)),
        quoted=bool(_QUOTED.search(text)),
        words=len(text.split()),
    )


def fusion_for(settings: DomainSettings, query: str) -> tuple[FusionSettings, str]:
    """The fusion setting that serves ``query`` in a domain, and why ("" for the default,
    else the trigger that made the query keyword-like)."""
    if settings.keyword_fusion is None:
        return settings.fusion, ""
    reason = query_features(query).keyword_like(
        settings.keyword_triggers, settings.keyword_max_words
    )
    return (settings.keyword_fusion, reason) if reason else (settings.fusion, "")
