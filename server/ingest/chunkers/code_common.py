"""Turning located symbols into code chunks: real source lines, real line numbers, newlines kept.

Each symbol (function, method, class header) becomes a chunk; lines outside every symbol
(module docstring, imports, top-level statements) become ``module`` chunks; anything too long
for the budget is split into line windows that keep the symbol, signature and true line range.
A single line longer than the budget (minified code) becomes several windows of that line, cut
at whitespace or after ``; , { } ) ( =``; they share its line number and carry ``part``/``parts``.
A window of a symbol's line that lies wholly before the definition starts or after it ends (a
40 KB literal on the line before ``export function f``) is labelled ``module``, not ``f``; a
window lists the other definitions starting in it as ``defines``.
Lines holding only braces (a class's closing ``}``) join the chunk before them, or else the one
after them; no source line is ever dropped.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece

_MEANINGFUL = re.compile(r"[^\s{}()\[\];,]")
"""A span without any of these characters (only braces, brackets, ``;`` ``,``) is not worth a
chunk of its own: it is attached to a neighbour instead."""


Point = tuple[int, int]
"""A place in the source: 1-based line, UTF-8 byte column (as parsers report it)."""


@dataclass(frozen=True)
class Symbol:
    """A definition found by a parser; lines are 1-based and inclusive."""

    name: str
    kind: str
    signature: str
    start_line: int
    end_line: int
    head: Point | None = None
    """Where the definition itself starts, when other code may share its first line."""
    tail: Point | None = None
    """Where the definition ends, when other code may share its last line."""


@dataclass(frozen=True)
class _Label:
    """What the chunks of one span are about (the embedded title and symbol metadata)."""

    title: str
    symbol: str
    kind: str
    signature: str
    bounds: tuple[int, int] | None = None
    """Character offsets [start, end) of the definition in the text, when known: windows of a
    line wholly outside them are not about the symbol."""


class _Source:
    """A file's text, its lines, where each line starts, each line's token count, and where
    each of its definitions starts."""

    def __init__(self, text: str, budget: TokenBudget, symbols: Sequence[Symbol] = ()) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts: list[int] = []
        at = 0
        for line in self.lines:
            self.starts.append(at)
            at += len(line) + 1
        self.counts = budget.line_token_counts(self.lines)
        self._columns: dict[int, list[int]] = {}
        self.heads = sorted(
            (self.offset(s.head) if s.head else self.starts[s.start_line - 1], s.name)
            for s in symbols
        )
        """(character offset, name) of every definition, in offset order."""

    def offset(self, point: Point) -> int:
        """Character offset of ``point`` (1-based line, UTF-8 byte column) in the text."""
        row, column = point[0] - 1, point[1]
        line = self.lines[row]
        if line.isascii():
            return self.starts[row] + column
        chars = self._columns.get(row)
        if chars is None:  # once per line: a minified line holds thousands of definitions
            chars = [0]
            for count, ch in enumerate(line, start=1):
                chars.extend([count] * len(ch.encode()))
            self._columns[row] = chars
        return self.starts[row] + chars[min(column, len(chars) - 1)]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Character offsets [lo, hi) of lines [start, end) (0-based)."""
        return self.starts[start], self.starts[end - 1] + len(self.lines[end - 1])

    def defines(self, lo: int, hi: int, own: str) -> list[str]:
        """Names of the definitions starting in characters [lo, hi), but ``own``."""
        first = bisect_left(self.heads, (lo, ""))
        last = bisect_left(self.heads, (hi, ""))
        return list(dict.fromkeys(n for _, n in self.heads[first:last] if n != own))

    def line_of(self, offset: int) -> int:
        """0-based line holding character ``offset``."""
        return bisect_right(self.starts, offset) - 1

    def joined(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start:end])

    def tokens(self, start: int, end: int) -> int:
        return sum(self.counts[start:end])


def _metadata(
    src: _Source, language: str, label: _Label, start: int, end: int, chars: tuple[int, int]
) -> dict[str, Any]:
    """A chunk's metadata: ``start``..``end`` its 1-based lines, ``chars`` its character span
    (``defines``: the other definitions starting in it, as on a line a bundler filled)."""
    metadata: dict[str, Any] = {
        "language": language,
        "symbol": label.symbol,
        "symbol_kind": label.kind,
        "signature": label.signature,
        "start_line": start,
        "end_line": end,
    }
    defines = src.defines(*chars, label.symbol)
    if defines:
        metadata["defines"] = defines
    return metadata


def _window_pieces(
    src: _Source,
    start: int,
    end: int,
    label: _Label,
    *,
    module: _Label,
    language: str,
    budget: TokenBudget,
    overlap_lines: int,
) -> list[Piece]:
    """Lines [start, end) (0-based) as one piece, or as overlapping windows when over budget;
    a line that alone exceeds the budget is split into parts of that line, a part wholly
    outside the label's bounds labelled ``module``."""
    title = label.title
    room = budget.room(title)
    if src.tokens(start, end) <= room:
        text = src.joined(start, end)
        metadata = _metadata(src, language, label, start + 1, end, src.span(start, end))
        return [Piece(title, text, metadata)]
    pieces: list[Piece] = []
    ranges = budget.line_windows(src.lines[start:end], title, overlap_lines, src.counts[start:end])
    for a, b in ranges:
        a, b = _trim_blank(src.lines, a + start, b + start)
        if a >= b:
            continue  # only blank lines (between two over-long ones)
        if src.tokens(a, b) <= room:
            metadata = _metadata(src, language, label, a + 1, b, src.span(a, b))
            pieces.append(Piece(title, src.joined(a, b), metadata))
            continue
        stop = src.starts[b - 1] + len(src.lines[b - 1])
        # a part may be labelled module instead: it must fit under either title
        part_room = room if label.bounds is None else min(room, budget.room(module.title))
        parts = budget.windows(src.text, part_room, code=True, start=src.starts[a], end=stop)
        for number, part in enumerate(parts, start=1):
            own = label
            if label.bounds is not None and (
                part.end <= label.bounds[0] or part.start >= label.bounds[1]
            ):
                own = module
            first, last = src.line_of(part.start) + 1, src.line_of(part.end - 1) + 1
            metadata = _metadata(src, language, own, first, last, (part.start, part.end))
            metadata.update(part=number, parts=len(parts))
            pieces.append(Piece(own.title, src.text[part.start : part.end], metadata))
    return pieces


