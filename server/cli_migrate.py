"""``retrieval-mcp migrate --to URL``: the embedded store copied into a Qdrant server or cluster.

Copies (migrate.py), then verifies (migrate_verify.py); prints one line per collection on
stdout. Exit codes: 0 copied and verified, 3 stopped early by ``--max-batches`` (run again to
continue), 2 an error or a failed verification (one line on stderr).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from server.cli_types import positive_int
from server.retrieval.edge_store import EdgeStore
from server.retrieval.migrate import (
    DEFAULT_BATCH,
    DEFAULT_SAMPLE,
    CollectionReport,
    MigrateOptions,
    MigrationError,
    copy_all,
)
from server.retrieval.migrate_verify import verify_collection
from server.retrieval.qdrant_store import QdrantStore
from server.settings import Domain, QdrantClusterSettings, Settings

INCOMPLETE_EXIT = 3


@dataclass
class MigrationResult:
    """Every collection's report; ``complete`` when all were copied and verified."""

    reports: list[CollectionReport]
    complete: bool


def run_migration(
    source: EdgeStore,
    target: QdrantStore,
    collections: Sequence[str],
    options: MigrateOptions,
    seed: int | None = None,
) -> MigrationResult:
    """Copy the collections, then (when every one is complete) verify each.

    Raises MigrationError when verification finds a difference.
    """
    reports = copy_all(source, target, collections, options)
    complete = len(reports) == len(collections) and all(r.complete for r in reports)
    if complete:
        for report in reports:
            report.tenants, report.sampled = verify_collection(
                source, target, report.collection, options.sample, seed
            )
    return MigrationResult(reports, complete)


def source_collections(settings: Settings, domains: Sequence[str] | None) -> list[str]:
    """The collections to copy: those of the named domains (each must exist), else every
    domain's collection the store has. MigrationError when there is nothing to copy."""
    root = settings.store_path.expanduser()
    if not (root.is_dir() and any(root.iterdir())):
        raise MigrationError(
            f"no embedded store at {root} (give --store or set RETRIEVAL_STORE_PATH)"
        )
    names = [settings.domains[Domain(d)].collection for d in (domains or [d.value for d in Domain])]
    present = [n for n in dict.fromkeys(names) if (root / n / "edge_config.json").exists()]
    if domains and len(present) != len(set(names)):
        missing = sorted(set(names) - set(present))
        raise MigrationError(f"the store at {root} has no collection {', '.join(missing)}")
    if not present:
        raise MigrationError(f"the store at {root} has no collection to migrate")
    return present


def cluster_settings(settings: Settings, args: argparse.Namespace) -> QdrantClusterSettings:
    """The configured cluster settings with ``--shards``, ``--replication``, ``--tenant-shards``
    applied where given."""
    update: dict[str, Any] = {}
    if args.shards is not None:
        update["shard_number"] = args.shards
    if args.replication is not None:
        update["replication_factor"] = args.replication
    if args.tenant_shards is not None:
        update["tenant_shards"] = [t.strip() for t in args.tenant_shards.split(",") if t.strip()]
    try:
        return QdrantClusterSettings.model_validate(
            {**settings.qdrant_cluster.model_dump(), **update}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MigrationError(f"bad cluster setting: {problems}") from None


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy the embedded store into the Qdrant at ``--to`` (default: RETRIEVAL_QDRANT_URL)."""
    settings = Settings.from_cli(args)
    location = args.to or settings.qdrant_url
    if not location:
        raise MigrationError("give the target with --to URL (or set RETRIEVAL_QDRANT_URL)")
    collections = source_collections(settings, args.domain)
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    target = QdrantStore.connect(
        location, api_key, cluster=cluster_settings(settings, args), tuning=settings.store_tuning
    )
    try:
        source = EdgeStore(Path(settings.store_path))
        try:
            options = MigrateOptions(
                batch=args.batch,
                sample=args.sample,
                max_batches=args.max_batches,
                restart=args.restart,
                progress=not args.no_progress,
            )
            result = run_migration(source, target, collections, options)
        finally:
            source.close()
    finally:
        target.close()
    return _print_result(result, location)


def _print_result(result: MigrationResult, location: str) -> int:
    for r in result.reports:
        state = "incomplete"
        if r.complete:
            state = "copied and verified" if result.complete else "copied"
        detail = f", {len(r.tenants)} tenants, {r.sampled} points compared" if r.tenants else ""
        resumed = ", resumed" if r.resumed else ""
        print(
            f"{r.collection}: {r.points} points, {r.copied_now} copied now{resumed}{detail}: "
            f"{state}"
        )
    if not result.complete:
        print(
            f"stopped early (--max-batches); run the same command again to continue into {location}"
        )
        return INCOMPLETE_EXIT
    return 0


def register(sub: Any) -> None:
    """Add the ``migrate`` subcommand."""
    p = sub.add_parser("migrate", help="copy the embedded store into a Qdrant server or cluster")
    p.add_argument(
        "--to",
        help="http(s)://host:port of the Qdrant server or cluster, or path:/dir for "
        "qdrant-client's local mode (default: RETRIEVAL_QDRANT_URL)",
    )
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.add_argument(
        "--domain",
        action="append",
        choices=[d.value for d in Domain],
        help="copy only this domain's collection (repeatable; default: every one the store has)",
    )
    p.add_argument("--batch", type=positive_int, default=DEFAULT_BATCH, help="points per upsert")
    p.add_argument("--shards", type=positive_int, help="shard number of new collections")
    p.add_argument("--replication", type=positive_int, help="replication factor of new collections")
    p.add_argument(
        "--tenant-shards",
        help="comma-separated tenants that get a dedicated shard key (tiered multitenancy)",
    )
    p.add_argument(
        "--sample",
        type=positive_int,
        default=DEFAULT_SAMPLE,
        help="points per collection compared vector by vector after the copy",
    )
    p.add_argument(
        "--max-batches",
        type=positive_int,
        help="stop after this many upserts (exit 3); the next run continues",
    )
    p.add_argument(
        "--restart",
        action="store_true",
        help="delete the target's copy of each collection first, then copy it whole",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=cmd_migrate)
