"""Markdown: sections by heading (fences and lists kept whole), parsed with markdown-it-py."""

from __future__ import annotations

from markdown_it import MarkdownIt

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.sections import SectionBuilder, pack_sections

_PARSER = MarkdownIt("commonmark").enable("table")


def chunk_markdown(text: str, budget: TokenBudget, doc_title: str) -> list[Piece]:
    """Heading-aware chunks; ``heading_path`` in metadata, prepended for embedding."""
    lines = text.split("\n")
    tokens = _PARSER.parse(text)
    builder = SectionBuilder()
    first_h1: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.level != 0 or token.map is None or token.nesting == -1:
            i += 1
            continue
        start, end = token.map
        if token.type == "heading_open":
            inline = tokens[i + 1].content if i + 1 < len(tokens) else ""
            level = int(token.tag[1:])
            if level == 1 and first_h1 is None:
                first_h1 = inline
            builder.heading(level, inline)
        else:
            builder.block("\n".join(lines[start:end]))
        i += 1
    title = first_h1 or doc_title
    return pack_sections(builder.sections, budget, title)
