"""Typed errors with messages meant for people and agents (no tracebacks needed)."""

from __future__ import annotations


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
