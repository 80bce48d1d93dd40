"""HTML: visible text grouped under its h1-h6 headings (scripts, styles and navigation dropped)."""

from __future__ import annotations

from html.parser import HTMLParser

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.sections import SectionBuilder, pack_sections

_BLOCK_TAGS = {
    "p", "div", "li", "ul", "ol", "pre", "table", "tr", "section", "article", "blockquote",
    "dd", "dt", "dl", "br", "hr", "figcaption", "main", "header", "footer", "td", "th",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "nav", "head"}
_VOID_TAGS = {"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr", "source"}
_BOILERPLATE_CLASSES = {"headerlink", "sphinxsidebar", "related", "footer", "navbar", "toc"}


def _is_boilerplate(attrs: list[tuple[str, str | None]]) -> bool:
    """Navigation, sidebars and permalink anchors (Sphinx, common site themes)."""
    for name, value in attrs:
        if name == "role" and value in {"navigation", "search", "banner", "contentinfo"}:
            return True
        if name == "class" and value and _BOILERPLATE_CLASSES & set(value.split()):
            return True
    return False


_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.builder = SectionBuilder()
        self.title = ""
        self._skip_depth = 0
        self._in_title = False
        self._in_pre = 0
        self._heading: int | None = None
        self._buffer: list[str] = []

    def _flush(self) -> None:
        text = "".join(self._buffer)
        self._buffer.clear()
        if self._heading is not None:
            if text.strip():
                self.builder.heading(self._heading, text, " ".join(text.split()))
            return
        if self._in_pre:
            self.builder.block(text)
        else:
            self.builder.block(" ".join(text.split()))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _VOID_TAGS:
            if tag in _BLOCK_TAGS and not self._skip_depth:
                self._flush()
            return
        if self._skip_depth:
            self._skip_depth += 1
            return
        if tag in _SKIP_TAGS or _is_boilerplate(attrs):
            self._skip_depth = 1
            return
        if tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BLOCK_TAGS:
            self._flush()
            if tag == "pre":
                self._in_pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _VOID_TAGS:
            return
        if self._skip_depth:
            self._skip_depth -= 1
            return
        if tag in _HEADINGS and self._heading is not None:
            self._flush()
            self._heading = None
        elif tag in _BLOCK_TAGS:
            self._flush()
            if tag == "pre":
                self._in_pre = max(0, self._in_pre - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._skip_depth:
            return
        self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_sections(text: str) -> tuple[str, SectionBuilder]:
    """The page title and its text grouped by headings."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return " ".join(parser.title.split()), parser.builder


def chunk_html(text: str, budget: TokenBudget, doc_title: str) -> list[Piece]:
    """Heading-aware chunks of the visible text (each heading opens its section's chunk)."""
    title, builder = html_sections(text)
    return pack_sections(builder.sections, budget, title or doc_title)


def html_to_text(text: str) -> str:
    """The visible text of a page, headings included, blocks separated by blank lines.

    Visible means: outside ``head``, ``script``, ``style``, ``noscript``, ``template``, ``svg``,
    ``nav`` and navigation chrome (ARIA navigation/search/banner/contentinfo roles, Sphinx and
    common theme classes such as ``headerlink`` or ``sphinxsidebar``). The HTML chunkers keep
    all of it (the legal chunker reads this text).
    """
    _, builder = html_sections(text)
    out: list[str] = []
    for section in builder.sections:
        if section.heading:
            out.append(section.heading)
        out.extend(section.blocks)
    return "\n\n".join(out)
