"""Heading-aware packing shared by the Markdown, reStructuredText, plain-text and HTML chunkers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece


@dataclass
class Section:
    """Blocks (paragraphs, lists, code fences) under one heading path."""

    heading_path: list[str]
    blocks: list[str] = field(default_factory=list)


class SectionBuilder:
    """Collects blocks while headings of varying levels open and close sections."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self.sections: list[Section] = [Section([])]

    def heading(self, level: int, text: str) -> None:
        """Start a section under ``text`` at ``level`` (1 = top)."""
        text = " ".join(text.split())
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        self.sections.append(Section([t for _, t in self._stack]))

    def block(self, text: str) -> None:
        """Add a block of text to the current section."""
        if text.strip():
            self.sections[-1].blocks.append(text.strip("\n"))


def pack_sections(
    sections: list[Section],
    budget: TokenBudget,
    doc_title: str,
    extra: dict[str, Any] | None = None,
) -> list[Piece]:
    """One or more pieces per section; the heading path is the embedded title."""
    pieces: list[Piece] = []
    for section in sections:
        if not section.blocks:
            continue
        path = section.heading_path or [doc_title]
        if path[0] != doc_title and doc_title and section.heading_path:
            # Nested headings without an H1: keep the document title as context.
            title = " > ".join([doc_title, *path])
        else:
            title = " > ".join(path)
        title = budget.fit_title(title)
        for text in budget.pack(section.blocks, title):
            metadata: dict[str, Any] = {"heading_path": list(section.heading_path)}
            if extra:
                metadata.update(extra)
            pieces.append(Piece(title=title, text=text, metadata=metadata))
    return pieces
