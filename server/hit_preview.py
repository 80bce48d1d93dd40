"""A search hit's text as plain-text output shows it: the MCP text content and the CLI.

The text is the one the Searcher returns for the search's output budget (``max_chars``):
trimmed around the sentences that match the query (server/retrieval/trimming.py), so a long
chunk's matching sentence is what a reader sees, not its first characters. This module only
lays it out: prose on one indented line, code line by line.
"""

from __future__ import annotations

from collections import Counter

from server.retrieval.limits import MIN_OUTPUT_CHARS
from server.retrieval.results import SearchHit

PREVIEW_CHARS = 200
"""Characters of hit text the CLI's text view budgets per hit (fair shares: a short hit leaves
the rest to the others; server/retrieval/trimming.py)."""


def preview_budget(top_k: int) -> int:
    """The output budget (``max_chars``) of a CLI text-view search for ``top_k`` hits."""
    return max(MIN_OUTPUT_CHARS, PREVIEW_CHARS * top_k)


def copy_places(hit: SearchHit) -> str:
    """Where a hit's copies (``also_in``) are, for a text view: each copy's citation, or, where
    the citation alone would not tell it from the hit or from another copy, its source path
    (copies ingested from different folders share a relative path, and so a citation), and
    its chunk id if even that is shared (one file repeating a passage). Comma-separated; every
    place named differs from the others and from the hit's citation."""
    citations = Counter([hit.citation, *(copy.citation for copy in hit.also_in)])
    labels = [c.citation if citations[c.citation] == 1 else c.source for c in hit.also_in]
    taken = Counter([hit.citation, *labels])
    places = ", ".join(
        label if taken[label] == 1 else f"{copy.source} (id {copy.id})"
        for label, copy in zip(labels, hit.also_in, strict=True)
    )
    return places + (f" and {hit.more_copies} more" if hit.more_copies else "")


def hit_place(hit: SearchHit) -> str:
    """The hit's citation for a text view, followed by its source path in parentheses when a
    copy in ``also_in`` has the same citation (so the hit's own place is named too)."""
    if any(copy.citation == hit.citation for copy in hit.also_in):
        return f"{hit.citation} ({hit.source})"
    return hit.citation


def hit_text(text: str, *, code: bool) -> str:
    """The hit's (already trimmed) text laid out under its citation: prose on one line, code
    line by line, each indented four spaces; blank lines dropped."""
    if code:
        return "\n".join("    " + line for line in text.splitlines() if line.strip())
    return "    " + " ".join(text.split())
