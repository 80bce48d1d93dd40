"""Long writes as jobs: an index_path run on a worker thread, observable and cancellable.

A job belongs to one tenant (another tenant's job id is "not found"), runs ``run_ingest`` over
one path under one configured root, and outlives the tool call and the session that started
it: the call only waits for it. One job per tenant and root runs at a time; asking again for
the same root returns the running job. Cancelling stops between files after writing the
chunks already prepared (whole files only), so the store stays consistent and a later run
converges (the manifest redoes anything incomplete). Finished jobs stay readable for
``job_retention_seconds``.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from server.errors import NotFoundError, RetrievalError
from server.ingest.source_io import SkipKind
from server.settings import Domain

if TYPE_CHECKING:  # the ingest code imports numpy: kept off the protocol path until a job runs
    from server.ingest.runner import IngestProgress, IngestReport
    from server.runtime import ServerRuntime

logger = logging.getLogger(__name__)

SKIPPED_SHOWN = 20
"""Skipped files listed in a job result (the count covers all of them)."""


class JobState(StrEnum):
    """Where a job is: ``running`` until it ends in one of the other three."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobProgress(BaseModel):
    """How far a job got. Files count when chunked; chunks when written to the store."""

    files_total: int = Field(description="Files found by the walk (0 until it finished).")
    files_done: int
    chunks_written: int
    chunks_per_second: float
    elapsed_seconds: float
    eta_seconds: float | None = Field(
        description="Estimated seconds left, from the pace so far; None before the first file."
    )


class SkippedPath(BaseModel):
    """A file a job did not index, and why (see the ingest report's SkippedFile)."""

    path: str
    reason: str
    kind: SkipKind


@dataclass(frozen=True)
class Snapshot:
    """Counts of a running job (the fields of the ingest's IngestProgress)."""

    files_total: int = 0
    files_done: int = 0
    chunks_written: int = 0
    seconds: float = 0.0


class IndexSummary(BaseModel):
    """What an index_path job did (counts; the first skipped files with their reasons)."""

    added: int
    updated: int
    unchanged: int
    deleted: int = Field(description="Sources pruned (prune=true): gone from disk.")
    gone: int = Field(
        description="Stored sources no longer on disk, still indexed (prune=false): run again "
        "with prune=true to delete them."
    )
    gone_sources: list[str] = Field(description=f"The first {SKIPPED_SHOWN} of them.")
    unlisted: int = Field(
        description="Stored sources not found but kept whatever prune says: a folder on their "
        "path could not be listed, or the path is now a symlink (not followed), so the walk "
        "cannot prove them gone."
    )
    unlisted_sources: list[str] = Field(description=f"The first {SKIPPED_SHOWN} of them.")
    relinked: int = Field(
        default=0,
        description="Stored sources now another name (a hard link or a symlink) of a file "
        "stored under another path: their second copy was removed (the file stays searchable "
        "under that path).",
    )
    relinked_sources: list[str] = Field(
        default_factory=list, description=f"The first {SKIPPED_SHOWN} of them."
    )
    skipped: int
    skipped_files: list[SkippedPath] = Field(
        description=f"The first {SKIPPED_SHOWN} skipped files and why."
    )
    ignored: int = Field(description="Hidden or .gitignore'd entries not walked.")
    chunks_written: int
    stale_chunks_removed: int
    seconds: float
    chunks_per_second: float
    cancelled: bool


class JobView(BaseModel):
    """A job as the tools show it."""

    job_id: str
    kind: str = "index_path"
    state: JobState
    path: str = Field(description="The resolved path being indexed.")
    root: str = Field(description="The configured root it lies under (one job per root).")
    domain: Domain
    prune: bool
    progress: JobProgress
    started_at: str = Field(description="ISO 8601, UTC.")
    finished_at: str | None = None
    result: IndexSummary | None = Field(default=None, description="Once the job has ended.")
    error: str | None = None
    note: str | None = Field(default=None, description="E.g. that an earlier job was reused.")


