"""The ingest job: discover, skip what is unchanged, chunk, embed in batches, replace, prune.

Order of writes for a changed source: its new chunks overwrite ids ``0..n-1`` first, then chunk
indexes ``>= n`` left from the old version are deleted. A run killed at any point leaves every
source either complete (old or new version) or visibly incomplete (mixed hashes or a count that
disagrees with ``chunk_count``), and the next run redoes exactly the incomplete ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from server.errors import InvalidRequestError
from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece, SkipFile
from server.ingest.chunking import chunk_file, chunker_version, chunking_key
from server.ingest.manifest import SourceState, load_manifest
from server.ingest.source_io import SkipKind, UnreadableSource, read_source
from server.ingest.walker import Discovery, SourceFile, discover, under_roots
from server.progress_bar import ProgressBar
from server.retrieval import freshness
from server.retrieval.analysis import resolve_domain
from server.retrieval.chunk_record import (
    CHUNK_COUNT,
    CHUNK_INDEX,
    CHUNKING,
    CONTENT_HASH,
    DOC_TYPE,
    INGESTED_AT,
    REL_PATH,
    SOURCE,
)
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.filter_fields import normalize_path
from server.retrieval.indexer import Indexer
from server.retrieval.types import Chunk, FilterValue
from server.settings import Domain, IngestSettings
from server.shutdown import raise_if_terminated
from server.tenants import validate_tenant

logger = logging.getLogger(__name__)

_SPECIAL_TOKENS = 2
"""[CLS] and [SEP]: the model window minus these is what text may use."""


class SkippedFile(BaseModel):
    """An entry that was not ingested, and why."""

    path: str = Field(description="As walked: a link's own path, not its target's.")
    reason: str
    kind: SkipKind = Field(
        default="file",
        description="error: the file system refused (cannot list or read, vanished, replaced); "
        "link: a symbolic or hard link, not followed; file: a decision about a readable file.",
    )


class IngestReport(BaseModel):
    """What one ingest run did (or, with dry_run, would do)."""

    domain: str
    tenant: str
    dry_run: bool = False
    added: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = Field(
        default_factory=list,
        description="Sources whose chunks were removed: pruned (--prune), or found but now "
        "skipped for what they hold (re-saved in another encoding, too large, emptied: their "
        "skip says so), whose chunks held an older version.",
    )
    gone: list[str] = Field(
        default_factory=list, description="Sources no longer on disk, kept (no --prune)."
    )
    kept: list[str] = Field(
        default_factory=list,
        description="Sources not found, never pruned: a folder on their path could not be "
        "listed, or the path is now a symlink (not followed).",
    )
    relinked: list[str] = Field(
        default_factory=list,
        description="Stored sources that became another name (a hard link or a symlink) of a "
        "file stored under another path: their second copy is removed (--prune or not: "
        "nothing is lost), the file stays searchable under that path.",
    )
    skipped: list[SkippedFile] = Field(default_factory=list)
    ignored: int = Field(default=0, description="Hidden or .gitignore'd entries not walked.")
    chunks_written: int = 0
    chunks_reused: int = Field(
        default=0,
        description="Chunks written with their stored vectors: an updated file's chunks whose "
        "text did not change are not embedded again.",
    )
    stale_chunks_removed: int = Field(
        default=0, description="Stored chunks deleted (with dry_run: that would be deleted)."
    )
    seconds: float = 0.0
    chunks_per_second: float = 0.0
    cancelled: bool = Field(
        default=False,
        description="Stopped on request before every file was walked: the files listed were "
        "written completely; the rest (and pruning) were not done.",
    )


@dataclass(frozen=True)
class IngestProgress:
    """A snapshot of a running ingest, for progress reports (files walked, chunks written)."""

    files_total: int
    files_done: int
    chunks_written: int
    seconds: float
    """Since the run started (discovery included)."""


ProgressObserver = Callable[[IngestProgress], None]
"""Called from the ingest thread after each file and each written batch; must be quick."""
StopRequested = Callable[[], bool]
"""Polled between files: True stops the run after writing the chunks already prepared."""


def make_budget(embedder: DenseEmbedder, settings: IngestSettings) -> TokenBudget:
    """The chunk budget: the configured size, never more than the model's window."""
    window = embedder.max_tokens - _SPECIAL_TOKENS
    return TokenBudget(
        embedder.count_tokens, min(settings.chunk_tokens, window), settings.overlap_tokens
    )


