"""Docs tuning set ``docs-pyindex``: index-term lookups in the Python 3.11 documentation.

Source: the HTML documentation of the pinned ``python3.11-doc`` package (PSF licence). The
corpus is the Language Reference and the Tutorial (``reference/``, ``tutorial/``): each
section's own text (up to its first subsection; heading removed) is a document, split into
chunks of at most ~300 words at paragraph boundaries; the title is the page's title
(``6. Expressions``). The queries are the entries of the documentation's general index
(``genindex-all.html``), as a reader looks a term up: a top-level entry (``generator
expression``) or an entry with its sub-entry (``assert statement``; ``lambda expression``
is written ``lambda`` + ``expression``). Every place the index sends the reader to is relevant:
the chunks of the sections holding the entry's link targets. Entries with a target outside the
corpus, with more than 3 targets or 10 relevant chunks (generic terms such as ``object``), or
with fewer than three letters (``!=``), are left out; identical texts are merged; 400 are
kept, ranked by SHA-256 of their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from beir_sets import BeirSet, chunk_paragraphs, collapse, stable_rank

HTML = "usr/share/doc/python3.11/html"
CORPUS_DIRS = ("reference", "tutorial")
MAX_CHUNK_WORDS = 300
MAX_QUERIES = 400
MAX_TARGETS = 3
MAX_RELEVANT = 10
BLOCKS = frozenset({"p", "li", "pre", "dt", "dd", "div", "tr", "table", "blockquote", "dl"})
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


@dataclass
class Section:
    """One ``<section>`` of a page: its title and its own text."""

    key: str
    title: str = ""
    parts: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)

    def paragraphs(self) -> list[str]:
        """Own text in paragraphs, whitespace collapsed."""
        return [collapse(p) for p in "".join(self.parts).split("\n\n") if collapse(p)]


class PageParser(HTMLParser):
    """Sections of the main body of a Sphinx page, and which section holds each element id."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.sections: list[Section] = []
        self.stack: list[Section] = []
        self.holder: dict[str, str] = {}
        self.page_title = ""
        self._in_body = 0
        self._skip = 0
        self._heading = 0
        self._heading_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "div" and attr.get("role") == "main":
            self._in_body = 1
            return
        if not self._in_body:
            return
        if tag == "div":
            self._in_body += 1
        if tag == "section":
            section = Section(f"{self.page}#{attr.get('id', '')}")
            self.sections.append(section)
            self.stack.append(section)
        if attr.get("id") and self.stack:
            self.holder[f"{self.page}#{attr['id']}"] = self.stack[-1].key
        if tag in ("script", "style") or (tag == "a" and "headerlink" in (attr.get("class") or "")):
            self._skip += 1
        if tag in HEADINGS:
            self._heading += 1
            self._heading_text = []

    def handle_endtag(self, tag: str) -> None:
        if not self._in_body:
            return
        if tag == "div":
            self._in_body -= 1
        if tag == "section" and self.stack:
            self.stack.pop()
        if tag in ("script", "style", "a") and self._skip:
            self._skip -= 1
        if tag in HEADINGS and self._heading:
            self._heading -= 1
            title = collapse("".join(self._heading_text))
            if self.stack and not self.stack[-1].title:
                self.stack[-1].title = title
            if tag == "h1" and not self.page_title:
                self.page_title = title
        elif tag in BLOCKS and self.stack:
            self.stack[-1].parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._in_body or self._skip or not self.stack:
            return
        if self._heading:
            self._heading_text.append(data)
        else:
            self.stack[-1].parts.append(data)


class IndexParser(HTMLParser):
    """(query text, link targets) of every entry of ``genindex-all.html``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.entries: list[tuple[str, list[str]]] = []
        self._depth = 0
        self._term: list[str] = []
        self._current: list[str] = []
        self._links: list[str] = []
        self._in_link = False
        self._first_link = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "ul":
            if self._depth == 1 and self._links:  # the entry's own links, before its sub-entries
                self.entries.append((collapse("".join(self._term)), self._links))
                self._links = []
            self._depth += 1
        elif tag == "li":
            self._current, self._links, self._first_link = [], [], True
            if self._depth == 1:
                self._term = []
        elif tag == "a" and self._depth in (1, 2) and attr.get("href"):
            self._links.append(str(attr["href"]))
            self._in_link = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self._depth -= 1
        elif tag == "a" and self._in_link:
            self._in_link = False
            self._first_link = False
        elif tag == "li" and self._links:
            term = collapse("".join(self._term))
            sub = collapse("".join(self._current))
            if self._depth == 2 and sub.startswith("("):
                # "__iadd__() (in module operator)" + "(object method)": one qualifier only
                term = re.sub(r"\s*\([^()]*\)$", "", term)
            text = term if self._depth == 1 else f"{term} {sub}"
            self.entries.append((collapse(text), self._links))
            self._links = []

    def handle_data(self, data: str) -> None:
        if self._depth == 1 and (not self._links or (self._in_link and self._first_link)):
            self._term.append(data)
        elif self._depth == 2 and self._in_link and self._first_link:
            self._current.append(data)


def build_pyindex_set(package_root: Path) -> BeirSet:
    """Index-term queries and the sections they point to, from the unpacked python3.11-doc."""
    html = package_root / HTML
    beir = BeirSet()
    holder: dict[str, str] = {}
    sections: dict[str, Section] = {}
    for directory in CORPUS_DIRS:
        for path in sorted((html / directory).glob("*.html")):
            page = f"{directory}/{path.name}"
            parser = PageParser(page)
            parser.feed(path.read_text(encoding="utf-8"))
            holder.update(parser.holder)
            for section in parser.sections:
                sections[section.key] = section
                for group in chunk_paragraphs(section.paragraphs(), MAX_CHUNK_WORDS):
                    doc_id = f"y-d{len(beir.corpus) + 1:05d}"
                    title = parser.page_title
                    beir.corpus.append({"_id": doc_id, "title": title, "text": "\n\n".join(group)})
                    section.chunks.append(doc_id)

    index = IndexParser()
    index.feed((html / "genindex-all.html").read_text(encoding="utf-8"))
    merged: dict[str, list[str]] = {}
    for text, links in index.entries:
        if len(re.findall(r"[A-Za-z]", text)) < 3:
            continue
        if len(links) > MAX_TARGETS:
            continue  # a generic term ("object") the index sends everywhere
        targets = [holder.get(link) for link in links]
        if not all(targets):
            continue  # a target outside the reference and tutorial
        docs = [d for t in targets if t for d in sections[t].chunks]
        if not docs or len(docs) > MAX_RELEVANT:
            continue
        merged.setdefault(text, [])
        merged[text] += [d for d in docs if d not in merged[text]]
    kept = sorted(merged, key=stable_rank)[:MAX_QUERIES]
    order = {d["_id"]: i for i, d in enumerate(beir.corpus)}
    for text in sorted(kept, key=lambda q: (order[merged[q][0]], q)):
        qid = f"y-q{len(beir.queries) + 1:04d}"
        beir.queries.append({"_id": qid, "text": text})
        beir.qrels.extend((qid, d) for d in merged[text])
    return beir