def summarize(report: IngestReport) -> IndexSummary:
    """The bounded summary of an ingest report."""
    return IndexSummary(
        added=len(report.added),
        updated=len(report.updated),
        unchanged=report.unchanged,
        deleted=len(report.deleted),
        gone=len(report.gone),
        gone_sources=report.gone[:SKIPPED_SHOWN],
        unlisted=len(report.kept),
        unlisted_sources=report.kept[:SKIPPED_SHOWN],
        relinked=len(report.relinked),
        relinked_sources=report.relinked[:SKIPPED_SHOWN],
        skipped=len(report.skipped),
        skipped_files=[
            SkippedPath(path=s.path, reason=s.reason, kind=s.kind)
            for s in report.skipped[:SKIPPED_SHOWN]
        ],
        ignored=report.ignored,
        chunks_written=report.chunks_written,
        stale_chunks_removed=report.stale_chunks_removed,
        seconds=report.seconds,
        chunks_per_second=report.chunks_per_second,
        cancelled=report.cancelled,
    )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Job:
    """One index_path run; every method is safe to call from any thread."""

    def __init__(self, tenant: str, root: Path, path: Path, domain: Domain, prune: bool) -> None:
        self.id = secrets.token_hex(8)
        self.tenant = tenant
        self.root = root
        self.path = path
        self.domain = domain
        self.prune = prune
        self.started_at = _now_iso()
        self.finished_at: str | None = None
        self.finished_mono: float | None = None
        self.cancel_requested = threading.Event()
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._progress = Snapshot()
        self._started_mono = time.monotonic()
        self._state = JobState.RUNNING
        self._report: IngestReport | None = None
        self._error: str | None = None

    def observe(self, progress: IngestProgress) -> None:
        """The ingest's progress callback."""
        snapshot = Snapshot(
            progress.files_total, progress.files_done, progress.chunks_written, progress.seconds
        )
        with self._lock:
            self._progress = snapshot

    def progress(self) -> Snapshot:
        """The latest snapshot (elapsed time as of now while running)."""
        with self._lock:
            snapshot = self._progress
            if self._state is JobState.RUNNING:
                elapsed = time.monotonic() - self._started_mono
                snapshot = Snapshot(
                    snapshot.files_total, snapshot.files_done, snapshot.chunks_written, elapsed
                )
            return snapshot

    @property
    def state(self) -> JobState:
        with self._lock:
            return self._state

    def finish(self, report: IngestReport | None, error: str | None) -> None:
        """Record the outcome and wake every waiter."""
        with self._lock:
            self._report = report
            self._error = error
            if error is not None:
                self._state = JobState.FAILED
            elif report is not None and report.cancelled:
                self._state = JobState.CANCELLED
            else:
                self._state = JobState.SUCCEEDED
            if report is not None:
                self._progress = Snapshot(
                    self._progress.files_total,
                    self._progress.files_done,
                    report.chunks_written,
                    report.seconds,
                )
            self.finished_at = _now_iso()
            self.finished_mono = time.monotonic()
        self.done.set()

    def view(self, note: str | None = None) -> JobView:
        """A snapshot for the tools."""
        progress = self.progress()
        with self._lock:
            state, report, error = self._state, self._report, self._error
        return JobView(
            job_id=self.id,
            state=state,
            path=self.path.as_posix(),
            root=self.root.as_posix(),
            domain=self.domain,
            prune=self.prune,
            progress=job_progress(progress),
            started_at=self.started_at,
            finished_at=self.finished_at,
            result=summarize(report) if report is not None else None,
            error=error,
            note=note,
        )


def job_progress(progress: Snapshot) -> JobProgress:
    """Counts plus rate and ETA (the ETA assumes the remaining files go at the pace so far)."""
    elapsed = max(progress.seconds, 1e-9)
    eta = None
    if progress.files_done and progress.files_total:
        left = max(progress.files_total - progress.files_done, 0)
        eta = round(elapsed / progress.files_done * left, 1)
    return JobProgress(
        files_total=progress.files_total,
        files_done=progress.files_done,
        chunks_written=progress.chunks_written,
        chunks_per_second=round(progress.chunks_written / elapsed, 1),
        elapsed_seconds=round(progress.seconds, 1),
        eta_seconds=eta,
    )