def content_hash(data: bytes) -> str:
    """sha256 of the file bytes (the identity of a source's version)."""
    return hashlib.sha256(data).hexdigest()


@dataclass
class _Written:
    source: str
    chunk_count: int
    previous: SourceState | None


class _Progress:
    """A bar on stderr (files done, chunks written, chunks/s; log lines printed above it)."""

    def __init__(
        self,
        total: int,
        enabled: bool,
        observer: ProgressObserver | None = None,
        started: float | None = None,
    ) -> None:
        self.started = time.perf_counter() if started is None else started
        self.total = total
        self.files = 0
        self.chunks = 0
        self.observer = observer
        self.bar: ProgressBar | None = None
        if enabled and total:
            self.bar = ProgressBar(total, unit="file")

    def file_done(self, n: int = 1) -> None:
        self.files += n
        if self.bar is not None:
            self.bar.update(n)
        self.notify()

    def chunks_done(self, n: int) -> None:
        self.chunks += n
        if self.bar is not None:
            rate = self.chunks / max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix(chunks=self.chunks, chunks_s=f"{rate:.1f}")
        self.notify()

    def notify(self) -> None:
        if self.observer is not None:
            elapsed = time.perf_counter() - self.started
            self.observer(IngestProgress(self.total, self.files, self.chunks, elapsed))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class IngestJob:
    """One ``ingest`` run for one tenant and domain through an Indexer (store + embedder)."""

    def __init__(
        self,
        indexer: Indexer,
        *,
        domain: str | Domain,
        tenant: str,
        dry_run: bool = False,
        prune: bool = False,
        progress: bool = True,
        observer: ProgressObserver | None = None,
        should_stop: StopRequested | None = None,
        flush_chunks: int | None = None,
    ) -> None:
        validate_tenant(tenant)
        self.indexer = indexer
        self.observer = observer
        self.should_stop = should_stop
        self.domain, domain_settings = resolve_domain(indexer.settings, domain)
        self.collection = domain_settings.collection
        self.tenant = tenant
        self.dry_run = dry_run
        self.prune = prune
        self.show_progress = progress
        self.settings = indexer.settings.ingest
        self.flush_chunks = flush_chunks or self.settings.batch_chunks
        """Chunks gathered (whole files) before a store write: progress and stop requests
        take effect between writes."""
        self.budget = make_budget(indexer.embedder, self.settings)
        self.report = IngestReport(domain=self.domain.value, tenant=tenant, dry_run=dry_run)
        self._pending: list[Chunk] = []
        self._pending_sources: list[_Written] = []
        self._progress: _Progress | None = None

    def run(
        self, paths: Sequence[Path | str], scope: Collection[str] | None = None
    ) -> IngestReport:
        """Ingest ``paths`` (files and folders) and return the summary.

        ``scope`` (absolute paths, e.g. what a watcher saw change): the walk still covers
        ``paths`` (so ``.gitignore`` rules and relative paths are exactly a full run's), but
        only files at or under a scope path are read, and only stored sources at or under one
        are pruned. A full run (no scope, not a dry run) records each folder's freshness.
        """
        started = time.perf_counter()
        synced_at = freshness.now_iso()
        git_before = self._git_states(paths) if scope is None and not self.dry_run else {}
        in_scope = _scope_test(scope)
        manifest = load_manifest(self.indexer.store, self.collection, self.tenant)
        # a file reached by several hard links stays under the path it is stored under
        settings = self.indexer.settings
        store = freshness.store_folders(settings)  # its files are not sources
        found = discover(
            paths, self.domain, self.settings.max_file_bytes, prefer=manifest.keys(), exclude=store
        )
        if not found.roots:
            why = "; ".join(f"{s.path}: {s.reason}" for s in found.skipped)
            raise InvalidRequestError(f"nothing to ingest: {why}")
        self.report.ignored = found.ignored
        # a stored file now refused for what it is: its chunks are an older version's
        withdrawn = {
            id(skip): source
            for source, skip in found.refused.items()
            if source in manifest and in_scope(source)
        }
        self.report.skipped.extend(
            SkippedFile(
                path=s.path,
                reason=s.reason + (_WITHDRAWN if id(s) in withdrawn else ""),
                kind=s.kind,
            )
            for s in found.skipped
            if in_scope(s.path)
        )
        for source in sorted(withdrawn.values()):
            self._withdraw(source, manifest[source])
        files = [f for f in found.files if in_scope(f.source)]
        self._ingest_all(files, manifest, started)
        if not self.report.cancelled:  # a stopped run has not seen every file: no prune, no sync
            self._handle_gone(found, {k: v for k, v in manifest.items() if in_scope(k)})
            if scope is None and not self.dry_run:
                self._record_sync(found.folders, synced_at, git_before)
        elapsed = time.perf_counter() - started
        self.report.seconds = round(elapsed, 3)
        self.report.chunks_per_second = round(self.report.chunks_written / elapsed, 1)
        return self.report

    def _ingest_all(
        self, files: Sequence[SourceFile], manifest: dict[str, SourceState], started: float
    ) -> None:
        """Read, chunk and write ``files``; stops between files when asked (``cancelled``):
        files already chunked are written whole."""
        self._progress = _Progress(len(files), self.show_progress, self.observer, started=started)
        self._progress.notify()
        try:
            for file in files:
                raise_if_terminated()  # a stop signal whose exception was lost (shutdown.py)
                if self.should_stop is not None and self.should_stop():
                    self.report.cancelled = True
                    break
                if not self._ingest_file(file, manifest.get(file.source)):
                    self._progress.file_done()  # queued files count once written
            self._flush()
        finally:
            self._progress.close()

    def _git_states(self, paths: Sequence[Path | str]) -> dict[Path, freshness.GitState | None]:
        """Each folder argument's git state before the walk: if the tree moves during the run,
        the recorded state is older than what was read, so it reads as moved (never as fresh
        when it is not)."""
        states: dict[Path, freshness.GitState | None] = {}
        for raw in paths:
            path = Path(raw).expanduser()
            try:
                if not path.is_dir():
                    continue
            except OSError:  # a folder on its path cannot be entered: the walk reports it
                continue
            real = Path(os.path.realpath(path))
            states[real] = freshness.git_state(
                real, self.domain, freshness.store_folders(self.indexer.settings)
            )
        return states

    def _record_sync(
        self,
        folders: Sequence[Path],
        synced_at: str,
        git_before: dict[Path, freshness.GitState | None],
    ) -> None:
        store = self.indexer.store
        if not folders:
            return
        if not store.has_collection(self.collection):
            freshness.ensure_collection(
                store, self.indexer.settings, self.domain, self.indexer.embedder.dimension
            )
        for folder in folders:
            # sources gone from disk but kept (no --prune): the index still serves them, so
            # the folder is not in sync with the disk until a pruning run
            kept = sum(under_roots(source, [folder]) for source in self.report.gone)
            fields = freshness.sync_fields(synced_at, git_before.get(folder), pending=kept)
            freshness.update_root(store, self.collection, self.tenant, folder, fields)

    # -- one file ------------------------------------------------------------------------------

    def _ingest_file(self, file: SourceFile, previous: SourceState | None) -> bool:
        """Handle one file; True when its chunks were queued for writing (see _flush)."""
        try:
            data = read_source(file.path, self.settings.max_file_bytes)
        except UnreadableSource as exc:  # it changed since the walk; it stays "present"
            # a file grown past the limit is refused for what it is; one the file system
            # refused may be back next run, and keeps its chunks
            self._skip(file, str(exc), exc.kind, previous if exc.kind == "file" else None)
            return False
        digest = content_hash(data)
        chunking = self._chunking(file)
        if previous is not None and previous.is_complete(
            digest, chunking, unrecorded_ok=chunker_version(self.domain, self._format(file)) == 1
        ):
            self.report.unchanged += 1
            return False
        try:
            pieces = chunk_file(
                file, data, self.domain, self.budget, self.settings.code_overlap_lines
            )
        except SkipFile as exc:
            self._skip(file, str(exc), previous=previous)
            return False
        except Exception as exc:  # a parser bug on one odd file must not stop the run
            logger.debug("chunking %s failed", file.source, exc_info=True)
            self._skip(file, f"cannot chunk: {type(exc).__name__}: {exc}", previous=previous)
            return False
        if not pieces:
            self._skip(file, "no text to index", previous=previous)
            return False
        (self.report.added if previous is None else self.report.updated).append(file.source)
        chunks = self._chunks(file, digest, pieces)
        if self.dry_run:
            self.report.chunks_written += len(chunks)
            if previous is not None:  # what _flush would delete: indexes past the new count
                self.report.stale_chunks_removed += len(_stale(previous.indexes, len(chunks)))
            return False
        self._pending.extend(chunks)
        self._pending_sources.append(_Written(file.source, len(chunks), previous))
        if len(self._pending) >= self.flush_chunks:
            self._flush()
        return True

    def _format(self, file: SourceFile) -> str:
        """What chunker versions are kept by: the format, for code the language."""
        return (file.language or file.format) if self.domain is Domain.CODE else file.format

    def _chunking(self, file: SourceFile) -> str:
        overlap = self.settings.code_overlap_lines
        return chunking_key(self.domain, self._format(file), self.budget, overlap)

    def _skip(
        self,
        file: SourceFile,
        reason: str,
        kind: SkipKind = "file",
        previous: SourceState | None = None,
    ) -> None:
        """Report ``file`` skipped; with ``previous`` (its stored state), withdraw its chunks:
        they hold a version of the file the index no longer has (a file re-saved in another
        encoding, grown past the size limit, emptied, become binary), and searches must not
        keep finding text the file no longer holds."""
        if previous is not None:
            reason += _WITHDRAWN
            self._withdraw(file.source, previous)
        self.report.skipped.append(SkippedFile(path=file.source, reason=reason, kind=kind))

    def _withdraw(self, source: str, previous: SourceState) -> None:
        self._remove({SOURCE: source}, previous.points)
        self.report.deleted.append(source)

    def _chunks(self, file: SourceFile, digest: str, pieces: list[Piece]) -> list[Chunk]:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        chunks: list[Chunk] = []
        for index, piece in enumerate(pieces):
            metadata: dict[str, Any] = {
                DOC_TYPE: "code" if self.domain is Domain.CODE else "other",
                **piece.metadata,
                CONTENT_HASH: digest,
                CHUNK_COUNT: len(pieces),
                CHUNKING: self._chunking(file),
                REL_PATH: file.rel_path,
                INGESTED_AT: now,
            }
            chunks.append(
                Chunk(
                    tenant=self.tenant,
                    doc_id=file.source,
                    source=file.source,
                    chunk_index=index,
                    text=piece.text,
                    title=piece.title,
                    metadata=metadata,
                )
            )
        return chunks

    # -- writes --------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Embed + upsert the pending chunks, then drop old chunks beyond each new count."""
        if not self._pending:
            return
        progress = self._progress.chunks_done if self._progress else None
        stored = {
            written.source: sorted(written.previous.indexes)
            for written in self._pending_sources
            if written.previous is not None
        }
        report = self.indexer.index(
            self.domain,
            self._pending,
            batch_size=self.settings.batch_chunks,
            progress=progress,
            previous=stored,
        )
        self.report.chunks_written += report.chunks
        self.report.chunks_reused += report.reused
        for written in self._pending_sources:
            previous = written.previous
            if previous is None:
                continue
            stale = _stale(previous.indexes, written.chunk_count)
            if stale:
                self.report.stale_chunks_removed += self.indexer.delete(
                    self.domain, self.tenant, {SOURCE: written.source, CHUNK_INDEX: stale}
                )
        if self._progress is not None:
            self._progress.file_done(len(self._pending_sources))
        self._pending = []
        self._pending_sources = []

    def _handle_gone(self, found: Discovery, manifest: dict[str, SourceState]) -> None:
        """Stored sources under the ingested folders that this walk did not find.

        Pruned (with ``--prune``) only when the walk proves them gone (``Discovery.gone``): a
        source under a folder that could not be listed is reported as ``kept`` and never
        deleted, and every file the walk found counts as present even when reading it failed.
        A stored source now skipped as a hard link of a file taken under another path is on
        disk, not gone: its second copy is removed (``relinked``), since the copy that stays
        is the one kept current. A dry run computes exactly the same lists.
        """
        gone, self.report.kept = found.gone(manifest)
        for source in sorted(found.linked.keys() & manifest.keys()):
            self._remove({SOURCE: source}, manifest[source].points)
            self.report.relinked.append(source)
        if not self.prune:
            self.report.gone = gone
            return
        for source in gone:
            self._remove({SOURCE: source}, manifest[source].points)
            self.report.deleted.append(source)

    def _remove(self, filters: dict[str, FilterValue], stored: int) -> None:
        """Delete the tenant's chunks matching ``filters`` (``stored`` of them, as the
        manifest counts them); a dry run only counts them."""
        if self.dry_run:
            self.report.stale_chunks_removed += stored
        else:
            self.report.stale_chunks_removed += self.indexer.delete(
                self.domain, self.tenant, filters
            )


