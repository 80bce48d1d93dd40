"""The textbook BM25 baseline: rank_bm25.BM25Okapi over lowercase ``\\w+`` tokens."""

from __future__ import annotations

import re
from collections.abc import Sequence

from retrieval_eval.beir import BeirDocument
from server.errors import RetrievalError

_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens, no stemming or stopwords (the baseline's analyzer)."""
    return _WORD.findall(text.lower())


class OkapiBaseline:
    """In-memory BM25Okapi over whole documents (title + text)."""

    def __init__(self, corpus: Sequence[BeirDocument]) -> None:
        try:
            from rank_bm25 import BM25Okapi
        except ImportError:
            raise RetrievalError(
                "mode bm25-baseline needs rank-bm25 (pip install 'retrieval-mcp[eval]')"
            ) from None
        self._ids = [d.doc_id for d in corpus]
        self._bm25 = BM25Okapi([tokenize(f"{d.title} {d.text}") for d in corpus])

    def rank(self, query: str, limit: int) -> list[str]:
        """Top ``limit`` document ids for ``query``."""
        scores = self._bm25.get_scores(tokenize(query))
        order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)[:limit]
        return [self._ids[i] for i in order]
