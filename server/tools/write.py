"""The write tools (registered only with ``allow_write``): index_path, job_status, cancel_job,
remove_source, add_text. Over HTTP they need a write-scoped token; over stdio the launching
user may write. Every write acts for the caller's tenant only."""

from __future__ import annotations

import math
import time
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from server.auth import WRITE_SCOPE, request_scopes, write_refusal
from server.ingest.notes import MetadataValue, NoteResult
from server.ingest.removal import RemoveResult
from server.jobs import Job, JobManager, JobState, JobView, job_progress, progress_message
from server.roots import resolve_under_roots
from server.settings import Domain
from server.tools.common import AppState, app_state, caller_tenant, tool_errors, with_text

INDEXING = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
"""index_path replaces changed files' chunks and, with prune, deletes; a re-run converges."""
REMOVING = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
)
ADDING = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
"""add_text only adds (the same text lands on the same source: adding it twice is one note)."""
JOB_READ = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
JOB_CANCEL = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

DOMAIN_HELP = "Which index: 'docs', 'legal' or 'code'."


def require_write(ctx: Context) -> AppState:
    """The app state when this caller may write; a one-line ToolError otherwise."""
    state = app_state(ctx)
    if not state.runtime.settings.mcp.allow_write:
        raise ToolError("writes are disabled on this server (start it with --allow-write)")
    scopes = request_scopes(ctx.request_context.request)
    if scopes is not None and WRITE_SCOPE not in scopes:
        raise ToolError(write_refusal(ctx.request_context.request))
    return state


def _jobs(state: AppState) -> JobManager:
    if state.jobs is None:
        raise ToolError("this server runs no jobs")
    return state.jobs


_RELINKED = (
    "now other names (hard links or symlinks) of a file stored under another path: their "
    "second copy was removed"
)
_UNLISTED = (
    "not found but kept: a folder on their path could not be listed, or the path is now a "
    "symlink (not followed)"
)
_GONE = "no longer on disk, still indexed: call index_path again with prune=true to delete them"


def render_job(view: JobView) -> str:
    """A few lines: state, progress, outcome, what to do next."""
    lines = [f"job {view.job_id}: {view.state.value} - index {view.path} ({view.domain.value})"]
    if view.note:
        lines.append(f"note: {view.note}")
    lines.append(progress_message(view.progress))
    if view.result is not None:
        r = view.result
        lines.append(
            f"added {r.added}, updated {r.updated}, unchanged {r.unchanged}, deleted {r.deleted}, "
            f"skipped {r.skipped}; {r.chunks_written} chunks written in {r.seconds:.1f}s"
        )
        lines.extend(f"skipped {s.path}: {s.reason}" for s in r.skipped_files)
        for count, sources, label, heading in (
            (r.relinked, r.relinked_sources, "relinked", _RELINKED),
            (r.unlisted, r.unlisted_sources, "kept", _UNLISTED),
            (r.gone, r.gone_sources, "gone", _GONE),
        ):
            if count:
                lines.append(f"{count} stored source(s) {heading}")
                lines.extend(f"{label} {source}" for source in sources)
    if view.error:
        lines.append(f"error: {view.error}")
    if view.state is JobState.RUNNING:
        lines.append(f"still running: call job_status(job_id='{view.job_id}') to keep waiting")
    return "\n".join(lines)


async def wait_with_progress(ctx: Context, job: Job, wait_seconds: float, interval: float) -> None:
    """Wait up to ``wait_seconds`` for ``job``, sending the caller progress notifications
    (if it asked for them) whenever the file count rose, at most one per ``interval``
    seconds. Progress values only increase, as the protocol requires."""
    deadline = time.monotonic() + wait_seconds
    last_sent = -math.inf
    last_value = -1
    while True:
        done = job.done.is_set()
        snapshot = job.progress()
        now = time.monotonic()
        if snapshot.files_done > last_value and (snapshot.files_total or done):
            if done and now - last_sent < interval:  # the last word still keeps the pace
                await anyio.sleep(interval - (now - last_sent))
                now = time.monotonic()
            if now - last_sent >= interval:
                total = snapshot.files_total or None
                message = progress_message(job_progress(snapshot))
                await ctx.report_progress(snapshot.files_done, total, message)
                last_sent, last_value = now, snapshot.files_done
        if done or now >= deadline:
            return
        await anyio.sleep(max(0.0, min(interval, deadline - now)))


async def index_path(
    path: Annotated[
        str,
        Field(
            description="A file or folder under one of the server's roots: absolute, or "
            "relative to a root. '..' and links leading outside the roots are refused.",
        ),
    ],
    domain: Annotated[Domain, Field(description=DOMAIN_HELP)],
    ctx: Context,
    prune: Annotated[
        bool,
        Field(description="Also remove indexed files under this folder that are gone on disk."),
    ] = False,
) -> Annotated[CallToolResult, JobView]:
    """Index (or refresh) a file or folder under one of the server's roots into one domain:
    new and changed files are chunked and embedded, unchanged ones skipped, .gitignore
    honoured. It runs as a job and reports progress while this call waits; if it takes longer
    than the wait limit the call returns the job id with state 'running': call job_status with
    it to keep waiting (the job goes on meanwhile). One job per root at a time: asking again
    while one runs returns that job.
    """
    with tool_errors("index_path"):
        state = require_write(ctx)
        tenant = caller_tenant(ctx)
        settings = state.runtime.settings.mcp
        # file-system calls (a slow network mount) stay off the event loop
        resolved, root = await anyio.to_thread.run_sync(resolve_under_roots, path, settings.roots)
        job, started = _jobs(state).start_index(
            tenant=tenant, root=root, path=resolved, domain=domain, prune=prune
        )
        note = None
        if not started:
            note = (
                f"a job for root {root.as_posix()} was already running; this is that job "
                f"(indexing {job.path.as_posix()}, {job.domain.value})"
            )
        interval = settings.progress_interval_seconds
        await wait_with_progress(ctx, job, settings.job_wait_seconds, interval)
        view = job.view(note)
        return with_text(view, render_job(view))


