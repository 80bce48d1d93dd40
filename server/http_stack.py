"""The event loop and HTTP parser uvicorn serves the HTTP transports with.

Under many clients the server is bound by CPU per call, and a good part of a small call's CPU
is the HTTP layer: asyncio's event loop and h11, a pure-Python HTTP/1.1 parser. uvloop (libuv)
and httptools (llhttp) do the same work in C: at 4 clients calling list_sources the server
spent 2.3-2.9 ms of CPU per call instead of 2.8-3.6 ms, with a third more calls/s.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

from server.settings import ConcurrencySettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpStack:
    """uvicorn's ``loop`` and ``http`` options, and how the log line names them."""

    loop: str
    http: str

    def describe(self) -> str:
        return f"{self.loop} + {self.http}"


FAST = HttpStack("uvloop", "httptools")
STOCK = HttpStack("asyncio", "h11")


def http_stack(settings: ConcurrencySettings) -> HttpStack:
    """:data:`FAST` when ``settings.fast_http`` (the default) and both are installed; else
    :data:`STOCK` (with a warning when they were asked for and one is missing)."""
    if not settings.fast_http:
        return STOCK
    missing = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name) is None]
    if missing:
        logger.warning(
            "%s not installed: serving HTTP on asyncio + h11 (more CPU per call)",
            " and ".join(missing),
        )
        return STOCK
    return FAST
