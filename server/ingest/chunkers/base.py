"""What every chunker returns, how a file is refused, and how its bytes become text."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from typing import Any

from server.ingest.budget import MAX_LABEL_CHARS, cut_label


class SkipFile(Exception):
    """The file cannot be ingested; the message is the skip reason shown to the user."""


@dataclass
class Piece:
    """One chunk before it gets an identity: the embedded title, the text, domain metadata."""

    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def bound_labels(pieces: list[Piece]) -> list[Piece]:
    """``pieces`` with every string of their metadata, and every string in a list there, cut to
    :data:`MAX_LABEL_CHARS` characters (budget.cut_label).

    For what a chunker derives from the text (signature, symbol, heading and section paths):
    the text holds it whole, and a hit carries its metadata outside the output budget. Fields an
    author declares (front matter) are added after this and bounded where they are read.
    """
    for piece in pieces:
        for key, value in piece.metadata.items():
            if isinstance(value, str) and len(value) > MAX_LABEL_CHARS:
                piece.metadata[key] = cut_label(value)
            elif isinstance(value, list):
                piece.metadata[key] = [
                    cut_label(item) if isinstance(item, str) else item for item in value
                ]
    return pieces


# UTF-32 first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
_SNIFF_BYTES = 8192
_MIN_NUL_SHARE = 0.3
"""BOM-less UTF-16 needs a NUL in at least this share of its first code units (Latin text has
one in every unit); binary files have NULs at both byte parities and fail the other checks."""
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffe\uffff]")
"""Characters text files do not contain (tab, newline, form feed and carriage return are fine)."""


def bom_encoding(data: bytes) -> tuple[str, int, str] | None:
    """(Python codec, BOM length in bytes, display name) when ``data`` opens with a byte-order
    mark of UTF-8, UTF-16 or UTF-32 (either byte order); None otherwise."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            return codec, len(bom), name
    return None


