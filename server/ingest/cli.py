"""``retrieval-mcp ingest`` and ``retrieval-mcp delete`` (registered from server/cli.py)."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path
from typing import Any

from server.errors import InvalidRequestError, NotFoundError
from server.settings import Domain, Settings

_DOMAINS = [d.value for d in Domain]
_SKIPS_SHOWN = 25
_SKIP_LABELS = (("error", "errors"), ("link", "links"), ("file", "other"))


def _open_indexer(settings: Settings) -> Any:
    """The write side over the configured store; no reranker: ingest never ranks."""
    from server.retrieval.factory import build_retrieval

    # a no-op re-ingest embeds nothing: load the weights on the first embedding
    retrieval = build_retrieval(settings, lazy=True, with_reranker=False)
    _quiet_tokenizer_warnings()
    return retrieval.indexer


def _quiet_tokenizer_warnings() -> None:
    """Counting a long section's tokens is how budgets work, not an indexing error: silence
    transformers' "sequence length is longer than ..." warning (its verbosity is its own)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        pass


def format_report(report: Any, verbose: bool = False) -> str:
    """Human summary of an IngestReport.

    Every skip of kind ``error`` (the file system refused) or ``link`` is always listed, each
    with its reason; other skips (type, size, content) are capped at 25 unless ``verbose``.
    """
    verb = "would be " if report.dry_run else ""
    kinds = Counter(skip.kind for skip in report.skipped)
    detail = ", ".join(f"{label}: {kinds[kind]}" for kind, label in _SKIP_LABELS if kinds[kind])
    lines = [
        f"{'dry run: ' if report.dry_run else ''}{report.domain} / tenant {report.tenant}: "
        f"{len(report.added)} added, {len(report.updated)} updated, {report.unchanged} unchanged, "
        f"{len(report.deleted)} deleted, {len(report.skipped)} skipped"
        + (f" ({detail})" if kinds["error"] or kinds["link"] else "")
    ]
    shown = 10**9 if verbose or report.dry_run else 0
    for label, items in (("added", report.added), ("updated", report.updated)):
        for item in items[:shown]:
            lines.append(f"  {verb}{label}: {item}")
    for item in report.deleted:
        lines.append(f"  {verb}deleted: {item}")
    listed = [s for s in report.skipped if s.kind != "file"]
    others = [s for s in report.skipped if s.kind == "file"]
    limit = len(others) if verbose else _SKIPS_SHOWN
    for skip in listed + others[:limit]:
        lines.append(f"  skipped: {skip.path}: {skip.reason}")
    if len(others) > limit:
        lines.append(f"  ... and {len(others) - limit} more skipped (--verbose lists all)")
    cap = None if verbose else _SKIPS_SHOWN
    if report.relinked:
        lines.append(
            f"  {len(report.relinked)} stored source(s) now other names (hard links or symlinks) "
            f"of a file stored under another path: their second copy {verb or 'was '}removed"
        )
        lines.extend(f"    relinked: {r}" for r in report.relinked[:cap])
    if report.kept:
        lines.append(
            f"  {len(report.kept)} stored source(s) not found but kept: a folder on their path "
            "could not be listed, or the path is now a symlink (not followed)"
        )
        lines.extend(f"    kept: {k}" for k in report.kept[:cap])
    if report.gone:
        lines.append(
            f"  {len(report.gone)} stored source(s) no longer on disk; re-run with --prune "
            "to delete them"
        )
        lines.extend(f"    gone: {g}" for g in report.gone[:cap])
    chunks = "chunks would be written" if report.dry_run else "chunks written"
    removed = "would be removed" if report.dry_run else "removed"
    if report.chunks_reused:
        chunks += f" ({report.chunks_reused} unchanged, their vectors kept)"
    lines.append(
        f"  {report.chunks_written} {chunks}, {report.stale_chunks_removed} stale chunks "
        f"{removed}, "
        f"{report.ignored} hidden/ignored entries, {report.seconds:.2f}s"
        + ("" if report.dry_run else f" ({report.chunks_per_second:.1f} chunks/s)")
    )
    return "\n".join(lines)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Walk, chunk, embed and upsert files for one tenant; print the summary.

    Returns the exit code: 0, or 1 when a file or folder could not be read (skips of kind
    ``error``; the rest was indexed). Bad usage raises (the CLI prints one line, exit 2)."""
    from server.ingest.runner import run_ingest

    missing = [p for p in args.paths if _missing(p)]
    if missing:
        raise InvalidRequestError(f"no such file or directory: {', '.join(missing)}")
    indexer = _open_indexer(Settings.from_cli(args))
    try:
        report = run_ingest(
            indexer,
            args.paths,
            domain=args.domain,
            tenant=args.tenant,
            dry_run=args.dry_run,
            prune=args.prune,
            progress=not args.no_progress,
        )
    finally:
        indexer.store.close()
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(format_report(report, verbose=args.verbose))
    # Exit 1, as rsync and cp do for a partial run: everything readable was indexed, but a script
    # must be able to tell that some files or folders could not be read (usage errors are 2).
    return 1 if any(skip.kind == "error" for skip in report.skipped) else 0


def _missing(path: str) -> bool:
    """True when nothing is at ``path`` (a broken link or a path that cannot be looked at is
    there: the walk reports it with its reason)."""
    try:
        os.lstat(Path(path).expanduser())
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete one source's chunks (or all of a tenant's) from one or every domain."""
    from server.ingest.runner import delete_sources

    domains = [Domain(args.domain)] if args.domain else list(Domain)
    from server.retrieval.edge_store import holds_store

    settings = Settings.from_cli(args)
    store = Path(settings.store_path).expanduser()
    if settings.qdrant_url is None and not holds_store(store):
        # opening it would create an empty store at a mistyped --store and report success
        what = (
            ("the folder holds no store" if store.is_dir() else "not a folder")
            if store.exists()
            else "no such folder"
        )
        raise NotFoundError(f"no store at {store} ({what}): nothing to delete (check --store)")
    indexer = _open_indexer(settings)
    try:
        removed = delete_sources(
            indexer, tenant=args.tenant, domains=domains, source=None if args.all else args.source
        )
    finally:
        indexer.store.close()
    total = sum(removed.values())
    what = "all sources" if args.all else args.source
    if total == 0:  # a mistyped tenant or source must not read as done
        scope = args.domain or "any domain"
        if args.all:
            raise NotFoundError(f"nothing stored for tenant {args.tenant!r} in {scope}")
        raise NotFoundError(f"no chunks of {what} for tenant {args.tenant!r} in {scope}")
    detail = ", ".join(f"{d}: {n}" for d, n in removed.items())
    print(f"deleted {total} chunks of {what} for tenant {args.tenant!r} ({detail})")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Catch up, then keep the folders in sync until interrupted (Ctrl-C or SIGTERM); one
    summary line per sync on stdout, logs on stderr."""
    import signal
    import threading

    from server.ingest.watch import Watcher
    from server.ingest.watch_roots import WatchRoot

    roots = [WatchRoot.of(path, args.domain) for path in args.paths]
    settings = Settings.from_cli(args)
    indexer = _open_indexer(settings)
    stop = threading.Event()

    def report(root: Any, result: Any) -> None:
        # the whole summary, as ingest prints it: its first line counts the skips, the
        # others name each error and link skip with its reason, and what was kept or pruned
        first, *rest = format_report(result).splitlines()
        print("\n".join([f"{first} [{root.path}]", *rest]), flush=True)

    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    watcher = Watcher(indexer, roots, args.tenant, settings=settings, on_report=report)
    try:
        watcher.start()
        shown = ", ".join(str(r.path) for r in watcher.roots)
        print(f"watching {shown} ({args.domain}, tenant {args.tenant}); Ctrl-C stops", flush=True)
        while not stop.wait(0.5):  # short waits: Ctrl-C is delivered between them
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        watcher.stop()
        indexer.store.close()
    return 0


def register_ingest_commands(sub: Any) -> None:
    """Add the ``ingest`` and ``delete`` subcommands to the main parser."""
    p = sub.add_parser("ingest", help="ingest files and folders for a tenant (incremental)")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and folders to ingest")
    p.add_argument("--domain", choices=_DOMAINS, required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--dry-run", action="store_true", help="print what would change; write nothing")
    p.add_argument(
        "--prune", action="store_true", help="delete stored sources gone from the folders"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser(
        "watch", help="keep folders indexed: catch up, then sync every change (incremental)"
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders to watch")
    p.add_argument("--domain", choices=_DOMAINS, required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("delete", help="delete a source's chunks, or all of a tenant's")
    p.add_argument("--tenant", required=True)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--source", help="file path as ingested (a folder: every file under it)")
    target.add_argument("--all", action="store_true", help="every chunk of the tenant")
    p.add_argument("--domain", choices=_DOMAINS, help="only this domain (default: all)")
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.set_defaults(func=cmd_delete)
