"""Heading-aware packing shared by the Markdown, reStructuredText, plain-text and HTML chunkers.

Headings are text: a heading as written (its source lines, or an HTML heading's visible text)
opens the first chunk of its section. A heading whose section has no text of its own (``# Guide``
directly followed by ``## Install``) is carried into the next section's first chunk instead of
becoming a chunk of its own, and so is a section holding only rules (a ``---`` before the first
heading).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from server.ingest.budget import TokenBudget, cut_label
from server.ingest.chunkers.base import Piece

_MAX_PATH_LABEL = 200
"""Characters of a heading kept in ``heading_path`` metadata (the chunk text has all of it)."""


@dataclass
class Section:
    """Blocks (paragraphs, lists, code fences) under one heading path; ``heading`` is the
    heading as written, empty for the text before the first heading."""

    heading_path: list[str]
    blocks: list[str] = field(default_factory=list)
    heading: str = ""


def _label(text: str) -> str:
    return cut_label(" ".join(text.split()), _MAX_PATH_LABEL)


class SectionBuilder:
    """Collects blocks while headings of varying levels open and close sections."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self.sections: list[Section] = [Section([])]

    def heading(self, level: int, text: str, source: str | None = None) -> None:
        """Start a section under ``text`` at ``level`` (1 = top); ``source`` is the heading as
        written (defaults to ``text``)."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, _label(text)))
        written = (text if source is None else source).strip("\n")
        self.sections.append(Section([t for _, t in self._stack], heading=written))

    def block(self, text: str) -> None:
        """Add a block of text to the current section."""
        if text.strip():
            self.sections[-1].blocks.append(text.strip("\n"))


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _title(section: Section, doc_title: str) -> str:
    # the document title is cut as a heading is, so a <title> holding a blob leaves the
    # section's own headings room in the embedded title
    doc_title = _label(doc_title)
    path = section.heading_path or [doc_title]
    if path[0] != doc_title and doc_title and section.heading_path:
        # Nested headings without an H1: keep the document title as context.
        return " > ".join([doc_title, *path])
    return " > ".join(path)


def pack_sections(
    sections: list[Section],
    budget: TokenBudget,
    doc_title: str,
    extra: dict[str, Any] | None = None,
) -> list[Piece]:
    """One or more pieces per section; the heading path is the embedded title."""
    pieces: list[Piece] = []
    carried: list[str] = []
    last: Section | None = None

    def emit(section: Section, blocks: list[str], lead: str) -> None:
        title = budget.fit_title(_title(section, doc_title))
        for text in budget.pack(blocks, title, lead=lead):
            metadata: dict[str, Any] = {"heading_path": list(section.heading_path)}
            if extra:
                metadata.update(extra)
            pieces.append(Piece(title=title, text=text, metadata=metadata))

    for section in sections:
        if section.heading.strip():
            carried.append(section.heading)
            last = section
        if not section.blocks:
            continue
        if not any(_has_word(block) for block in section.blocks):
            # only rules (``---``, ``* * *``): they open the next chunk, never a chunk alone
            carried.extend(section.blocks)
            last = section
            continue
        emit(section, section.blocks, "\n\n".join(carried))
        carried = []
    if carried and last is not None:
        # Headings at the very end, with no text after them.
        tail = "\n\n".join(carried)
        if pieces and budget.fits(pieces[-1].title, f"{pieces[-1].text}\n\n{tail}"):
            pieces[-1].text = f"{pieces[-1].text}\n\n{tail}"
        else:
            emit(last, [], tail)
    return pieces
