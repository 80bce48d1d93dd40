"""What every chunker returns, and how a file is refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class SkipFile(Exception):
    """The file cannot be ingested; the message is the skip reason shown to the user."""


@dataclass
class Piece:
    """One chunk before it gets an identity: the embedded title, the text, domain metadata."""

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def decode_text(data: bytes) -> str:
    """UTF-8 text (BOM tolerated); invalid UTF-8 is a skip reason, not a crash."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"invalid UTF-8 at byte {exc.start}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")
