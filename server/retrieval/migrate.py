"""Copy an embedded store into a Qdrant server or cluster without re-embedding.

Per collection: create it in the target with the source's layout (dense size, part vectors,
payload indexes) and the configured cluster settings, then copy pages of points in id order.
After each page the target's collection metadata records where the copy stands (a checkpoint
under :data:`CHECKPOINT_KEY`), so a run that was interrupted continues from the last page it
recorded; a page copied again is harmless because upserts replace points by id. Once every page
is in, the collection metadata (per-tenant BM25 statistics, see length_stats.py) is copied and
the checkpoint marked complete. Then every collection is verified (migrate_verify.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from server.errors import RetrievalError
from server.progress_bar import ProgressBar
from server.retrieval import point_copy
from server.retrieval.edge_store import EdgeStore
from server.retrieval.qdrant_store import QdrantStore

logger = logging.getLogger(__name__)

CHECKPOINT_KEY = "retrieval_mcp_migration"
"""Key of the migration checkpoint in the target collection's metadata (beside the store's own
metadata key, which the copy fills only at the end)."""
DEFAULT_BATCH = 256
DEFAULT_SAMPLE = 200


class MigrationError(RetrievalError):
    """The target does not match the source, or cannot take it."""


@dataclass(frozen=True)
class MigrateOptions:
    """How a migration runs (the CLI's ``--batch``, ``--max-batches``, ``--restart``)."""

    batch: int = DEFAULT_BATCH
    """Points per page read and upserted."""
    sample: int = DEFAULT_SAMPLE
    """Points per collection compared vector by vector (every point when there are fewer)."""
    max_batches: int | None = None
    """Stop after this many pages in this run (the rest is copied by the next run)."""
    restart: bool = False
    """Start over: delete the target's copy of each collection, then copy it whole (the way to
    bring over a store that changed after it was migrated, or to repair a target that failed
    verification)."""
    progress: bool = True
    """A tqdm bar per collection on stderr."""


@dataclass
class Checkpoint:
    """Where the copy of one collection stands (stored in the target's collection metadata)."""

    next_offset: str | None = None
    copied: int = 0
    pages_done: bool = False
    """Every page is in (the metadata may still be missing)."""
    complete: bool = False
    """Pages and metadata are in."""

    @classmethod
    def read(cls, target: QdrantStore, name: str) -> Checkpoint:
        metadata = target.client.get_collection(name).config.metadata or {}
        raw = metadata.get(CHECKPOINT_KEY)
        if not isinstance(raw, dict):
            return cls()
        offset = raw.get("next_offset")
        return cls(
            None if offset is None else str(offset),
            int(raw.get("copied") or 0),
            bool(raw.get("pages_done")),
            bool(raw.get("complete")),
        )

    def write(self, target: QdrantStore, name: str) -> None:
        state = {
            "next_offset": self.next_offset,
            "copied": self.copied,
            "pages_done": self.pages_done,
            "complete": self.complete,
        }
        target.client.update_collection(name, metadata={CHECKPOINT_KEY: state})


@dataclass
class CollectionReport:
    """One collection's outcome: points in the source, pages copied by this run, state."""

    collection: str
    points: int
    copied_now: int = 0
    complete: bool = False
    resumed: bool = False
    tenants: dict[str, int] = field(default_factory=dict)
    sampled: int = 0


@dataclass
class _Budget:
    """Pages this run may still copy (None: no limit)."""

    left: int | None

    def spend(self) -> bool:
        """Take one page; False when none is left."""
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def prepare_collection(source: EdgeStore, target: QdrantStore, name: str) -> None:
    """Create the target collection like the source's (or check an existing one matches)."""
    layout = point_copy.edge_layout(source, name)
    terms = source.bm25_term_space(name)
    if target.has_collection(name):
        existing = point_copy.target_layout(target, name)
        if existing.dense_dim != layout.dense_dim or (existing.part_vectors != layout.part_vectors):
            raise MigrationError(
                f"collection {name!r} already exists in the target with other vectors "
                f"(dense {existing.dense_dim}, parts {existing.part_vectors}; the store has "
                f"dense {layout.dense_dim}, parts {layout.part_vectors}); delete it there first"
            )
        have = target.bm25_term_space(name)
        if have != terms and target.count(name, None):
            raise MigrationError(
                f"collection {name!r} already exists in the target with BM25 terms in another "
                f"layout ({have}; the store has {terms}); delete it there first"
            )
    target.ensure_collection(name, layout.dense_dim, layout.payload_indexes, layout.part_vectors)
    # the copy's BM25 vectors are laid out as the source's (term_space.py), so they compare
    # equal point by point
    target.record_term_space(name, terms)


def copy_collection(
    source: EdgeStore,
    target: QdrantStore,
    name: str,
    options: MigrateOptions,
    budget: _Budget,
    on_page: Callable[[int], None] | None = None,
) -> CollectionReport:
    """Copy one collection's points from its checkpoint on, then its metadata.

    ``on_page(copied)`` runs with the number of points copied so far (this run and earlier
    ones) once the checkpoint is read and after each page is upserted and recorded.
    """
    report = CollectionReport(name, source.count(name, None))
    if options.restart and target.has_collection(name):
        target.client.delete_collection(name)
    prepare_collection(source, target, name)
    checkpoint = Checkpoint.read(target, name)
    if checkpoint.complete:
        report.complete = True
        return report
    report.resumed = checkpoint.copied > 0
    if on_page is not None:
        on_page(checkpoint.copied)
    while not checkpoint.pages_done:
        if not budget.spend():
            return report
        points, offset = point_copy.edge_page(source, name, checkpoint.next_offset, options.batch)
        target.upsert(name, points)
        checkpoint = Checkpoint(offset, checkpoint.copied + len(points), offset is None)
        checkpoint.write(target, name)
        report.copied_now += len(points)
        if on_page is not None:
            on_page(checkpoint.copied)
    target.write_meta(name, source.read_meta(name))
    Checkpoint(None, checkpoint.copied, pages_done=True, complete=True).write(target, name)
    report.complete = True
    return report


def copy_all(
    source: EdgeStore,
    target: QdrantStore,
    collections: Sequence[str],
    options: MigrateOptions,
) -> list[CollectionReport]:
    """Copy each collection in turn (stopping early when ``options.max_batches`` runs out)."""
    budget = _Budget(options.max_batches)
    reports: list[CollectionReport] = []
    for name in collections:
        bar = _progress_bar(name, source.count(name, None), options.progress)
        try:
            report = copy_collection(source, target, name, options, budget, _moved_to(bar))
        finally:
            bar.close()
        reports.append(report)
        if not report.complete:
            break
    return reports


def _moved_to(bar: ProgressBar) -> Callable[[int], None]:
    """A callback setting the bar to the number of points copied so far."""
    return lambda copied: bar.update(copied - bar.n)


def _progress_bar(name: str, total: int, enabled: bool) -> ProgressBar:
    return ProgressBar(total, unit="pt", desc=f"migrate {name}", enabled=enabled)
