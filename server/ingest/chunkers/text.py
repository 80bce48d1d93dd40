"""reStructuredText (section titles by underline) and plain text (paragraphs)."""

from __future__ import annotations

import re

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.sections import SectionBuilder, pack_sections

_ADORNMENT = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")
RULE = re.compile(r"^\s*([=\-~*_#])(?:[ \t]*\1){2,}\s*$")
"""A rule line: three or more of one of ``= - ~ * _ #``, spaced or not (``---``, ``* * *``):
layout, never a title or text of its own."""


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs with their inner line breaks kept."""
    return [p.strip("\n") for p in re.split(r"\n\s*\n", text) if p.strip()]


def chunk_plain_text(
    text: str, budget: TokenBudget, doc_title: str, *, title_given: bool = False
) -> list[Piece]:
    """Paragraph-aware chunks under the document title; a text whose titles are underlined
    (``Rootless builds`` / ``===============``, as many plain-text manuals write them) is
    sectioned as reStructuredText is (:func:`chunk_rst`), its heading path in each title."""
    lines = text.split("\n")
    if any(_underlined(lines, i) for i in range(len(lines))):
        return chunk_rst(text, budget, doc_title, title_given=title_given)
    return chunk_paragraphs(text, budget, doc_title)


def chunk_paragraphs(text: str, budget: TokenBudget, doc_title: str) -> list[Piece]:
    """Paragraph-aware chunks under the document title, with no heading read in the text."""
    builder = SectionBuilder()
    for paragraph in paragraphs(text):
        builder.block(paragraph)
    return pack_sections(builder.sections, budget, doc_title)


def _underlined(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is a title underlined by the next line (an adornment at least as long,
    after a blank line, a rule or at the start)."""
    line = lines[i]
    return bool(
        line.strip()
        and not _ADORNMENT.match(line)
        and i + 1 < len(lines)
        and _ADORNMENT.match(lines[i + 1])
        and len(lines[i + 1].rstrip()) >= len(line.rstrip())
        # after a blank line, at the start, or under a rule that is not its overline (a file
        # opening with `---` straight above its title)
        and (i == 0 or not lines[i - 1].strip() or RULE.match(lines[i - 1]) is not None)
    )


def chunk_rst(
    text: str, budget: TokenBudget, doc_title: str, *, title_given: bool = False
) -> list[Piece]:
    """Section-aware chunks; heading levels follow the order adornment styles first appear.

    A section title opens its section's first chunk as written (with its adornment lines). The
    first title is the document's title unless ``title_given`` (front matter named it)."""
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []
    builder = SectionBuilder()
    buffer: list[str] = []
    first_title: str | None = None

    def flush() -> None:
        for paragraph in paragraphs("\n".join(buffer)):
            builder.block(paragraph)
        buffer.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        over = False
        title_line = None
        # Overline + title + underline.
        if (
            _ADORNMENT.match(line)
            and i + 2 < len(lines)
            and lines[i + 1].strip()
            and _ADORNMENT.match(lines[i + 2])
            and lines[i + 2].strip()[0] == line.strip()[0]
        ):
            over, title_line, adornment, consumed = True, lines[i + 1], line.strip()[0], 3
        elif _underlined(lines, i):
            title_line, adornment, consumed = line, lines[i + 1].strip()[0], 2
        if title_line is None:
            buffer.append(line)
            i += 1
            continue
        flush()
        style = (adornment, over)
        written = "\n".join(lines[i : i + consumed])
        if style not in styles:
            styles.append(style)
        title = title_line.strip()
        if first_title is None:
            first_title = title
        builder.heading(styles.index(style) + 1, title, written)
        i += consumed
    flush()
    return pack_sections(
        builder.sections, budget, doc_title if title_given else first_title or doc_title
    )
