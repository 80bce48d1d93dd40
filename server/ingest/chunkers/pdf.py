"""PDF: text per page via pypdf; chunks never span pages and carry their 1-based page number."""

from __future__ import annotations

import io
import logging

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece, SkipFile, valid_unicode
from server.ingest.chunkers.text import paragraphs

logging.getLogger("pypdf").setLevel(logging.ERROR)


def pdf_pages(data: bytes) -> tuple[str, list[str]]:
    """(document title from metadata or "", text of each page); corrupt files raise SkipFile."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF")
        title = ""
        try:
            meta = reader.metadata
            title = str(meta.title or "") if meta else ""
        except Exception:  # broken info dictionaries are common and harmless
            title = ""
        pages = [page.extract_text() or "" for page in reader.pages]
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise SkipFile(f"corrupt PDF: {exc}") from None
    except Exception as exc:  # pypdf raises assorted errors on damaged files
        raise SkipFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from None
    if not any(p.strip() for p in pages):
        raise SkipFile("PDF has no extractable text (scanned images?)")
    # a font's text map may name surrogate code points
    return " ".join(valid_unicode(title).split()), [valid_unicode(page) for page in pages]


def chunk_pdf(data: bytes, budget: TokenBudget, doc_title: str) -> list[Piece]:
    """Page-aware chunks; ``page`` and ``heading_path`` in metadata."""
    meta_title, pages = pdf_pages(data)
    title = budget.fit_title(meta_title or doc_title)
    pieces: list[Piece] = []
    for number, page_text in enumerate(pages, start=1):
        page_title = f"{title} (p. {number})"
        for text in budget.pack(paragraphs(page_text), page_title):
            pieces.append(
                Piece(
                    title=page_title,
                    text=text,
                    metadata={"heading_path": [title], "page": number},
                )
            )
    return pieces
