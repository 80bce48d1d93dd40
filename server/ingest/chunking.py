"""One entry point from a file's bytes to its pieces, per domain and format.

THE INVARIANT every chunker keeps: the chunk texts, concatenated in order, contain every
non-whitespace character of the file's *extracted text* in order (a subsequence check on the
non-whitespace characters; overlap between chunks is allowed). Nothing is ever dropped
silently: a file that cannot be chunked raises SkipFile with the reason. Every chunk fits the
budget (TokenBudget.fits, title included), and a code chunk's ``start_line``..``end_line`` are
the source lines its text comes from.

Extracted text, per format:

* code (every language): the decoded text (decode_text); a Jupyter notebook: its script
  (chunkers/notebook.py notebook_script), whose lines ``start_line``..``end_line`` are.
* docs notebook: its Markdown rendering (chunkers/notebook.py).
* docs Markdown and plain text: the decoded text minus its front matter (read_front_matter):
  Markdown is kept as written, headings and markup included.
* docs reStructuredText: the decoded text (section titles with their adornment lines).
* docs HTML: the visible text, headings included (html_to_text).
* PDF (docs and legal): the text pypdf extracts from each page (pdf_pages); chunks never span
  pages.
* legal text and Markdown: strip_layout of the decoded text minus its front matter; legal HTML:
  strip_layout of html_to_text; legal PDF: strip_layout of the pages' text. Layout (rule lines
  such as ``=====`` and the ``*`` frame of asterisk boxes) is not text.

Headings are text: a heading opens its section's first chunk; a heading with no text of its
own opens the next chunk instead of standing alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import (
    Piece,
    SkipFile,
    binary_reason,
    bound_labels,
    declared_charset,
    decode_text,
    is_binary,
)
from server.ingest.chunkers.code_common import line_window_pieces
from server.ingest.chunkers.code_python import chunk_python
from server.ingest.chunkers.code_treesitter import LANGUAGES, chunk_treesitter
from server.ingest.chunkers.front_matter import (
    FRONT_MATTER_FORMATS,
    FrontMatter,
    read_front_matter,
    unread_front_matter,
)
from server.ingest.chunkers.html import chunk_html, html_to_text
from server.ingest.chunkers.legal import chunk_legal, legal_doc_type, strip_layout
from server.ingest.chunkers.markdown import chunk_markdown
from server.ingest.chunkers.notebook import notebook_markdown, notebook_script, read_notebook
from server.ingest.chunkers.pdf import chunk_pdf, pdf_pages
from server.ingest.chunkers.text import chunk_paragraphs, chunk_plain_text, chunk_rst
from server.ingest.walker import SourceFile
from server.settings import Domain

DECLARABLE: dict[Domain, dict[str, Callable[[str], str | None]]] = {
    Domain.DOCS: {},  # doc_type is the file format: front matter cannot change it
    Domain.LEGAL: {"doc_type": legal_doc_type, "jurisdiction": lambda value: value.strip()},
    Domain.CODE: {},  # code has no front matter
}
"""Filter fields (chunk_record.FILTER_FIELDS) front matter may set besides ``tags``, each with
the reading of a declared value (None: not a value of that field, so it stays under
``front_matter``): the author's word beats what the chunker detects and becomes filterable
(``doc_type: Agreement`` is the filter's ``contract``)."""


def _doc_title(rel_path: str) -> str:
    return PurePosixPath(rel_path).stem.replace("_", " ").replace("-", " ").strip() or rel_path


def _chunk_notebook_code(
    file: SourceFile, data: bytes, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    notebook = read_notebook(decode_text(data))
    if not any(cell.source.strip() for cell in notebook.cells):
        return []
    script, cell_of_line = notebook_script(notebook)
    pieces = _chunk_code_text(script, notebook.language, file, budget, overlap_lines)
    for piece in pieces:
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        # the cells its lines come from (a chunk never holds only the blank line between two)
        cells = [cell for cell in cell_of_line[start - 1 : end] if cell]
        piece.metadata["cell_start"], piece.metadata["cell_end"] = min(cells), max(cells)
    return pieces


def _chunk_code(
    file: SourceFile, data: bytes, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    if file.format == "notebook":
        return _chunk_notebook_code(file, data, budget, overlap_lines)
    return _chunk_code_text(decode_text(data), file.language or "text", file, budget, overlap_lines)


def _chunk_code_text(
    text: str, language: str, file: SourceFile, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    if language == "python":
        return chunk_python(
            text, rel_path=file.rel_path, budget=budget, overlap_lines=overlap_lines
        )
    if language in LANGUAGES:
        return chunk_treesitter(
            text,
            language=language,
            rel_path=file.rel_path,
            budget=budget,
            overlap_lines=overlap_lines,
        )
    return line_window_pieces(
        text, language=language, rel_path=file.rel_path, budget=budget, overlap_lines=overlap_lines
    )


CHUNKER_VERSIONS: dict[tuple[Domain, str], int] = {
    (Domain.LEGAL, "text"): 2,
    (Domain.LEGAL, "markdown"): 2,
    (Domain.LEGAL, "html"): 2,
    (Domain.LEGAL, "pdf"): 2,
    (Domain.DOCS, "text"): 2,
    (Domain.CODE, "rust"): 2,
}
"""Raised when a domain's chunks of a format's same bytes change, so a re-run re-chunks the
files an older version cut (their bytes, hence their hashes, are unchanged); 1 where not
listed. Legal 2 (2026-12): clauses of Markdown contracts, labels at the start of wrapped lines,
CJK articles, schedules, title blocks, packed sub-clauses found by a section filter, the
chunk's own citation as BM25 terms. Docs text 2: underlined titles section a plain-text
file. Code is versioned per language (Rust 2: generic arguments are no part of a name).
Points written before versions were recorded count as version 1."""


def chunker_version(domain: Domain, fmt: str) -> int:
    """The version of the chunker that cuts ``fmt`` files in ``domain`` (for code, ``fmt`` is
    the language)."""
    return CHUNKER_VERSIONS.get((domain, fmt), 1)


def chunking_key(domain: Domain, fmt: str, budget: TokenBudget, overlap_lines: int) -> str:
    """What cuts a file into chunks, as stored in each chunk's ``chunking``: the chunker
    version and the budget (``legal/text/v2/256+0``; code adds its overlap lines)."""
    version = chunker_version(domain, fmt)
    key = f"{domain.value}/{fmt}/v{version}/{budget.max_tokens}+{budget.overlap_tokens}"
    return f"{key}/{overlap_lines}l" if domain is Domain.CODE else key


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_WORD = re.compile(r"\w")


def _has_words(text: str) -> bool:
    """Whether ``text`` holds a word outside HTML comments."""
    return _WORD.search(_HTML_COMMENT.sub("", text)) is not None


def _unread_front_matter_pieces(
    block: str, pieces: list[Piece], domain: Domain, budget: TokenBudget, title: str
) -> list[Piece]:
    """Pieces of a block that was meant as front matter but not read as such, as plain
    paragraphs under the document's title (what its first chunk names first, as listings read
    it; else the file's ``title``), ahead of the document's ``pieces``: in no section
    (``heading_path`` empty; legal: ``section_path`` and ``section`` empty, the layout stripped,
    the document's ``doc_type`` and ``jurisdiction``)."""
    if pieces and pieces[0].title:
        title = pieces[0].title.split(" > ", 1)[0]
    # paragraphs only: a short last line over the closing `---` is no underlined title
    if domain is not Domain.LEGAL:
        return chunk_paragraphs(block, budget, title)
    lead = chunk_paragraphs(strip_layout(block), budget, title)
    document = {k: v for k, v in (pieces[0].metadata if pieces else {}).items() if k in _PER_DOC}
    for piece in lead:
        piece.metadata = {"doc_type": "other", **document, "section_path": "", "section": ""}
    return lead


_PER_DOC = ("doc_type", "jurisdiction")
"""What a legal chunk says about its whole document (chunkers/legal.py)."""


def chunk_file(
    file: SourceFile, data: bytes, domain: Domain, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Pieces of one file; SkipFile (with the reason) when it cannot be ingested.

    Markdown and plain-text files in the docs and legal domains may open with front matter:
    its ``title`` is the document title, its ``tags`` and other keys go into every piece's
    metadata (``tags``, ``front_matter``).
    """
    if file.format == "pdf":
        if not data.startswith(b"%PDF"):
            raise SkipFile("not a PDF (no %PDF header)")
    elif is_binary(data):
        raise SkipFile(binary_reason(data))
    if domain is Domain.CODE:
        return bound_labels(_chunk_code(file, data, budget, overlap_lines))
    title = _doc_title(file.rel_path)
    extra: dict[str, Any] = {}
    given: str | None = None
    text = ""
    if file.format != "pdf":
        # an HTML file may declare its encoding (<meta charset>): used when it is not UTF-8
        text = decode_text(data, declared_charset(data) if file.format == "html" else None)
    if file.format == "notebook":  # docs only (the walk gives legal no notebooks)
        notebook = read_notebook(text)
        text = notebook_markdown(notebook)
    unread = ""  # a block meant as front matter but not read as such: kept as plain text
    front: FrontMatter | None = None
    if file.format in FRONT_MATTER_FORMATS:
        front, text = read_front_matter(text)
        if front is not None:
            extra = front.metadata(declarable=DECLARABLE[domain])
            given = front.title
        elif end := unread_front_matter(text):
            unread, text = text[:end], text[end:]
    if domain is Domain.LEGAL:
        if file.format == "pdf":
            _, pages = pdf_pages(data)
            text = "\n\n".join(pages)
        elif file.format == "html":
            text = html_to_text(text)
        pieces = chunk_legal(text, budget, given or title, title_given=given is not None)
    elif file.format == "pdf":
        pieces = chunk_pdf(data, budget, title)
    elif file.format in ("markdown", "notebook"):
        pieces = chunk_markdown(text, budget, given or title, title_given=given is not None)
    elif file.format == "rst":
        pieces = chunk_rst(text, budget, title)
    elif file.format == "html":
        pieces = chunk_html(text, budget, title)
    else:
        pieces = chunk_plain_text(text, budget, given or title, title_given=given is not None)
    if unread:
        pieces = _unread_front_matter_pieces(unread, pieces, domain, budget, title) + pieces
    if front is not None and not _has_words(text):  # a page of front matter only (Hugo's
        # _index.md; a body of markup alone, `<!--more-->` or a bare `#`, says nothing)
        pieces = chunk_paragraphs(front.summary(), budget, given or title)
    for piece in bound_labels(pieces):
        piece.metadata.update(extra)
        if domain is not Domain.LEGAL:
            piece.metadata.setdefault("doc_type", file.format)
    return pieces