_WITHDRAWN = "; its earlier version's chunks were removed"


def run_ingest(
    indexer: Indexer,
    paths: Sequence[Path | str],
    *,
    domain: str | Domain,
    tenant: str,
    dry_run: bool = False,
    prune: bool = False,
    progress: bool = True,
    observer: ProgressObserver | None = None,
    should_stop: StopRequested | None = None,
    flush_chunks: int | None = None,
    scope: Collection[str] | None = None,
) -> IngestReport:
    """Ingest files and folders for one tenant into one domain (see :class:`IngestJob`).

    ``progress`` draws a bar on stderr; ``observer`` receives :class:`IngestProgress`
    snapshots; ``should_stop`` is polled between files (a stopped run sets ``cancelled``);
    ``flush_chunks`` (default ``ingest.batch_chunks``) is how many chunks of whole files are
    gathered per store write.
    """
    job = IngestJob(
        indexer,
        domain=domain,
        tenant=tenant,
        dry_run=dry_run,
        prune=prune,
        progress=progress,
        observer=observer,
        should_stop=should_stop,
        flush_chunks=flush_chunks,
    )
    return job.run(paths, scope)


def _scope_test(scope: Collection[str] | None) -> Callable[[str], bool]:
    """A test "is this path at or under one of ``scope``" in O(depth) per path (a burst of
    thousands of changed files against thousands of stored sources stays linear)."""
    if scope is None:
        return lambda _path: True
    wanted = frozenset(os.path.normpath(p) for p in scope)

    def test(path: str) -> bool:
        if path in wanted:
            return True
        return any(parent.as_posix() in wanted for parent in PurePosixPath(path).parents)

    return test