def _trim_blank(lines: list[str], start: int, end: int) -> tuple[int, int]:
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return start, end


def _attach_after(
    pieces: list[Piece], src: _Source, start: int, end: int, budget: TokenBudget
) -> bool:
    """Extend the last piece to line ``end`` (0-based, exclusive) when it is made of whole lines
    and still fits; True when done."""
    if not pieces or "part" in pieces[-1].metadata:
        return False
    last = pieces[-1]
    first = last.metadata["start_line"] - 1
    if last.metadata["end_line"] > start:
        return False
    if budget.count(last.title) + src.tokens(first, end) > budget.max_tokens:
        return False
    last.text = src.joined(first, end)
    last.metadata["end_line"] = end
    return True


def _module_label(rel_path: str, budget: TokenBudget) -> _Label:
    return _Label(budget.fit_title(f"{rel_path} (module)"), rel_path, "module", "")


def _bounds(src: _Source, found: Symbol) -> tuple[int, int] | None:
    """The definition's character offsets, when the parser said where it starts or ends."""
    if found.head is None and found.tail is None:
        return None
    start = src.offset(found.head) if found.head else src.starts[found.start_line - 1]
    end = src.offset(found.tail) if found.tail else len(src.text)
    return start, end


def _spans(
    src: _Source, symbols: list[Symbol], module: _Label, budget: TokenBudget, rel_path: str
) -> list[tuple[int, int, _Label]]:
    """Line spans [start, end) in file order: one per kept symbol, one per gap between them."""
    lines = src.lines
    covered = [False] * len(lines)
    per_line = Counter(s.start_line for s in symbols)
    spans: list[tuple[int, int, _Label]] = []
    for found in sorted(symbols, key=lambda s: (s.start_line, -s.end_line)):
        start, end = found.start_line - 1, min(found.end_line, len(lines))
        if start >= end or all(covered[start:end]):
            continue
        for i in range(start, end):
            covered[i] = True
        if end - start == 1 and per_line[found.start_line] > 1:
            # Several definitions on one line (minified code): no one of them names the line.
            spans.append((start, end, module))
            continue
        title = f"{rel_path}: {found.signature}" if found.signature else rel_path
        label = _Label(
            budget.fit_title(title), found.name, found.kind, found.signature, _bounds(src, found)
        )
        spans.append((start, end, label))
    i = 0
    while i < len(lines):
        if covered[i]:
            i += 1
            continue
        j = i
        while j < len(lines) and not covered[j]:
            j += 1
        spans.append((i, j, module))
        i = j
    spans.sort(key=lambda s: s[0])
    return spans


def _pieces(
    src: _Source,
    spans: list[tuple[int, int, _Label]],
    *,
    module: _Label,
    language: str,
    budget: TokenBudget,
    overlap_lines: int,
) -> list[Piece]:
    """Pieces of every span in order; brace-only spans join a neighbour."""

    def windows(start: int, end: int, label: _Label) -> list[Piece]:
        return _window_pieces(
            src,
            start,
            end,
            label,
            module=module,
            language=language,
            budget=budget,
            overlap_lines=overlap_lines,
        )

    pieces: list[Piece] = []
    pending: int | None = None  # first line of brace-only lines waiting for the next span
    last_label: _Label | None = None
    for span_start, span_end, label in spans:
        start, end = _trim_blank(src.lines, span_start, span_end)
        if start >= end:
            continue
        if not _MEANINGFUL.search(src.joined(start, end)):
            if pending is None and _attach_after(pieces, src, start, end, budget):
                continue
            pending = start if pending is None else pending
            last_label = label
            continue
        if pending is not None:
            start, pending = pending, None
        pieces.extend(windows(start, end, label))
    if pending is not None and last_label is not None:
        _, end = _trim_blank(src.lines, pending, len(src.lines))
        pieces.extend(windows(pending, end, last_label))
    return pieces


def symbol_pieces(
    text: str,
    symbols: list[Symbol],
    *,
    language: str,
    rel_path: str,
    budget: TokenBudget,
    overlap_lines: int,
) -> list[Piece]:
    """Chunks for the symbols plus ``module`` chunks for the lines between them, in file order.

    Every non-blank line of ``text`` is in some chunk; ``start_line``/``end_line`` (1-based,
    inclusive) are the lines the chunk's text comes from.
    """
    src = _Source(text, budget, symbols)
    module = _module_label(rel_path, budget)
    spans = _spans(src, symbols, module, budget, rel_path)
    return _pieces(
        src,
        spans,
        module=module,
        language=language,
        budget=budget,
        overlap_lines=overlap_lines,
    )


def line_window_pieces(
    text: str, *, language: str, rel_path: str, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Fallback for languages without a parser: overlapping line windows."""
    src = _Source(text, budget)
    label = _Label(budget.fit_title(rel_path), rel_path, "window", "")
    start, end = _trim_blank(src.lines, 0, len(src.lines))
    if start >= end:
        return []
    return _window_pieces(
        src,
        start,
        end,
        label,
        module=label,
        language=language,
        budget=budget,
        overlap_lines=overlap_lines,
    )