def progress_message(progress: JobProgress) -> str:
    """One line for a progress notification: counts, chunks/s and ETA."""
    total = progress.files_total or "?"
    eta = f", ETA {progress.eta_seconds:.0f}s" if progress.eta_seconds is not None else ""
    return (
        f"{progress.files_done}/{total} files, {progress.chunks_written} chunks, "
        f"{progress.chunks_per_second:.1f} chunks/s{eta}"
    )


class JobManager:
    """The jobs of one server process, shared by all its sessions.

    ``runtime`` provides the indexer (``runtime.retrieval().indexer``); a running job holds
    the runtime (acquire/release) so the store stays open after the last session closes.
    """

    def __init__(self, runtime: ServerRuntime, retention_seconds: float | None = None) -> None:
        self.runtime = runtime
        self.retention_seconds = (
            runtime.settings.mcp.job_retention_seconds
            if retention_seconds is None
            else retention_seconds
        )
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start_index(
        self, *, tenant: str, root: Path, path: Path, domain: Domain, prune: bool
    ) -> tuple[Job, bool]:
        """Start indexing ``path`` (under ``root``) for ``tenant``; returns ``(job, started)``:
        ``started`` is False when a job of this tenant for this root was already running (that
        job is returned)."""
        with self._lock:
            self._forget_expired()
            for job in self._jobs.values():
                if job.tenant == tenant and job.root == root and not job.done.is_set():
                    return job, False
            job = Job(tenant, root, path, domain, prune)
            self._jobs[job.id] = job
            self.runtime.acquire()  # released by the worker: the store outlives the sessions
            thread = threading.Thread(
                target=self._run, args=(job,), name=f"retrieval-mcp-job-{job.id}", daemon=True
            )
        thread.start()
        return job, True

    def _run(self, job: Job) -> None:
        report: IngestReport | None = None
        error: str | None = None
        try:
            from server.ingest.runner import run_ingest

            indexer = self.runtime.retrieval().indexer
            report = run_ingest(
                indexer,
                [job.path],
                domain=job.domain,
                tenant=job.tenant,
                prune=job.prune,
                progress=False,
                observer=job.observe,
                should_stop=job.cancel_requested.is_set,
                flush_chunks=self.runtime.settings.mcp.job_batch_chunks,
            )
        except RetrievalError as exc:
            error = str(exc)
        except Exception as exc:  # one job's failure must not take the server down
            logger.exception("job %s failed", job.id)
            error = f"indexing failed unexpectedly ({type(exc).__name__}); see the server log"
        finally:
            job.finish(report, error)
            self.runtime.release()
        logger.info("job %s %s", job.id, job.state.value)

    def get(self, tenant: str, job_id: str) -> Job:
        """The tenant's job; NotFoundError otherwise (another tenant's id included)."""
        with self._lock:
            self._forget_expired()
            job = self._jobs.get(job_id.strip())
        if job is None or job.tenant != tenant:
            raise NotFoundError(f"no job {job_id!r} (finished jobs are kept for a while only)")
        return job

    def cancel(self, tenant: str, job_id: str) -> Job:
        """Ask the tenant's job to stop; a finished job is left as it is."""
        job = self.get(tenant, job_id)
        if not job.done.is_set():
            job.cancel_requested.set()
        return job

    def running(self) -> list[Job]:
        """Jobs not yet ended."""
        with self._lock:
            return [j for j in self._jobs.values() if not j.done.is_set()]

    def shutdown(self, timeout: float = 60.0) -> None:
        """Cancel the running jobs and wait (up to ``timeout`` seconds overall) for them to
        stop: used when the server exits, so no write is cut off mid-batch."""
        for job in self.running():
            job.cancel_requested.set()
        deadline = time.monotonic() + timeout
        for job in self.running():
            job.done.wait(max(0.0, deadline - time.monotonic()))

    def _forget_expired(self) -> None:
        now = time.monotonic()
        expired = [
            job_id
            for job_id, job in self._jobs.items()
            if job.finished_mono is not None and now - job.finished_mono > self.retention_seconds
        ]
        for job_id in expired:
            del self._jobs[job_id]
