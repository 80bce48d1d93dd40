"""Human-readable citations per domain, built from the payload conventions of ingestion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.settings import Domain


def _path(source: str, metadata: Mapping[str, Any]) -> str:
    rel = metadata.get("rel_path")
    return rel if isinstance(rel, str) and rel else source


def _docs(source: str, title: str, metadata: Mapping[str, Any]) -> str:
    path = _path(source, metadata)
    page = metadata.get("page")
    heading = metadata.get("heading_path")
    parts = [path]
    if isinstance(page, int) and not isinstance(page, bool):
        parts.append(f", p. {page}")
    if isinstance(heading, list) and heading:
        parts.append(" > " + " > ".join(str(h) for h in heading))
    elif title and not isinstance(page, int):
        parts.append(f" > {title}")
    return "".join(parts)


def _legal(source: str, title: str, metadata: Mapping[str, Any]) -> str:
    document = _path(source, metadata)
    section = metadata.get("section_path") or metadata.get("section")
    return f"{document}, {section}" if section else document


def _code(source: str, title: str, metadata: Mapping[str, Any]) -> str:
    path = _path(source, metadata)
    start, end = metadata.get("start_line"), metadata.get("end_line")
    location = f"{path}:{start}-{end}" if isinstance(start, int) and isinstance(end, int) else path
    symbol = metadata.get("symbol")
    cited = f"{location} ({symbol})" if symbol else location
    part, parts = metadata.get("part"), metadata.get("parts")
    if isinstance(part, int) and isinstance(parts, int):  # a window of one over-long line
        cited += f", part {part}/{parts}"
    return cited


def citation(domain: Domain, source: str, title: str, metadata: Mapping[str, Any]) -> str:
    """``docs/a.md > Setup > Linux``, ``contract.pdf, 12 > 12.3``, ``src/x.py:10-42 (X.run)``."""
    if domain is Domain.DOCS:
        return _docs(source, title, metadata)
    if domain is Domain.LEGAL:
        return _legal(source, title, metadata)
    return _code(source, title, metadata)
