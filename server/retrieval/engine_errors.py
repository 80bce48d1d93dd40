"""The engine's failures as one-line store errors that say what to do.

Qdrant Edge raises a bare ``Exception`` ("Service runtime error: ...") for everything: a
truncated or corrupted segment file, a full or read-only file system, a bad request. Raised
through, that is a traceback in the CLI and an internal error in a tool. :func:`engine_errors`
wraps the store's methods so each such failure becomes a :class:`~server.errors.StoreError`
(or :class:`~server.errors.DamagedStoreError`, :class:`~server.errors.DiskFullError`) whose one
line names the collection, the engine's own words (which name the file) and the recovery.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from server.errors import DamagedStoreError, DiskFullError, RetrievalError, StoreError

P = ParamSpec("P")
R = TypeVar("R")

DAMAGE_MARKERS = (
    "not readable",
    "out of bounds",
    "failed to decode",
    "failed to deserialize",
    "failed to load segment",
    "failed to read segment",
    "unexpected end of file",
    "corrupt",
    "checksum",
    "invalid data",
)
"""Words of the engine's messages for files whose content is not what it wrote."""
REPAIR_HINT = (
    "run `retrieval-mcp doctor --repair` to move the collection aside, then ingest its "
    "sources again (or delete the store directory and re-ingest)"
)
"""The documented recovery of a damaged collection (README, reliability section)."""


class _HasRoot(Protocol):
    @property
    def root(self) -> Path: ...


S = TypeVar("S", bound=_HasRoot)


def translate(
    exc: BaseException, root: Path, collection: str, action: str, *, loading: bool = False
) -> StoreError:
    """The one-line store error for an engine failure during ``action`` on ``collection``.

    ``loading``: the failure came from opening a collection whose files exist, which on a
    writable disk with space means they are damaged, whatever the engine's words.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    lower = text.lower()
    where = f"collection {collection!r} in {root}"
    if "no space left" in lower or "disk quota" in lower:
        return DiskFullError(
            f"the disk of the store at {root} is full ({action} {collection!r}: {text}); "
            "free some space and retry"
        )
    if "read-only file system" in lower or "permission denied" in lower:
        return StoreError(
            f"cannot {action} {where}: {text}; the embedded store needs write access to its "
            "directory (make it writable, or copy it to a writable place and set "
            "RETRIEVAL_STORE_PATH)"
        )
    if loading or any(marker in lower for marker in DAMAGE_MARKERS):
        return DamagedStoreError(f"{where} is damaged ({text}); {REPAIR_HINT}")
    return StoreError(f"the store engine failed to {action} {where}: {text}")


def engine_errors(
    method: Callable[Concatenate[S, str, P], R],
) -> Callable[Concatenate[S, str, P], R]:
    """Decorate a store method whose first argument is the collection name (see module doc)."""

    @functools.wraps(method)
    def wrapper(self: S, name: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, name, *args, **kwargs)
        except RetrievalError:
            raise
        except Exception as exc:
            raise translate(exc, self.root, name, method.__name__.replace("_", " ")) from None
        except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
            if type(exc).__name__ != "PanicException":
                raise
            raise translate(exc, self.root, name, method.__name__.replace("_", " ")) from None

    return wrapper
