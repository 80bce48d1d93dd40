"""Hit texts trimmed to an output budget, around their best-matching sentences.

A search's hits share one budget of characters for their texts (``max_chars``). Shares are
fair (max-min): a hit shorter than the common share keeps its whole text and leaves the rest
to the others; when the budget cannot give every hit :data:`MIN_SHARE` characters, the best
ranked hits get that much in rank order and the rest keep only citation and link. A hit over
its share keeps its sentences (code: lines) that contain most of the query's keyword terms,
then the units next to them, following ones first, as many as fit; the pieces kept are
exact substrings of the stored text in reading order, adjacent ones joined by the original
text between them, others by a gap marker (:data:`PROSE_GAP`, :data:`CODE_GAP`). A best
sentence longer than the share is cut to a window around its first matching word.

Every rendered text, gap markers included, fits its share, so the texts of one response add up
to at most the budget. The whole text stays readable through get_chunk and the chunk resource.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.retrieval.boundaries import split_sentences

MIN_SHARE = 100
"""Characters below which a share shows too little of a hit to help (about one sentence)."""
PROSE_GAP = " … "
"""Between two kept pieces of prose that are not adjacent in the stored text."""
CODE_GAP = "\n…\n"
"""Between two kept pieces of code: the lines stay lines."""

Span = tuple[int, int]
Scorer = Callable[[str], int]
"""How well a piece of text matches the query (the number of query terms it contains)."""

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Trimmed:
    """A hit's text as shown: ``spans`` are the pieces of the stored text kept, in order."""

    text: str
    spans: tuple[Span, ...]
    truncated: bool


def shares(lengths: Sequence[int], budget: int, min_share: int = MIN_SHARE) -> list[int]:
    """Characters each text may use, in rank order, summing to at most ``budget``.

    Max-min fair: the largest common share ``s`` with ``sum(min(length, s)) <= budget``, the
    characters left over going one each to the first capped texts. When ``s`` falls below
    ``min_share``, texts get ``min(length, min_share)`` in rank order until the budget ends.
    """
    if sum(lengths) <= budget:
        return list(lengths)
    remaining, level = budget, 0
    ascending = sorted(lengths)
    for k, length in enumerate(ascending):
        fair = remaining // (len(ascending) - k)
        if length > fair:
            level = fair
            break
        remaining -= length
    if level < min_share:
        out = []
        remaining = budget
        for length in lengths:
            share = min(length, min_share, remaining)
            out.append(share)
            remaining -= share
        return out
    out = [min(length, level) for length in lengths]
    spare = budget - sum(out)
    for i, length in enumerate(lengths):
        if spare <= 0:
            break
        if length > out[i]:
            out[i] += 1
            spare -= 1
    return out


def unit_spans(text: str, *, code: bool) -> list[Span]:
    """The units trimming keeps or drops: non-blank lines of code (indentation kept); for
    prose, sentences (boundaries.split_sentences), split further at line ends (list items,
    table rows). Spans are ``(start, end)`` offsets into ``text``, ascending, never empty."""
    spans: list[Span] = []
    if code:
        offset = 0
        for line in text.splitlines(keepends=True):
            body = line.rstrip()
            if body.strip():
                spans.append((offset, offset + len(body)))
            offset += len(line)
        return spans
    cursor = 0
    for sentence in split_sentences(text):
        start = text.find(sentence, cursor)
        if start < 0:  # split_sentences yields stripped substrings in order; never taken
            continue
        cursor = start + len(sentence)
        offset = start
        for line in sentence.splitlines(keepends=True):
            body = line.strip()
            if body:
                lead = len(line) - len(line.lstrip())
                spans.append((offset + lead, offset + lead + len(body)))
            offset += len(line)
    return spans


def render(text: str, spans: Sequence[Span], *, code: bool) -> str:
    """The kept pieces joined: adjacent pieces (only whitespace between them) by that
    whitespace, others by the gap marker; a marker too where the text is cut at either end."""
    if not spans:
        return ""
    gap = CODE_GAP if code else PROSE_GAP
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and not text[merged[-1][1] : start].strip():
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    body = gap.join(text[start:end] for start, end in merged)
    head = gap[1:] if text[: merged[0][0]].strip() else ""  # "… " or "…\n"
    tail = gap[:-1] if text[merged[-1][1] :].strip() else ""
    return head + body + tail


def _inside(span: Span, shown: Sequence[Span]) -> bool:
    return any(a <= span[0] and span[1] <= b for a, b in shown)


