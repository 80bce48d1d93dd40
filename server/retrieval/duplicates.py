"""Collapsing copies: hits whose passage text is identical become one hit listing the others.

Users index folders that hold copies (the same policy in three team folders, vendored code,
licence boilerplate in every package); without collapsing, the copies fill ``top_k`` with one
passage. Identity is the text after NFKC normalisation with whitespace runs folded, so a copy
re-wrapped or re-saved with other line endings still counts as the same passage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from server.retrieval.chunk_record import copy_of
from server.retrieval.results import SearchHit
from server.retrieval.sparse import normalize_text


def passage_key(text: str) -> str:
    """Identity of a passage's text (sha1 of its normalised form)."""
    folded = " ".join(normalize_text(text).split())
    return hashlib.sha1(folded.encode("utf-8")).hexdigest()


def collapse_duplicates(hits: Sequence[SearchHit]) -> list[SearchHit]:
    """The hits in order, each passage once: the first (best-ranked) copy stays and lists the
    later copies in ``also_in``. Returns new list; hits are updated in place."""
    kept: dict[str, SearchHit] = {}
    out: list[SearchHit] = []
    for hit in hits:
        key = passage_key(hit.text)
        first = kept.get(key)
        if first is None:
            kept[key] = hit
            out.append(hit)
            continue
        first.also_in.append(copy_of(hit))
    return out
