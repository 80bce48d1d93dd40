"""Turning located symbols into code chunks: real source lines, real line numbers, newlines kept.

Each symbol (function, method, class header) becomes a chunk; lines outside every symbol
(module docstring, imports, top-level statements) become ``module`` chunks; anything too long
for the budget is cut into line windows that keep the symbol, signature and true line range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece

_MEANINGFUL = re.compile(r"[^\s{}()\[\];,]")
"""A span of only braces and blank lines (a class's closing ``}``) is not worth a chunk."""


@dataclass(frozen=True)
class Symbol:
    """A definition found by a parser; lines are 1-based and inclusive."""

    name: str
    kind: str
    signature: str
    start_line: int
    end_line: int


def _piece(
    lines: list[str],
    start: int,
    end: int,
    *,
    title: str,
    language: str,
    symbol: str,
    kind: str,
    signature: str,
    budget: TokenBudget,
) -> Piece:
    """Lines [start, end) (0-based) as a piece; a single overlong line is cut to fit."""
    text = "\n".join(lines[start:end])
    if not budget.fits(title, text):
        text = budget.cut_to(text, budget.room(title) - 1)
    return Piece(
        title=title,
        text=text,
        metadata={
            "language": language,
            "symbol": symbol,
            "symbol_kind": kind,
            "signature": signature,
            "start_line": start + 1,
            "end_line": end,
        },
    )


def window_pieces(
    lines: list[str],
    start: int,
    end: int,
    *,
    title: str,
    language: str,
    symbol: str,
    kind: str,
    signature: str,
    budget: TokenBudget,
    overlap_lines: int,
) -> list[Piece]:
    """Lines [start, end) as one piece, or as overlapping windows when over budget."""
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    if start >= end or not _MEANINGFUL.search("\n".join(lines[start:end])):
        return []
    title = budget.fit_title(title)
    common = {
        "title": title,
        "language": language,
        "symbol": symbol,
        "kind": kind,
        "signature": signature,
        "budget": budget,
    }
    if budget.fits(title, "\n".join(lines[start:end])):
        return [_piece(lines, start, end, **common)]  # type: ignore[arg-type]
    windows = budget.line_windows(lines[start:end], title, overlap_lines)
    return [
        _piece(lines, start + a, start + b, **common)  # type: ignore[arg-type]
        for a, b in windows
    ]


def symbol_pieces(
    text: str,
    symbols: list[Symbol],
    *,
    language: str,
    rel_path: str,
    budget: TokenBudget,
    overlap_lines: int,
) -> list[Piece]:
    """Chunks for the symbols plus ``module`` chunks for the lines between them, in file order."""
    lines = text.split("\n")
    covered = [False] * len(lines)
    spans: list[tuple[int, int, Symbol | None]] = []
    for found in sorted(symbols, key=lambda s: (s.start_line, -s.end_line)):
        start, end = found.start_line - 1, min(found.end_line, len(lines))
        if start >= end or all(covered[start:end]):
            continue
        for i in range(start, end):
            covered[i] = True
        spans.append((start, end, found))
    i = 0
    while i < len(lines):
        if covered[i]:
            i += 1
            continue
        j = i
        while j < len(lines) and not covered[j]:
            j += 1
        spans.append((i, j, None))
        i = j
    spans.sort(key=lambda s: s[0])
    pieces: list[Piece] = []
    for start, end, sym in spans:
        if sym is None:
            pieces.extend(
                window_pieces(
                    lines,
                    start,
                    end,
                    title=f"{rel_path} (module)",
                    language=language,
                    symbol=rel_path,
                    kind="module",
                    signature="",
                    budget=budget,
                    overlap_lines=overlap_lines,
                )
            )
        else:
            pieces.extend(
                window_pieces(
                    lines,
                    start,
                    end,
                    title=f"{rel_path}: {sym.signature}" if sym.signature else rel_path,
                    language=language,
                    symbol=sym.name,
                    kind=sym.kind,
                    signature=sym.signature,
                    budget=budget,
                    overlap_lines=overlap_lines,
                )
            )
    return pieces


def line_window_pieces(
    text: str, *, language: str, rel_path: str, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Fallback for languages without a parser: overlapping line windows."""
    lines = text.split("\n")
    return window_pieces(
        lines,
        0,
        len(lines),
        title=rel_path,
        language=language,
        symbol=rel_path,
        kind="window",
        signature="",
        budget=budget,
        overlap_lines=overlap_lines,
    )
