"""Definitions first: a code search for a name puts the chunks that define it ahead of the
chunks that only use it.

A query that is one name (``computeShippingInsurancePremium``, ``Holder.method``, ``Vec::new``,
``raw_decode()``, ``def raw_decode``, ``class Holder``) asks for its definition. Every import,
export list and call site holds the name too, often in a much shorter chunk, which BM25's
length normalisation ranks higher: in a fresh user's trial the ``import { ... }`` line and the
``export { ... }`` line both ranked above the function. Among the first ``depth`` hits of such a
search, those whose ``symbol`` is the name asked for (its last parts, compared exactly, then
ignoring case), or whose ``defines`` holds it (a window of a line several definitions
share), move ahead of the others, each group in the order it had; nothing is added or
dropped. The depth and what the rule gains and costs on the code tuning sets: README,
"Definition lookups".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from server.retrieval.results import SearchHit

_KEYWORDS = frozenset(
    {
        "class",
        "def",
        "enum",
        "fn",
        "fun",
        "func",
        "function",
        "impl",
        "interface",
        "module",
        "object",
        "struct",
        "trait",
        "type",
    }
)
"""A declaration keyword typed before the name (``def raw_decode``, ``class Holder``)."""
_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|#)[A-Za-z_$][\w$]*)*")
"""A name, qualified by ``.`` (Python, JavaScript, Go), ``::`` (Rust, C++) or ``#`` (Ruby)."""
_SEPARATOR = re.compile(r"\.|::|#")
_NOT_DEFINITIONS = frozenset({"module", "window"})
"""Symbol kinds of chunks that define nothing (lines between definitions, line windows)."""


def asked_name(query: str) -> tuple[str, ...] | None:
    """The name a query asks for, as its qualified parts (``("Holder", "method")``), or None
    when the query is not one name (optionally after a declaration keyword, optionally with
    ``()``)."""
    words = query.split()
    if len(words) == 2 and words[0] in _KEYWORDS:
        words = words[1:]
    if len(words) != 1:
        return None
    word = words[0].removesuffix("()").removesuffix("(")
    if not _NAME.fullmatch(word):
        return None
    return tuple(_SEPARATOR.split(word))


def _match(hit: SearchHit, name: tuple[str, ...]) -> int:
    """0: the hit defines ``name`` as written; 1: ignoring case; 2: it does not define it.

    A hit defines its ``symbol`` (unless it is a module or line window) and every name of its
    ``defines`` (definitions starting inside it: a window of a line several share)."""
    metadata = hit.metadata or {}
    symbol = metadata.get("symbol")
    names = [symbol] if metadata.get("symbol_kind") not in _NOT_DEFINITIONS else []
    defines = metadata.get("defines")
    names += defines if isinstance(defines, list) else []
    return min((_match_name(n, name) for n in names if isinstance(n, str)), default=2)


def _place(hit: SearchHit, name: tuple[str, ...]) -> tuple[int, bool]:
    """(how the hit defines ``name``: :func:`_match`; True for a definition's continuation
    window, part 2 or later of one long line, which follows the window where it starts: a
    40 KB literal in a function's body is not what a search for its name wants first)."""
    match = _match(hit, name)
    part = (hit.metadata or {}).get("part")
    return match, match < 2 and isinstance(part, int) and part > 1


def _match_name(symbol: str, name: tuple[str, ...]) -> int:
    parts = tuple(_SEPARATOR.split(symbol))[-len(name) :]
    if parts == name:
        return 0
    if len(parts) == len(name) and all(
        a.casefold() == b.casefold() for a, b in zip(parts, name, strict=True)
    ):
        return 1
    return 2


def definitions_first(
    hits: Sequence[SearchHit], name: tuple[str, ...], depth: int
) -> tuple[list[SearchHit], int]:
    """``hits`` with those of the first ``depth`` that define ``name`` moved to the front
    (exact matches, then matches ignoring case; in each, continuation windows after the
    others; each group keeps its order), and how many moved ahead of a hit that ranked above
    them. Hits past ``depth`` keep their places."""
    head, tail = list(hits[:depth]), list(hits[depth:])
    ranked = sorted(range(len(head)), key=lambda i: (*_place(head[i], name), i))
    moved = sum(1 for place, i in enumerate(ranked) if i > place)
    return [head[i] for i in ranked] + tail, moved
