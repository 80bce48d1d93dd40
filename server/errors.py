"""Typed errors with messages meant for people and agents (no tracebacks needed)."""

from __future__ import annotations

NOT_UNICODE_HINT = "half of a UTF-16 pair, e.g. an emoji cut in two, or bytes that are not UTF-8"
"""Why text may hold an unpaired surrogate, for messages saying it does."""


def not_unicode_message(where: str, problem: str) -> str:
    """The one-line message for text at ``where`` that is not valid Unicode
    (``problem``: :func:`unicode_problem`'s description)."""
    return f"{where} is not valid Unicode text: {problem} ({NOT_UNICODE_HINT})"


def unicode_problem(text: str) -> str | None:
    """Where ``text`` is not valid Unicode (an unpaired surrogate: JSON may carry one as
    ``"\\ud83d"``, and Python reads command-line bytes that are not UTF-8 as such), or None.

    Such text cannot be written back as UTF-8: a reply quoting it could not be sent at all.
    The description never quotes the character itself."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        # U+DC80..U+DCFF is how Python reads a byte that is not UTF-8 (surrogateescape)
        byte = f", how Python reads the byte 0x{code - 0xDC00:02X}" if code >= 0xDC80 else ""
        return f"an unpaired surrogate (U+{code:04X}{byte}) at character {exc.start + 1}"
    return None


class RetrievalError(Exception):
    """Base class: the message says what went wrong and what to do."""


class InvalidRequestError(RetrievalError, ValueError):
    """Bad input: empty or oversized query, top_k out of range, unknown domain, no tenant."""


class StoreError(RetrievalError):
    """The vector store cannot be opened or used."""


class StoreLockedError(StoreError):
    """The embedded store is held by another process."""


class NotFoundError(RetrievalError, LookupError):
    """An id or source that does not exist for this tenant."""


class DiskFullError(StoreError):
    """A write refused because the store's file system has less free space than it needs."""


class DamagedStoreError(StoreError):
    """A collection's files are truncated or corrupted (the message names them and the fix)."""
