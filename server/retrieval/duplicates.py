"""Collapsing copies: hits whose passage text is identical become one hit listing the others.

Users index folders that hold copies (the same policy in three team folders, vendored code,
licence boilerplate in every package); without collapsing, the copies fill ``top_k`` with one
passage. Identity is the text after NFKC normalisation with whitespace runs folded, so a copy
re-wrapped or re-saved with other line endings still counts as the same passage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from server.retrieval.chunk_record import copy_of
from server.retrieval.results import Copy, SearchHit
from server.retrieval.sparse import normalize_text

T = TypeVar("T")


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


def collapsed_head(
    items: Iterable[T],
    text_of: Callable[[T], str],
    to_hit: Callable[[T], SearchHit],
    depth: int,
    to_copy: Callable[[T], Copy] | None = None,
) -> list[SearchHit]:
    """``collapse_duplicates([to_hit(i) for i in items])[:depth]``, building only the hits that
    list keeps and their copies: a passage first met once ``depth`` hits are kept is skipped
    with its copies (its hit would be cut), so a deep candidate list costs only its head.

    ``text_of`` must give the text ``to_hit`` puts in the hit (the identity is its
    :func:`passage_key`, computed once per distinct text); ``to_copy`` (default
    ``copy_of(to_hit(item))``) must give the same :class:`Copy`, cheaper."""
    kept: dict[str, SearchHit] = {}
    keys: dict[str, str] = {}
    out: list[SearchHit] = []
    for item in items:
        text = text_of(item)
        key = keys.get(text)
        if key is None:
            key = keys[text] = passage_key(text)
        first = kept.get(key)
        if first is not None:
            first.also_in.append(to_copy(item) if to_copy else copy_of(to_hit(item)))
        elif len(out) < depth:
            kept[key] = hit = to_hit(item)
            out.append(hit)
    return out