async def job_status(
    job_id: Annotated[str, Field(min_length=1, description="The 'job_id' index_path returned.")],
    ctx: Context,
    wait_s: Annotated[
        float | None,
        Field(
            ge=0,
            description="Seconds to wait for the job to finish (0: answer now; default: the "
            "server's wait limit).",
        ),
    ] = None,
) -> Annotated[CallToolResult, JobView]:
    """Show an index job's state and progress, waiting up to wait_s seconds for it to end
    (with progress notifications while waiting). Use it after index_path returned a job that
    was still running.
    """
    with tool_errors("job_status"):
        state = require_write(ctx)
        settings = state.runtime.settings.mcp
        limit = settings.job_wait_seconds
        if wait_s is not None and wait_s > limit:
            raise ToolError(f"wait_s is at most {limit:g} seconds")
        job = _jobs(state).get(caller_tenant(ctx), job_id)
        wait = limit if wait_s is None else wait_s
        await wait_with_progress(ctx, job, wait, settings.progress_interval_seconds)
        view = job.view()
        return with_text(view, render_job(view))


def cancel_job(
    job_id: Annotated[str, Field(min_length=1, description="The 'job_id' to stop.")],
    ctx: Context,
) -> Annotated[CallToolResult, JobView]:
    """Stop a running index job. It stops after the files it is writing (whole files only),
    so the index stays consistent; running index_path again later finishes the work. The
    result may still say 'running' for a moment: job_status shows when it has stopped.
    """
    with tool_errors("cancel_job"):
        state = require_write(ctx)
        job = _jobs(state).cancel(caller_tenant(ctx), job_id)
        job.done.wait(1.0)  # usually enough to report the final state
        view = job.view()
        return with_text(view, render_job(view))


def render_removed(result: RemoveResult) -> str:
    """Counts and the sources removed."""
    lines = [
        f"removed {result.chunks_removed} chunks of {result.sources_removed} "
        f"{result.domain.value} source(s)"
    ]
    lines.extend(result.sources)
    if result.sources_removed > len(result.sources):
        lines.append(f"... and {result.sources_removed - len(result.sources)} more")
    if not result.sources_removed:
        lines.append("nothing matched: list_sources shows what is indexed")
    return "\n".join(lines)


def remove_source(
    domain: Annotated[Domain, Field(description=DOMAIN_HELP)],
    ctx: Context,
    source: Annotated[
        str | None,
        Field(description="Exactly this source: a hit's 'source' (a file path or note:<id>)."),
    ] = None,
    path_prefix: Annotated[
        str | None,
        Field(
            description="Every source under this folder (or this one file): absolute, or "
            "relative to the ingested folder; whole path segments."
        ),
    ] = None,
) -> Annotated[CallToolResult, RemoveResult]:
    """Remove indexed content from one domain: one source (a file or a note) or every source
    under a path. Only the index changes, never the files on disk. Give exactly one of source
    or path_prefix.
    """
    with tool_errors("remove_source"):
        from server.ingest.removal import remove_sources

        state = require_write(ctx)
        tenant = caller_tenant(ctx)
        indexer = state.runtime.retrieval().indexer
        result = remove_sources(
            indexer, tenant=tenant, domain=domain, source=source, path_prefix=path_prefix
        )
        return with_text(result, render_removed(result))


def render_note(result: NoteResult) -> str:
    """One line."""
    if result.unchanged:
        return f"already stored as {result.source} ({result.chunks} chunks): nothing changed"
    return (
        f"stored note {result.title!r} as {result.source} in {result.domain.value} "
        f"({result.chunks} chunks)"
    )


def add_text(
    text: Annotated[str, Field(min_length=1, description="The text to keep (plain text).")],
    title: Annotated[
        str, Field(min_length=1, max_length=200, description="A short title for citations.")
    ],
    ctx: Context,
    domain: Annotated[Domain, Field(description=DOMAIN_HELP)] = Domain.DOCS,
    metadata: Annotated[
        dict[str, MetadataValue] | None,
        Field(
            description="Extra fields stored with it, e.g. {'tags': ['decision']} (tags "
            "filter doc_search and legal_search)."
        ),
    ] = None,
) -> Annotated[CallToolResult, NoteResult]:
    """Store a note (a decision, a summary, a fact worth finding again) in the index so later
    searches find it. It is chunked like a text file and stored as source note:<id>, the same
    id for the same text: adding it again changes nothing; remove_source removes it.
    """
    with tool_errors("add_text"):
        from server.ingest.notes import add_note

        state = require_write(ctx)
        tenant = caller_tenant(ctx)
        indexer = state.runtime.retrieval().indexer
        result = add_note(
            indexer,
            tenant=tenant,
            domain=domain,
            text=text,
            title=title,
            metadata=metadata,
            max_chars=state.runtime.settings.mcp.max_note_chars,
        )
        return with_text(result, render_note(result))


WRITE_TOOLS: list[tuple[Any, str, ToolAnnotations]] = [
    (index_path, "Index a file or folder", INDEXING),
    (job_status, "Index job status", JOB_READ),
    (cancel_job, "Cancel an index job", JOB_CANCEL),
    (remove_source, "Remove indexed sources", REMOVING),
    (add_text, "Store a note", ADDING),
]
"""(function, title, annotations), registered only when writes are enabled."""