def delete_sources(
    indexer: Indexer,
    *,
    tenant: str,
    domains: Sequence[Domain],
    source: str | None = None,
) -> dict[str, int]:
    """Delete a tenant's chunks of one source (a file, or every file under a folder), or all
    of them when ``source`` is None; returns points removed per domain."""
    validate_tenant(tenant)
    removed: dict[str, int] = {}
    # compared in NFC: a folder macOS wrote decomposed ("Bu\u0308ro") is typed composed
    wanted: set[str] = set()
    if source is not None:
        as_given = normalize_path(source)  # '' for an empty source: matches nothing
        wanted = {normalize_path(Path(source).expanduser().resolve().as_posix()), as_given} - {""}
    for domain in domains:
        collection = indexer.settings.domains[domain].collection
        if source is None:
            removed[domain.value] = indexer.delete(domain, tenant)
            freshness.forget_emptied_roots(indexer.store, collection, tenant, None)
            continue
        sources = [
            s
            for s in load_manifest(indexer.store, collection, tenant)
            if (norm := normalize_path(s)) in wanted
            or any(norm.startswith(w.rstrip("/") + "/") for w in wanted)
        ]
        removed[domain.value] = sum(
            indexer.delete(domain, tenant, {SOURCE: s}) for s in sorted(sources)
        )
        freshness.forget_emptied_roots(indexer.store, collection, tenant, sources)
    return removed


def _stale(indexes: Collection[int], chunk_count: int) -> list[int]:
    """The stored chunk indexes a source re-chunked into ``chunk_count`` chunks no longer has."""
    return sorted(i for i in indexes if i >= chunk_count or i < 0)
