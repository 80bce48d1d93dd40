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


class _List:
    """An open ``ol`` or ``ul``: what its items are numbered by, and the next number."""

    def __init__(self, ordered: bool, style: str, start: int, outer: str = "") -> None:
        self.ordered, self.style, self.next, self.outer = ordered, style, start, outer
        self.current = ""  # the number of the item open now, as its marker shows it

    @classmethod
    def of(cls, tag: str, attrs: dict[str, str | None], parent: _List | None) -> _List:
        start = attrs.get("start") or "1"
        style = attrs.get("type") or "1"
        # a numbered list in a numbered item numbers its items under it (4.1, 4.2), as
        # contracts number sub-clauses; read alone, its 1. and 2. were clauses 1 and 2
        nested = parent is not None and parent.ordered and parent.style == "1" and style == "1"
        outer = parent.current if nested and parent is not None else ""
        return cls(tag == "ol", style, int(start) if start.isdigit() else 1, outer)

    def marker(self, attrs: dict[str, str | None]) -> str:
        """The number an item of an ordered list shows, as its text's first word ('' in a
        ``ul``): ``3.``, or ``(c)`` / ``(iii)`` for letters and roman numerals, as contracts
        cite them. A page numbering its clauses with ``<ol>`` shows them, and the legal
        chunker reads them as clauses (they were dropped with the markup)."""
        if not self.ordered:
            return ""
        value = attrs.get("value") or ""
        number = int(value) if value.isdigit() else self.next
        self.next = number + 1
        if self.style in ("a", "A"):
            label = _letters(number)
            return f"({label if self.style == 'a' else label.upper()}) "
        if self.style in ("i", "I"):
            label = _roman(number)
            return f"({label if self.style == 'i' else label.upper()}) "
        self.current = f"{self.outer}.{number}" if self.outer else str(number)
        return f"{self.current} " if self.outer else f"{number}. "


def _letters(number: int) -> str:
    """1 -> a, 26 -> z, 27 -> aa (as browsers count lower-alpha)."""
    out = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        out = chr(ord("a") + rest) + out
    return out or "a"


def _roman(number: int) -> str:
    out = ""
    for value, numeral in (
        (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
        (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
    ):  # fmt: skip
        count, number = divmod(number, value)
        out += numeral * count
    return out or "i"


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
        self._lists: list[_List] = []

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
        if tag in ("ol", "ul"):
            self._lists.append(_List.of(tag, dict(attrs), self._lists[-1] if self._lists else None))
        elif tag == "li" and self._lists:
            self._buffer.append(self._lists[-1].marker(dict(attrs)))

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
        if tag in ("ol", "ul") and self._lists:
            self._lists.pop()

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
