"""Keep indexed folders in sync: file-system events, debounced and batched, feed incremental ingest.

Two threads per :class:`Watcher`:

- the *listener* holds one ``watchfiles`` (Rust ``notify``) watch over every root and adds the
  paths of kept events (watch_filter.py) to the root's pending set; a batch closes when no
  event came for ``step_ms`` or after ``debounce_ms``;
- the *syncer* first catches up (one full incremental run per root with prune: what changed
  while nothing watched), then, whenever paths are pending, takes them all and runs one
  incremental ingest scoped to them (changed files re-chunked, unchanged ones skipped by content
  hash, files proven gone deleted). Events arriving during a run wait for the next one, so a
  burst of thousands of files is a handful of runs, not thousands.

The listener starts before the catch-up, so nothing changed between the two is missed. A rename
is a deletion plus an addition; an editor's atomic save (write a temporary file, rename it over
the original) leaves the temporary path gone and the original changed, which is exactly what
the scoped run finds on disk. A file that vanishes between the walk and the read is a skip (it
is pruned by the run its deletion event triggers). A ``.gitignore`` change re-walks the whole
root. Freshness (freshness.py) is recorded per root after every run: sync time, the git state at
the start of the run, pending count, this process as the watcher, and the last error.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.errors import InvalidRequestError, RetrievalError
from server.ingest.runner import IngestReport, run_ingest
from server.ingest.watch_filter import GITIGNORE, EventFilter
from server.ingest.watch_roots import WatchRoot
from server.retrieval import freshness
from server.retrieval.indexer import Indexer
from server.settings import Domain, Settings, WatchSettings
from server.tenants import validate_tenant

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A batch whose ingest fails this many times in a row is dropped (its error is recorded)."""
_PENDING_WRITE_SECONDS = 0.5
"""At most this often does the listener persist pending counts (a burst is one write)."""


@dataclass
class _RootState:
    root: WatchRoot
    filter: EventFilter
    pending: set[str] = field(default_factory=set)
    rescan: bool = False
    """A .gitignore changed: the next run walks and reads the whole root."""
    in_progress: int = 0
    attempts: int = 0


