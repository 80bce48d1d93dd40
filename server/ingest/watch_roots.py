"""What ``watch`` and ``serve --watch`` watch: folders and their domains, checked up front.

A light module (no models, no parsers): ``serve`` validates its ``--watch`` arguments with it
before the protocol starts and imports the watcher itself in the background.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from server.errors import InvalidRequestError
from server.settings import Domain


@dataclass(frozen=True)
class WatchRoot:
    """One watched folder and the domain it is indexed into."""

    path: Path
    domain: Domain

    @classmethod
    def of(cls, path: Path | str, domain: Domain | str) -> WatchRoot:
        """A root from user input: the folder must exist; stored resolved (as sources are).

        Raises InvalidRequestError (missing path, not a folder, unknown domain).
        """
        try:
            name = Domain(domain)
        except ValueError:
            valid = ", ".join(d.value for d in Domain)
            raise InvalidRequestError(
                f"unknown domain {domain!r}; expected one of: {valid}"
            ) from None
        raw = Path(path).expanduser()
        try:
            if not raw.is_dir():
                what = "not a folder" if raw.exists() else "no such folder"
                raise InvalidRequestError(f"cannot watch {path}: {what}")
        except OSError as exc:  # a folder on its path cannot be entered
            raise InvalidRequestError(f"cannot watch {path}: {exc.strerror or exc}") from None
        return cls(Path(os.path.realpath(raw)), name)

    @classmethod
    def parse(cls, spec: str) -> WatchRoot:
        """``PATH:DOMAIN`` (``serve --watch``); the last colon separates the domain."""
        path, sep, domain = spec.rpartition(":")
        if not sep or not path:
            raise InvalidRequestError(f"--watch takes PATH:DOMAIN (e.g. ./docs:docs), got {spec!r}")
        return cls.of(path, domain)