def _window(
    text: str, unit: Span, share: int, score: Scorer, *, code: bool, shown: Sequence[Span] = ()
) -> Span | None:
    """A piece of one over-long unit that renders within ``share``: centred a third of the way
    before its first matching word not in ``shown`` (else its first word not in ``shown``, else
    its start), cut at spaces."""
    width = share - 2 * (len(PROSE_GAP) - 1)  # room for the markers at both ends
    if width <= 0:
        return None
    start, end = unit
    new_words = [w for w in _WORD.finditer(text, start, end) if not _inside(w.span(), shown)]
    matching = (w for w in new_words if score(w.group()) > 0)
    first = next(matching, new_words[0] if new_words else None)
    anchor = first.start() if first else start
    lo = max(start, min(anchor - width // 3, end - width))
    hi = min(end, lo + width)
    if lo > start:  # begin at a word start when the window does not lose its anchor by it
        space = text.find(" ", lo, anchor)
        if space >= 0:
            lo = space + 1
    if hi < end:
        space = text.rfind(" ", lo, hi)
        if space > max(lo, anchor):
            hi = space
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return (lo, hi) if hi > lo else None


def trim_text(
    text: str, share: int, score: Scorer, *, code: bool, shown: Sequence[Span] = ()
) -> Trimmed:
    """``text`` rendered within ``share`` characters around its best-matching units.

    ``shown``: spans of ``text`` a better hit already shows (the overlap with a neighbouring
    chunk of the same source); the units inside them rank below every unit that is not, so a
    trimmed text leads with what the reader has not seen.
    """
    if len(text) <= share:
        return Trimmed(text, ((0, len(text)),) if text else (), False)
    units = unit_spans(text, code=code)
    if not units:
        return Trimmed("", (), True)
    scores = [-1 if _inside(unit, shown) else score(text[unit[0] : unit[1]]) for unit in units]
    ranked = sorted(range(len(units)), key=lambda i: (-scores[i], i))
    chosen: set[int] = set()

    def fits(extra: int) -> bool:
        spans = [units[i] for i in sorted(chosen | {extra})]
        return len(render(text, spans, code=code)) <= share

    best = ranked[0]  # the first unit when none matches: a chunk opens with its topic
    if not fits(best):
        window = _window(text, units[best], share, score, code=code, shown=shown)
        spans: tuple[Span, ...] = (window,) if window else ()
        return Trimmed(render(text, spans, code=code), spans, True)
    chosen.add(best)
    for i in ranked[1:]:
        if scores[i] > 0 and fits(i):
            chosen.add(i)
    # then context: units next to kept ones, following before preceding, while they fit
    tried: set[int] = set()
    while True:
        frontier = sorted(
            {i for c in chosen for i in (c + 1, c - 1) if 0 <= i < len(units)} - chosen - tried,
            key=lambda i: (0 if i - 1 in chosen else 1, i),
        )
        if not frontier:
            break
        for i in frontier:
            tried.add(i)
            if fits(i):
                chosen.add(i)
    spans = tuple(units[i] for i in sorted(chosen))
    return Trimmed(render(text, spans, code=code), spans, True)


def trim_texts(
    texts: Sequence[str],
    budget: int,
    score: Scorer,
    *,
    code: bool,
    positions: Sequence[tuple[str, int]] | None = None,
) -> list[Trimmed]:
    """Texts of ranked hits, best first, trimmed to share ``budget`` characters (see module).

    ``positions`` (one ``(source, chunk_index)`` per text): consecutive chunks of one source
    overlap (the ingest overlap; windows of one long line share a margin), and trimmed around
    the same matching sentence two of them showed the same passage twice. A text is trimmed
    after the better ones next to it in its source, around what they did not show
    (:func:`overlap`).
    """
    allotted = shares([len(t) for t in texts], budget)
    where = {position: i for i, position in enumerate(positions or ())}
    out: list[Trimmed] = []
    for i, (text, share) in enumerate(zip(texts, allotted, strict=True)):
        shown: list[Span] = []
        if positions is not None:
            source, index = positions[i]
            for neighbour in (index - 1, index + 1):
                j = where.get((source, neighbour))
                if j is not None and j < i:
                    before = neighbour < index
                    shown.extend(_shown_in(texts[j], out[j].spans, text, before=before))
        out.append(trim_text(text, share, score, code=code, shown=shown))
    return out


OVERLAP_PROBE = 32
"""Characters of a text's start (or end) searched for in another to find their overlap."""


def overlap(before: str, after: str) -> int:
    """Length of the longest suffix of ``before`` that is a prefix of ``after`` (how
    consecutive chunks of one source overlap), when it holds ``after``'s first
    :data:`OVERLAP_PROBE` characters; 0 otherwise (a shorter overlap is a coincidence, not
    the ingest overlap of a few sentences)."""
    probe = after[:OVERLAP_PROBE]
    if not probe:
        return 0
    start = max(0, len(before) - len(after))
    while (pos := before.find(probe, start)) >= 0:
        if after.startswith(before[pos:]):
            return len(before) - pos
        start = pos + 1
    return 0


def _shown_in(other: str, spans: Sequence[Span], text: str, *, before: bool) -> list[Span]:
    """``other``'s shown ``spans`` as spans of ``text``, where the two overlap: ``other`` is the
    chunk before ``text`` (its end is text's start), or the one after (``before`` false)."""
    if before:
        shift = len(other) - overlap(other, text)
        return [(max(a - shift, 0), b - shift) for a, b in spans if b - shift > 0]
    k = overlap(text, other)
    shift = len(text) - k
    return [(a + shift, min(b + shift, len(text))) for a, b in spans if a < k]
