"""Which file-system events a watcher keeps: the walk's own rules, applied to one path.

An event is dropped when a walk of the root would never take its path: outside the root,
hidden (any component starting with ``.``: ``.git``, editors' swap files), under an
always-ignored folder (``node_modules``, ``__pycache__``), ``.gitignore``'d (the root's own
``.gitignore`` files and those above it up to the repository root, as the walk applies them),
or under an excluded folder (the store, which may live inside the watched root: its own writes
must never trigger a sync). A ``.gitignore`` itself is kept: editing one changes what the
walk takes, so the watcher re-walks the whole root (and the cached rules are dropped).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import pathspec

from server.ingest.walker import ALWAYS_IGNORED_DIRS, gitignore_spec, repo_folders_above

GITIGNORE = ".gitignore"


class EventFilter:
    """The keep/drop decision for event paths under one watched root (thread-safe)."""

    def __init__(self, root: Path, excluded: Iterable[Path] = ()) -> None:
        self.root = root
        self.excluded = [Path(os.path.realpath(p)) for p in excluded]
        self._above = repo_folders_above(root)
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}
        self._lock = threading.Lock()

    def forget_rules(self) -> None:
        """Drop the cached ``.gitignore`` rules (one of them changed)."""
        with self._lock:
            self._specs.clear()

    def _spec(self, folder: Path) -> pathspec.GitIgnoreSpec | None:
        with self._lock:
            if folder not in self._specs:
                self._specs[folder] = gitignore_spec(folder)
            return self._specs[folder]

    def keeps(self, path: str) -> bool:
        """True when a walk of the root could take ``path`` (or when it is a ``.gitignore``
        the walk reads). A path that no longer exists counts as ignored when it would be as
        a file or as a folder (a deleted ignored folder leaves no trace to tell which)."""
        target = Path(path)
        if target == self.root or not target.is_relative_to(self.root):
            return False
        if any(target == e or target.is_relative_to(e) for e in self.excluded):
            return False
        parts = target.relative_to(self.root).parts
        if target.name == GITIGNORE:
            parts = parts[:-1]
        elif any(part.startswith(".") for part in parts):
            return False
        if any(part in ALWAYS_IGNORED_DIRS for part in parts):
            return False
        if target.name == GITIGNORE:
            return not self._ignored_folder(target.parent)
        exists = os.path.lexists(target)
        kinds = (os.path.isdir(target) and not os.path.islink(target),) if exists else (False, True)
        if self._ignored_folder(target.parent):
            return False
        return not any(self._ignored(target, is_dir) for is_dir in kinds)

    def _ignored_folder(self, folder: Path) -> bool:
        """True when ``folder`` or a folder between it and the root is ignored."""
        chain = [folder, *folder.parents]
        below_root = [f for f in chain if f != self.root and f.is_relative_to(self.root)]
        return any(self._ignored(f, is_dir=True) for f in reversed(below_root))

    def _ignored(self, path: Path, is_dir: bool) -> bool:
        """The walk's test: any ``.gitignore`` of a folder above ``path`` (within the
        repository, or the root and below outside one) matches it."""
        folders = [*self._above, self.root]
        folders += [f for f in reversed(path.parents) if f.is_relative_to(self.root)]
        seen: set[Path] = set()
        for base in folders:
            if base in seen or base == path or not path.is_relative_to(base):
                continue
            seen.add(base)
            spec = self._spec(base)
            if spec is None:
                continue
            rel = path.relative_to(base).as_posix()
            if spec.match_file(rel + "/" if is_dir else rel):
                return True
        return False
