"""Markdown: sections by heading (fences and lists kept whole), parsed with markdown-it-py."""

from __future__ import annotations

from markdown_it import MarkdownIt

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.sections import SectionBuilder, pack_sections

_PARSER = MarkdownIt("commonmark").enable("table")


def chunk_markdown(
    text: str, budget: TokenBudget, doc_title: str, *, title_given: bool = False
) -> list[Piece]:
    """Heading-aware chunks; ``heading_path`` in metadata, prepended for embedding.

    The chunks hold the source as written (headings, markup, link reference definitions).
    The document title is the first H1 unless ``title_given`` (front matter named it).
    """
    lines = text.split("\n")
    tokens = _PARSER.parse(text)
    builder = SectionBuilder()
    first_h1: str | None = None
    cursor = 0  # first line not yet in a block or heading

    def gap(end: int) -> None:
        # Lines no top-level token claims (link reference definitions) are text too.
        if end > cursor:
            builder.block("\n".join(lines[cursor:end]))

    for i, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting == -1:
            continue
        start, end = token.map
        gap(start)
        if token.type == "heading_open":
            inline = tokens[i + 1].content if i + 1 < len(tokens) else ""
            level = int(token.tag[1:])
            if level == 1 and first_h1 is None:
                first_h1 = inline
            builder.heading(level, inline, "\n".join(lines[max(start, cursor) : end]))
        else:
            builder.block("\n".join(lines[max(start, cursor) : end]))
        cursor = max(cursor, end)
    gap(len(lines))
    title = doc_title if title_given else (first_h1 or doc_title)
    return pack_sections(builder.sections, budget, title)