class Watcher:
    """Watches ``roots`` for one tenant and keeps their index in sync (see the module doc).

    ``indexer``: the write side, or a callable returning it (``serve`` hands one that waits for
    the models). ``on_report`` is called after every run (the CLI prints a summary line).
    ``excluded``: folders whose events are ignored (default: the store).
    """

    def __init__(
        self,
        indexer: Indexer | Callable[[], Indexer],
        roots: Sequence[WatchRoot],
        tenant: str,
        *,
        settings: Settings,
        on_report: Callable[[WatchRoot, IngestReport], None] | None = None,
        excluded: Iterable[Path] | None = None,
    ) -> None:
        validate_tenant(tenant)
        if not roots:
            raise InvalidRequestError("nothing to watch: give at least one folder")
        self.tenant = tenant
        self.settings = settings
        self.options: WatchSettings = settings.watch
        self._indexer_source = indexer
        self._indexer: Indexer | None = indexer if isinstance(indexer, Indexer) else None
        self.on_report = on_report
        skip = list(excluded) if excluded is not None else [settings.store_path]
        self._roots = [_RootState(r, EventFilter(r.path, skip)) for r in _distinct(roots)]
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._caught_up = threading.Event()
        self._listen_error: str | None = None
        self._meta_lock = threading.Lock()
        self._last_pending_write = 0.0
        self._threads: list[threading.Thread] = []
        self.runs = 0
        """Ingest runs so far (catch-up included)."""
        self.errors = 0
        self.kept_paths: deque[str] = deque(maxlen=10_000)
        """The most recent event paths kept (diagnostics: what caused the syncs)."""
        self.dropped_events = 0
        """Events dropped by the filter (ignored, hidden, the store's own writes)."""

    @property
    def roots(self) -> list[WatchRoot]:
        """The watched roots, as resolved."""
        return [state.root for state in self._roots]

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start listening and syncing in background threads; returns once events are being
        received (the catch-up then runs in the background). Raises RetrievalError when the
        folders cannot be watched."""
        listener = threading.Thread(target=self._listen, name="retrieval-mcp-watch", daemon=True)
        syncer = threading.Thread(target=self._sync_loop, name="retrieval-mcp-sync", daemon=True)
        self._threads = [listener, syncer]
        listener.start()
        self._listening.wait()
        if self._listen_error is not None:
            raise RetrievalError(f"cannot watch: {self._listen_error}")
        syncer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop both threads (a run in progress finishes first) and clear the watcher mark."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        if self._indexer is not None:
            for state in self._roots:
                self._write(state, freshness.watcher_fields(False))

    def wait_caught_up(self, timeout: float | None = None) -> bool:
        """True once the catch-up runs finished (tests, the CLI's first message)."""
        return self._caught_up.wait(timeout)

    def pending(self) -> int:
        """Paths seen and not yet ingested, over every root."""
        with self._cond:
            return sum(len(s.pending) + s.in_progress for s in self._roots)

    # -- listener ----------------------------------------------------------------------------------

    def _listen(self) -> None:
        from watchfiles._rust_notify import RustNotify

        paths = [str(state.root.path) for state in self._roots]
        try:
            notify = RustNotify(paths, False, False, 300, True, True)
        except Exception as exc:  # inotify limits, permissions: one readable line
            self._listen_error = str(exc) or type(exc).__name__
            self._listening.set()
            return
        self._listening.set()
        try:
            while not self._stop.is_set():
                raw = notify.watch(self.options.debounce_ms, self.options.step_ms, 1000, self._stop)
                if raw in ("stop", "signal"):
                    break
                if isinstance(raw, set) and raw:
                    self._take_events(path for _change, path in raw)
        except Exception:
            logger.exception("the file watcher stopped")
        finally:
            notify.close()

    def _take_events(self, paths: Iterable[str]) -> None:
        added = False
        with self._cond:
            for path in paths:
                for state in self._roots_of(path):
                    if not state.filter.keeps(path):
                        self.dropped_events += 1
                        continue
                    self.kept_paths.append(path)
                    if Path(path).name == GITIGNORE:
                        state.filter.forget_rules()
                        state.rescan = True
                    state.pending.add(os.path.normpath(path))
                    added = True
            if added:
                self._cond.notify_all()
        if added:
            self._persist_pending()

    def _roots_of(self, path: str) -> list[_RootState]:
        """Every watched root (any domain) holding ``path``."""
        return [
            state
            for state in self._roots
            if path.startswith(state.root.path.as_posix().rstrip("/") + "/")
        ]

    def _persist_pending(self) -> None:
        """Record the pending counts (throttled; the syncer records them after each run)."""
        now = time.monotonic()
        if self._indexer is None or now - self._last_pending_write < _PENDING_WRITE_SECONDS:
            return
        self._last_pending_write = now
        for state in self._roots:
            with self._cond:
                count = len(state.pending) + state.in_progress
            if count:
                self._write(state, {"pending": count})

    # -- syncer ------------------------------------------------------------------------------------

    def _sync_loop(self) -> None:
        try:
            indexer = self._get_indexer()
        except Exception as exc:
            logger.error("watch cannot start syncing: %s", exc)
            self._caught_up.set()
            return
        for state in self._roots:
            self._write(state, freshness.watcher_fields(True))
        for state in self._roots:
            if self._stop.is_set():
                break
            self._run(indexer, state, None)
        self._caught_up.set()
        while not self._stop.is_set():
            with self._cond:
                ready = [s for s in self._roots if s.pending or s.rescan]
                if not ready:
                    self._cond.wait()
                    continue
            for state in ready:
                self._run(indexer, state, self._take(state))

    def _get_indexer(self) -> Indexer:
        if self._indexer is None:
            source = self._indexer_source
            assert callable(source)
            self._indexer = source()
        return self._indexer

    def _take(self, state: _RootState) -> set[str] | None:
        """The pending paths (None: the whole root) moved to "in progress"."""
        with self._cond:
            batch, rescan = state.pending, state.rescan
            state.pending, state.rescan = set(), False
            state.in_progress = max(len(batch), 1 if rescan else 0)
        return None if rescan else batch

    def _run(self, indexer: Indexer, state: _RootState, batch: set[str] | None) -> None:
        """One incremental run over the root (scoped to ``batch`` unless None), recorded."""
        root = state.root
        started = freshness.now_iso()
        git = freshness.git_state(root.path, root.domain, freshness.store_folders(self.settings))
        try:
            report = run_ingest(
                indexer,
                [root.path],
                domain=root.domain,
                tenant=self.tenant,
                prune=True,
                progress=False,
                scope=batch,
            )
        except Exception as exc:
            self._failed(state, batch, exc)
            return
        self.runs += 1
        state.attempts = 0
        with self._cond:
            state.in_progress = 0
            left = len(state.pending)
        self._write(state, freshness.sync_fields(started, git, pending=left))
        logger.info("%s", _summary(root, report))
        for line in _skip_lines(report):
            logger.info("%s", line)
        if self.on_report is not None:
            self.on_report(root, report)

    def _failed(self, state: _RootState, batch: set[str] | None, exc: Exception) -> None:
        self.errors += 1
        state.attempts += 1
        reason = str(exc) if isinstance(exc, RetrievalError) else f"{type(exc).__name__}: {exc}"
        final = isinstance(exc, InvalidRequestError) or state.attempts >= MAX_ATTEMPTS
        if not isinstance(exc, RetrievalError):
            logger.exception("syncing %s failed", state.root.path)
        else:
            logger.error("syncing %s failed: %s", state.root.path, reason)
        with self._cond:
            state.in_progress = 0
            if not final:  # retried with whatever arrived meanwhile
                if batch is None:
                    state.rescan = True
                else:
                    state.pending |= batch
            else:
                state.attempts = 0
            left = len(state.pending)
        self._write(state, {"error": reason, "pending": left})
        if not final:
            self._stop.wait(self.settings.watch.retry_seconds)

    def _write(self, state: _RootState, fields: dict[str, Any]) -> None:
        """Persist fields of the root's freshness record; a failure is logged, not raised."""
        indexer = self._indexer
        if indexer is None:
            return
        with self._meta_lock:
            try:
                collection = indexer.settings.domains[state.root.domain].collection
                if not indexer.store.has_collection(collection):
                    freshness.ensure_collection(
                        indexer.store,
                        indexer.settings,
                        state.root.domain,
                        indexer.embedder.dimension,
                    )
                freshness.update_root(
                    indexer.store, collection, self.tenant, state.root.path, fields
                )
            except Exception:
                logger.exception("recording the freshness of %s failed", state.root.path)


def _distinct(roots: Sequence[WatchRoot]) -> list[WatchRoot]:
    seen: dict[tuple[Path, Domain], WatchRoot] = {}
    for root in roots:
        seen.setdefault((root.path, root.domain), root)
    return list(seen.values())


SKIPS_LOGGED = 25
"""Skips named per sync in the log (the count covers all of them)."""


def _skip_lines(report: IngestReport) -> list[str]:
    """The sync's skips, each with its path and reason, errors and links first (every skip
    has a reason a user can act on; the summary line only counts them)."""
    ordered = sorted(report.skipped, key=lambda skip: skip.kind == "file")
    lines = [f"  skipped {skip.path}: {skip.reason}" for skip in ordered[:SKIPS_LOGGED]]
    if len(ordered) > SKIPS_LOGGED:
        lines.append(f"  ... and {len(ordered) - SKIPS_LOGGED} more skipped")
    lines += [f"  kept (not found, not proven gone) {source}" for source in report.kept]
    lines += [f"  relinked {source}" for source in report.relinked]
    return lines


def _summary(root: WatchRoot, report: IngestReport) -> str:
    """One line per run: what changed."""
    parts = [
        f"{len(report.added)} added",
        f"{len(report.updated)} updated",
        f"{len(report.deleted)} deleted",
    ]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    return f"synced {root.path} ({root.domain.value}): {', '.join(parts)} in {report.seconds:.2f}s"