def utf16_without_bom(data: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` when ``data`` is UTF-16 text written without a BOM.

    Accepted only when every check holds: an even length; in the first 8 KB, NUL bytes at one
    byte parity only, in at least 30 % of the code units (ASCII-range text in UTF-16 has a NUL
    in every unit); a strict decode of the whole file; and no control characters besides tab,
    line feed, form feed and carriage return in the decoded text. CJK-only text without a BOM
    has no NULs and is not recognised (there is no reliable signal without statistics).
    """
    if len(data) < 2 or len(data) % 2:
        return None
    sample = data[: _SNIFF_BYTES - _SNIFF_BYTES % 2]
    units = len(sample) // 2
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if even and odd:
        return None
    if odd >= _MIN_NUL_SHARE * units:
        codec = "utf-16-le"
    elif even >= _MIN_NUL_SHARE * units:
        codec = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else codec


_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)"""
    rb"""|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""",
    re.IGNORECASE,
)


def declared_charset(data: bytes) -> str | None:
    """The Python codec an HTML or XML file declares for itself in its first 1024 bytes
    (``<meta charset=...>``, ``<meta http-equiv=... content="...; charset=...">``, or
    ``<?xml ... encoding=...?>``; the HTML standard's prescan window), or None when it declares
    none or one Python does not know."""
    match = _DECLARED_CHARSET.search(data[:1024])
    if match is None:
        return None
    name = (match.group(1) or match.group(2)).decode("ascii")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(text: str) -> str:
    """``text`` with its surrogate code points made characters: a pair joined (``\\ud83d\\ude00``
    as YAML, which does not join them, reads it -> 😀), an unpaired one replaced by U+FFFD.

    Decoding a file's bytes never yields them, but the escapes of the formats parsed after it
    do (YAML and JSON strings: front matter, notebooks; a PDF's text map), and the tokenizer,
    the store and the protocol all refuse them: the file was skipped with a TypeError."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def valid_unicode_in(value: Any) -> Any:
    """:func:`valid_unicode` on every string in ``value`` (dict keys, list items)."""
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, dict):
        return {
            valid_unicode(k) if isinstance(k, str) else k: valid_unicode_in(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [valid_unicode_in(v) for v in value]
    return value


def decode_text(data: bytes, declared: str | None = None) -> str:
    """The text of a file's bytes, with ``\\r\\n`` and ``\\r`` line ends turned into ``\\n``.

    A UTF-8, UTF-16 or UTF-32 byte-order mark selects that encoding (the mark is dropped);
    BOM-less UTF-16 is recognised by :func:`utf16_without_bom`; anything else must be UTF-8,
    or else decode strictly in the encoding the file ``declared`` for itself (HTML's charset:
    :func:`declared_charset`). Raises SkipFile naming the encoding and byte offset when the
    bytes do not decode. Undeclared legacy 8-bit encodings (cp1252, latin-1) are not guessed:
    detectors pick a wrong code page for short Western European texts, and silent mojibake is
    worse than a skip reason.
    """
    found = bom_encoding(data)
    if found is not None:
        codec, skip, name = found
        try:
            text = data[skip:].decode(codec)
        except UnicodeDecodeError as exc:
            raise SkipFile(f"invalid {name} at byte {skip + exc.start}") from None
    elif (utf16 := utf16_without_bom(data)) is not None:
        text = data.decode(utf16)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if declared is None or declared == "utf-8":
                bad = data[exc.start : exc.start + 1].hex()
                raise SkipFile(
                    f"invalid UTF-8 at byte {exc.start} (0x{bad}): not UTF-8 and no byte-order "
                    "mark; legacy encodings such as cp1252 are not guessed, save the file as UTF-8"
                    + _utf16_hint(data)
                ) from None
            text = _decode_declared(data, declared)
    return text.replace("\r\n", "\n").replace("\r", "\n")


_UTF16_SIGNS = re.compile("[\n\t\u3000-\u303f\uff00-\uffef]")
"""Characters CJK text holds and 8-bit text read as UTF-16 almost never yields: a line break or
tab (a NUL byte beside it), CJK punctuation (``。``) or full-width forms (``，``)."""


def _utf16_hint(data: bytes) -> str:
    """A note for a file that is not UTF-8 but reads cleanly as UTF-16 of one byte order with
    CJK punctuation or line breaks in it (CJK text without a byte-order mark and without
    ASCII has too few NUL bytes to be recognised by them)."""
    if len(data) % 2:
        return ""
    for codec in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        if not _CONTROL.search(text) and _UTF16_SIGNS.search(text):
            return " (it may be UTF-16 without a byte-order mark: save it with one, or as UTF-8)"
    return ""


def _decode_declared(data: bytes, codec: str) -> str:
    """``data`` in the encoding its file declared (it is not valid UTF-8); SkipFile when it
    does not decode in that either."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        raise SkipFile(
            f"invalid {codec} at byte {exc.start}: the file declares {codec} and is not UTF-8"
        ) from None


_BINARY_SNIFF = 8192


def binary_reason(data: bytes) -> str:
    """Why a file :func:`is_binary` is skipped: NUL bytes at one byte parity only may be UTF-16
    text without a byte-order mark whose characters are mostly outside ASCII (CJK), which has
    too few NULs to be told from binary data; the reason says how to make it readable."""
    sample = data[:_BINARY_SNIFF]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if bool(even) != bool(odd) and len(data) % 2 == 0:
        return (
            "binary file, or UTF-16 text without a byte-order mark (not recognised without "
            "one when most characters are outside ASCII): save it as UTF-8 or UTF-16 with a BOM"
        )
    return "binary file"


def is_binary(data: bytes) -> bool:
    """NUL bytes in the first 8 KB mean binary, unless the data opens with a UTF-8/16/32
    byte-order mark or is BOM-less UTF-16 text (PDFs are recognised before this check)."""
    if bom_encoding(data) is not None or b"\x00" not in data[:_BINARY_SNIFF]:
        return False
    return utf16_without_bom(data) is None
