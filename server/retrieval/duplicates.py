"""Collapsing copies: hits whose passage text is identical become one hit listing the others.

Users index folders that hold copies (the same policy in three team folders, vendored code,
licence boilerplate in every package); without collapsing, the copies fill ``top_k`` with one
passage. Identity is the text after NFKC normalisation with whitespace runs folded, so a copy
re-wrapped or re-saved with other line endings still counts as the same passage.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from server.retrieval.chunk_record import copy_of
from server.retrieval.results import Copy, SearchHit
from server.retrieval.sparse import normalize_text

T = TypeVar("T")

PASSAGE_KEYS_KEPT = 4096
"""Passage keys remembered (each holds its text: ~4 MB for texts of 1,000 characters)."""


@functools.lru_cache(maxsize=PASSAGE_KEYS_KEPT)
def passage_key(text: str) -> str:
    """Identity of a passage's text (sha1 of its normalised form). Kept for the most recent
    :data:`PASSAGE_KEYS_KEPT` texts: a search asks for the keys of the same hits while
    collapsing and again while deciding whether to look deeper, and searches in a burst
    return the same passages."""
    folded = " ".join(normalize_text(text).split())
    return hashlib.sha1(folded.encode("utf-8")).hexdigest()


def collapse_duplicates(
    hits: Sequence[SearchHit], place: Callable[[SearchHit], Any] | None = None
) -> list[SearchHit]:
    """Each passage once, shown by its copy with the smallest ``place`` (default: the
    best-ranked), which lists the other copies in ``also_in`` in rank order; passages in the
    order of the copies shown. Returns a new list; hits are updated in place."""
    return collapsed_head(hits, lambda hit: hit.text, lambda hit: hit, len(hits), None, place)


def collapsed_head(
    items: Iterable[T],
    text_of: Callable[[T], str],
    to_hit: Callable[[T], SearchHit],
    depth: int,
    to_copy: Callable[[T], Copy] | None = None,
    place: Callable[[T], Any] | None = None,
) -> list[SearchHit]:
    """The first ``depth`` passages of ranked ``items``, each shown by one copy, building only
    the hits kept and their copies (``collapse_duplicates([to_hit(i) for i in items],
    place)[:depth]``, cheaper).

    Copies of one passage need not score alike: identical text embedded in different batches
    gets vectors a few float bits apart, and the code domain embeds each file's path with its
    text. So the copy shown is chosen by ``place`` (smallest first; default: rank order), not
    by score, and each passage takes the rank of the copy shown: which copy a user sees never
    depends on how its copies were batched at ingest.

    ``text_of`` must give the text ``to_hit`` puts in the hit (the identity is its
    :func:`passage_key`, computed once per distinct text); ``to_copy`` (default
    ``copy_of(to_hit(item))``) must give the same :class:`Copy`, cheaper."""
    keys: dict[str, str] = {}
    groups: dict[str, list[tuple[int, T]]] = {}
    for rank, item in enumerate(items):
        text = text_of(item)
        key = keys.get(text)
        if key is None:
            key = keys[text] = passage_key(text)
        groups.setdefault(key, []).append((rank, item))

    def shown(members: list[tuple[int, T]]) -> tuple[int, T]:
        return min(members, key=lambda m: place(m[1])) if place else members[0]

    heads = sorted(((shown(m), m) for m in groups.values()), key=lambda head: head[0][0])
    out: list[SearchHit] = []
    for (rank, item), members in heads[:depth]:
        hit = to_hit(item)
        hit.also_in.extend(
            to_copy(other) if to_copy else copy_of(to_hit(other))
            for other_rank, other in members
            if other_rank != rank
        )
        out.append(hit)
    return out
