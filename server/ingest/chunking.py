"""One entry point from a file's bytes to its pieces, per domain and format."""

from __future__ import annotations

from pathlib import PurePosixPath

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece, SkipFile, decode_text
from server.ingest.chunkers.code_common import line_window_pieces
from server.ingest.chunkers.code_python import chunk_python
from server.ingest.chunkers.code_treesitter import LANGUAGES, chunk_treesitter
from server.ingest.chunkers.html import chunk_html, html_to_text
from server.ingest.chunkers.legal import chunk_legal
from server.ingest.chunkers.markdown import chunk_markdown
from server.ingest.chunkers.pdf import chunk_pdf, pdf_pages
from server.ingest.chunkers.text import chunk_plain_text, chunk_rst
from server.ingest.walker import SourceFile
from server.settings import Domain

_BINARY_SNIFF = 8192


def is_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KB mean binary (PDFs are recognised before this check)."""
    return b"\x00" in data[:_BINARY_SNIFF]


def _doc_title(rel_path: str) -> str:
    return PurePosixPath(rel_path).stem.replace("_", " ").replace("-", " ").strip() or rel_path


def chunk_file(
    file: SourceFile, data: bytes, domain: Domain, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Pieces of one file; SkipFile (with the reason) when it cannot be ingested."""
    if file.format == "pdf":
        if not data.startswith(b"%PDF"):
            raise SkipFile("not a PDF (no %PDF header)")
    elif is_binary(data):
        raise SkipFile("binary file")
    title = _doc_title(file.rel_path)
    if domain is Domain.CODE:
        text = decode_text(data)
        language = file.language or "text"
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
            text, language=language, rel_path=file.rel_path, budget=budget,
            overlap_lines=overlap_lines,
        )  # fmt: skip
    if domain is Domain.LEGAL:
        if file.format == "pdf":
            _, pages = pdf_pages(data)
            text = "\n\n".join(pages)
        elif file.format == "html":
            text = html_to_text(decode_text(data))
        else:
            text = decode_text(data)
        return chunk_legal(text, budget, title)
    if file.format == "pdf":
        pieces = chunk_pdf(data, budget, title)
    else:
        text = decode_text(data)
        if file.format == "markdown":
            pieces = chunk_markdown(text, budget, title)
        elif file.format == "rst":
            pieces = chunk_rst(text, budget, title)
        elif file.format == "html":
            pieces = chunk_html(text, budget, title)
        else:
            pieces = chunk_plain_text(text, budget, title)
    for piece in pieces:
        piece.metadata.setdefault("doc_type", file.format)
    return pieces
