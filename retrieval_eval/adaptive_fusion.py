"""Query-adaptive fusion: a fusion setting chosen per query from features of its text.

Keyword-exact queries (a citation such as ``§ 5`` or ``12.3(b)``, an identifier such as
``getUserName``, ``snake_case`` or ``Foo.bar``, a quoted phrase, or very few words) are where
BM25 is strongest and MiniLM weakest; natural-language questions are the opposite. An
``AdaptiveFusion`` routes each query to one of two fusion settings by those features. The sweep
evaluates it as one more candidate configuration under the same selection rule as the static
settings (README of the sweep: best worst-set score on the tune parts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# the served router's own feature detection: the sweep scores exactly what search will do
from retrieval_eval.product import QueryFeatures, query_features
from server.settings import FusionSettings, KeywordTrigger

__all__ = ["ALL_TRIGGERS", "AdaptiveFusion", "QueryFeatures", "Route", "Trigger", "query_features"]

Route = Literal["keyword", "natural"]

Trigger = KeywordTrigger
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
