"""Resource URIs of stored chunks and sources: ``retrieval://<domain>/chunks/<id>`` and
``retrieval://<domain>/sources/<path>``.

Every hit, chunk view and copy carries its chunk's URI; the MCP server serves both kinds as
resources for the caller's tenant (server/resources.py). A URI names an index entry, never a
file on disk: the source path is one percent-encoded segment (RFC 6570 simple expansion, as
the resource templates below expand and match it), so ``/`` inside it is ``%2F``.
"""

from __future__ import annotations

from urllib.parse import quote

from server.settings import Domain

SCHEME = "retrieval"
CHUNK_TEMPLATE = SCHEME + "://{domain}/chunks/{id}{?neighbors}"
"""A chunk with ``neighbors`` chunks either side (default 1), as text."""
CHUNK_JSON_TEMPLATE = SCHEME + "://{domain}/chunks/{id}/json{?neighbors}"
"""The same window as JSON (the get_chunk result)."""
SOURCE_TEMPLATE = SCHEME + "://{domain}/sources/{path}{?start}"
"""A whole source in reading order, chunk by chunk from chunk ``start`` (default 0)."""


def _segment(value: str) -> str:
    """``value`` as one URI segment: every character but ``A-Z a-z 0-9 - . _ ~``
    percent-encoded (UTF-8), as RFC 6570 simple expansion does."""
    return quote(value, safe="")


def chunk_uri(domain: Domain, chunk_id: str) -> str:
    """``retrieval://docs/chunks/0b9c...``: the chunk as a resource."""
    return f"{SCHEME}://{domain.value}/chunks/{_segment(chunk_id)}"


def source_uri(domain: Domain, source: str) -> str:
    """``retrieval://docs/sources/%2Fsrv%2Fdocs%2Fa.md``: the whole source as a resource."""
    return f"{SCHEME}://{domain.value}/sources/{_segment(source)}"
