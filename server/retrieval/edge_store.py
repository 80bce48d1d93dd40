"""Embedded store on Qdrant Edge (Qdrant's engine in-process): one shard per collection.

The store directory admits one process at a time: an advisory lock file names the holder (and,
when the holder shares the store, its socket; see shared_store.py), so a second opener gets a
clear StoreLockedError instead of Qdrant's WAL error.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import qdrant_edge as qe

from server.errors import DiskFullError, StoreError, StoreLockedError
from server.retrieval import edge_convert, edge_tuning, term_space
from server.retrieval.disk_space import MIB, DiskGuard, batch_bytes
from server.retrieval.edge_convert import edge_filter, edge_sparse
from server.retrieval.engine_errors import engine_errors, translate
from server.retrieval.exit_release import release_lock_at_exit
from server.retrieval.query_plan import QueryPlan
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    PARTS_VECTOR,
    SPARSE_VECTOR,
    VALUES_LIMIT,
    HybridQuery,
    IndexKind,
    QueryResponse,
    ScoredPoint,
    StoredPoint,
    StoredVectors,
    changed_meta,
    filter_conditions,
    stored_vectors,
)
from server.retrieval.store_identity import StoreIdentity, process_alive, process_start_time
from server.retrieval.store_tuning import StoreTuning
from server.retrieval.term_space import TERM_SPACE_FILE
from server.retrieval.types import FilterValue

LOCK_FILE = "store.lock"
META_FILE = "retrieval_meta.json"
DEFAULT_DISK_RESERVE_MB = 256
"""``Settings.disk_reserve_mb``'s default (the reasoning is there)."""


def _payload_selector(fields: Sequence[str] | None, omit: Sequence[str]) -> Any:
    """Qdrant Edge's payload selection for :meth:`EdgeStore.scroll`'s ``fields`` / ``omit``."""
    if fields is not None:
        return list(fields)
    return qe.PayloadSelector.Exclude(list(omit)) if omit else True


def _edge_filter(tenant: str | None, filters: Mapping[str, FilterValue] | None) -> qe.Filter | None:
    return edge_filter(filter_conditions(tenant, filters))


def _edge_vectors(point: StoredPoint) -> dict[str, Any]:
    vectors: dict[str, Any] = {DENSE_VECTOR: point.dense, SPARSE_VECTOR: edge_sparse(point.sparse)}
    if point.parts:
        vectors[PARTS_VECTOR] = point.parts
    return vectors


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says: the holder line, its pid, and the notes below it.

    Everything here is a claim, not a proof (the file may have been copied with its store, or
    left by a killed holder): ``started`` (the holder's start time, see
    :func:`~server.retrieval.store_identity.process_start_time`) tells a live holder from a
    recycled pid, and ``store`` (the identity of the directory it locked) a copy from the
    original. ``socket`` is a hint for clients, never a path to remove.
    """

    holder: str = ""
    pid: int | None = None
    socket: str | None = None
    started: int | None = None
    store: StoreIdentity | None = None

    @classmethod
    def parse(cls, text: str) -> LockInfo:
        lines = text.strip().splitlines()
        holder = lines[0].strip() if lines else ""
        match = re.match(r"pid (\d+)", holder)
        notes = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
        started = notes.get("started", "")
        return cls(
            holder,
            int(match.group(1)) if match else None,
            notes.get("socket"),
            int(started) if started.isdigit() else None,
            StoreIdentity.parse(notes.get("store")),
        )

    def holder_alive(self) -> bool:
        """True when the recorded holder still runs (same pid and start time)."""
        return process_alive(self.pid, self.started)


def collection_dense_dim(root: Path, name: str) -> int | None:
    """The dense vector size collection ``name`` of the store at ``root`` was created with
    (None when its config is missing or unreadable)."""
    try:
        config = json.loads((Path(root) / name / "edge_config.json").read_text())
        return int(config["vectors"][DENSE_VECTOR]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_lock_info(root: Path) -> LockInfo:
    """The current content of the store's lock file (empty when free or unreadable)."""
    try:
        return LockInfo.parse((Path(root) / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return LockInfo()


class StoreLock:
    """An exclusive advisory lock on the store directory, naming its holder."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._handle: IO[str] | None = None
        self.previous = LockInfo()
        """What the lock file said before this process took it (e.g. a dead holder's socket)."""

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = LockInfo.parse(handle.read()).holder or "another process"
            handle.close()
            raise StoreLockedError(
                f"the store at {self.path.parent} is in use by {holder}. Stop that process, "
                "or point this one at another store (RETRIEVAL_STORE_PATH) or a Qdrant server "
                "(RETRIEVAL_QDRANT_URL)."
            ) from None
        handle.seek(0)
        self.previous = LockInfo.parse(handle.read())
        handle.seek(0)
        handle.truncate()
        command = " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:2])
        handle.write(f"pid {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        self._handle = handle
        started = process_start_time(os.getpid())
        if started is not None:
            self.note("started", str(started))
        self.note("store", str(StoreIdentity.of(self.path.parent)))
        release_lock_at_exit(self)  # even when an exit skips close()

    def release_at_exit(self) -> None:
        """:meth:`release` (exit_release.py)."""
        self.release()

    def note(self, key: str, value: str) -> None:
        """Add a ``key value`` line to the held lock file (read by other processes)."""
        if self._handle is not None:
            self._handle.seek(0, os.SEEK_END)
            self._handle.write(f"\n{key} {value}")
            self._handle.flush()

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.seek(0)
                self._handle.truncate()
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def holds_store(root: Path) -> bool:
    """Whether ``root`` is a store's folder: every process that opens a store writes its lock
    file there, and no other program does (an existing folder without it is, say, a mistyped
    --store naming a notes folder)."""
    try:
        return (root / LOCK_FILE).is_file()
    except OSError:  # a folder on its path cannot be entered: store_path_problem says so
        return False


def store_path_problem(root: Path) -> str | None:
    """Why ``root`` can never hold a store: it is a file, or a path through one (None when it
    can). Checked before "no store here yet" messages too: those would send the user to an
    ingest that fails."""
    try:
        blocker = next((p for p in (root, *root.parents) if p.is_file()), None)
    except OSError as exc:  # e.g. a folder on the path that this user cannot enter
        return f"store path {root} cannot be reached: {exc.strerror or exc} ({exc.filename})"
    if blocker is None:
        return None
    return (
        f"store path {root} is not a folder: {blocker} is a file; point RETRIEVAL_STORE_PATH "
        "(or --store) at a folder, new or holding a store"
    )


class EdgeStore:
    """Persistent embedded store: ``root/<collection>/`` holds one Qdrant Edge shard each.

    Every write first checks the free disk space against ``disk_reserve_mb`` (see
    disk_space.py) and the engine's failures arrive as one-line StoreErrors (engine_errors.py).
    """

    def __init__(
        self,
        root: Path,
        disk_reserve_mb: int = DEFAULT_DISK_RESERVE_MB,
        tuning: StoreTuning | None = None,
    ) -> None:
        """Open (creating) the store directory. ``tuning``: layout of collections created from
        now on, and the quantized-search parameters (default: :class:`StoreTuning`'s)."""
        self.root = Path(root).expanduser()
        self.tuning = tuning or StoreTuning()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # one probe name per process: processes taking over a store at the same moment
            # must not remove each other's probe (that read as "not writable")
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DiskFullError(
                    f"the disk of the store at {self.root} is full; free some space and retry"
                ) from None
            problem = store_path_problem(self.root)
            if problem is not None:  # "not writable (File exists)" said nothing useful
                raise StoreError(problem) from None
            raise StoreError(
                f"store path {self.root} is not writable ({exc.strerror or exc}); the embedded "
                "store needs write access even to search (its engine maps its files "
                "read-write): make it writable, or copy it to a writable place and set "
                "RETRIEVAL_STORE_PATH there"
            ) from None
        self.disk = DiskGuard(self.root, disk_reserve_mb * MIB)
        self.lock = StoreLock(self.root)
        self.lock.acquire()
        self._shards: dict[str, qe.EdgeShard] = {}
        self._spaces: dict[str, term_space.TermSpace] = {}
        self._guard = threading.RLock()

    def _shard_dir(self, name: str) -> Path:
        return self.root / name

    def _shard(self, name: str) -> qe.EdgeShard:
        with self._guard:
            shard = self._shards.get(name)
            if shard is not None:
                return shard
            path = self._shard_dir(name)
            if not (path / "edge_config.json").exists():
                raise StoreError(f"collection {name!r} does not exist in {self.root}")
            # loading fills pages of the engine's preallocated files: on a full disk that is a
            # SIGBUS, so a process that has not loaded the collection yet refuses instead (one
            # that has, such as a running server or store owner, keeps searching)
            self.disk.require(action=f"open collection {name!r}")
            try:
                shard = qe.EdgeShard.load(str(path))
            except Exception as exc:  # qdrant_edge raises a bare Exception
                if "WouldBlock" in str(exc):
                    raise StoreLockedError(
                        f"collection {name!r} in {self.root} is open in another process"
                    ) from None
                raise translate(exc, self.root, name, "open", loading=True) from None
            self._shards[name] = shard
            return shard

    def shard(self, name: str) -> qe.EdgeShard:
        """The open Qdrant Edge shard of a collection (for whole-store tools: migrate);
        StoreError when it does not exist."""
        return self._shard(name)

    def has_collection(self, name: str) -> bool:
        return (self._shard_dir(name) / "edge_config.json").exists()

    def has_part_vectors(self, name: str) -> bool:
        try:
            config = json.loads((self._shard_dir(name) / "edge_config.json").read_text())
        except (OSError, ValueError):
            return False
        return PARTS_VECTOR in (config.get("vectors") or {})

    @engine_errors
    def ensure_collection(
        self,
        name: str,
        dense_dim: int,
        payload_indexes: Mapping[str, IndexKind],
        part_vectors: bool = False,
    ) -> None:
        """Create ``name`` laid out by :attr:`tuning` if it does not exist (an existing one keeps
        its layout), and add any missing payload index."""
        with self._guard:
            if not self.has_collection(name):
                self.disk.require(action=f"create collection {name!r}")
                config = edge_tuning.collection_config(self.tuning, dense_dim, part_vectors)
                self._shards[name] = qe.EdgeShard.create(str(self._shard_dir(name)), config)
                self._record_term_space(
                    name, term_space.new_collections(self.tuning.tenant_term_spaces)
                )
            shard = self._shard(name)
            existing = set(shard.info().payload_schema)
            for field_name, kind in payload_indexes.items():
                if field_name not in existing:
                    params = edge_tuning.index_params(self.tuning, kind)
                    shard.update(qe.UpdateOperation.create_field_index(field_name, params))

    @engine_errors
    def upsert(
        self,
        name: str,
        points: Sequence[StoredPoint],
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        if not points:
            return
        self.disk.require(batch_bytes(points), f"write {len(points)} chunks")
        with self._guard:
            stored = term_space.stored_points(points, self.bm25_term_space(name))
            edge_points = [qe.Point(p.id, _edge_vectors(p), p.payload) for p in stored]
            self._shard(name).update(qe.UpdateOperation.upsert_points(edge_points))
            if meta_deltas:
                self.adjust_meta(name, meta_deltas)

    @engine_errors
    def update_sparse(
        self, name: str, tenant: str, vectors: Sequence[tuple[str, SparseVector]]
    ) -> None:
        if not vectors:
            return
        self.disk.require(12 * sum(len(v.indices) for _, v in vectors), "update sparse vectors")
        stored = term_space.stored_vectors(vectors, tenant, self.bm25_term_space(name))
        updates = [qe.PointVectors(pid, {SPARSE_VECTOR: edge_sparse(v)}) for pid, v in stored]
        self._shard(name).update(qe.UpdateOperation.update_vectors(updates))

    @engine_errors
    def query(self, name: str, request: HybridQuery) -> QueryResponse:
        """The two round trips of the request's :class:`QueryPlan` (query_plan.py), each one
        batch on the shard."""
        shard = self._shard(name)
        request = term_space.stored_query(request, self.bm25_term_space(name))
        # rescored candidates carry the exact cosines: round 2 scores only what each missed
        plan = QueryPlan.build(request, scores_exact=self.tuning.rescore)
        results = shard.query_batch(edge_convert.round_one(plan.round_one, self.tuning))
        second = plan.round_two([edge_convert.found(points) for points in results])
        answers = (
            shard.query_batch(edge_convert.round_two(second.requests, self.tuning))
            if second.requests
            else []
        )
        return second.response(
            [edge_convert.found(points) for points in answers],
            lambda ids: self.retrieve(name, request.tenant, ids),
        )

    @engine_errors
    def retrieve(self, name: str, tenant: str, ids: Sequence[str]) -> list[ScoredPoint]:
        records = self._shard(name).retrieve(list(ids), with_payload=True, with_vector=False)
        found = [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return [p for p in found if p.payload.get("tenant") == tenant]

    @engine_errors
    def vectors(self, name: str, tenant: str, ids: Sequence[str]) -> list[StoredVectors]:
        records = self._shard(name).retrieve(list(ids), with_payload=True, with_vector=True)
        return [
            stored_vectors(str(r.id), dict(r.payload or {}), r.vector)
            for r in records
            if (r.payload or {}).get("tenant") == tenant
        ]

    @engine_errors
    def scroll(
        self,
        name: str,
        tenant: str | None,
        filters: Mapping[str, FilterValue] | None = None,
        limit: int = 256,
        offset: str | int | None = None,
        *,
        fields: Sequence[str] | None = None,
        omit: Sequence[str] = (),
    ) -> tuple[list[ScoredPoint], str | int | None]:
        records, next_offset = self._shard(name).scroll(
            qe.ScrollRequest(
                offset=offset,
                limit=limit,
                filter=_edge_filter(tenant, filters),
                with_payload=_payload_selector(fields, omit),
                with_vector=False,
            )
        )
        points = [ScoredPoint(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return points, None if next_offset is None else str(next_offset)

    @engine_errors
    def delete(
        self,
        name: str,
        tenant: str,
        filters: Mapping[str, FilterValue] | None = None,
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        flt = _edge_filter(tenant, filters)
        assert flt is not None
        self.disk.require(action="delete")  # the WAL grows before anything is freed
        with self._guard:
            self._shard(name).update(qe.UpdateOperation.delete_points_by_filter(flt))
            if meta_deltas:
                self.adjust_meta(name, meta_deltas)

    @engine_errors
    def count(
        self, name: str, tenant: str | None, filters: Mapping[str, FilterValue] | None = None
    ) -> int:
        if not self.has_collection(name):
            return 0
        flt = _edge_filter(tenant, filters)
        return int(self._shard(name).count(qe.CountRequest(exact=True, filter=flt)))

    @engine_errors
    def values(self, name: str, tenant: str, key: str, limit: int = VALUES_LIMIT) -> list[str]:
        if not self.has_collection(name):
            return []
        request = qe.FacetRequest(key=key, limit=limit, filter=_edge_filter(tenant, None))
        return [str(hit.value) for hit in self._shard(name).facet(request).hits]

    def read_meta(self, name: str) -> dict[str, Any]:
        path = self._shard_dir(name) / META_FILE
        if not path.exists():
            return {}
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    @engine_errors
    def write_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        text = json.dumps(dict(meta), indent=2, sort_keys=True)
        self._write_record(name, META_FILE, text, "write the metadata of")

    def _write_record(self, name: str, filename: str, text: str, action: str) -> None:
        """Replace one small file beside the collection atomically (written aside, renamed)."""
        path = self._shard_dir(name) / filename
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(text)
        except OSError as exc:  # a small file: ENOSPC arrives as an error here, not as SIGBUS
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise translate(exc, self.root, name, action) from None
        os.replace(tmp, path)

    def bm25_term_space(self, name: str) -> term_space.TermSpace:
        """The collection's BM25 term space (term_space.py), read from its record once the
        collection exists (before, the shared space, not kept: creation records the layout)."""
        space = self._spaces.get(name)
        if space is None:
            path = self._shard_dir(name) / TERM_SPACE_FILE
            recorded = path.read_text().strip() if path.exists() else None
            space = term_space.term_space(recorded)
            if self.has_collection(name):
                self._spaces[name] = space
        return space

    def _record_term_space(self, name: str, space: term_space.TermSpace) -> None:
        self._write_record(name, TERM_SPACE_FILE, space + "\n", "record the BM25 layout of")
        self._spaces[name] = space

    def adjust_meta(
        self,
        name: str,
        deltas: Mapping[str, Any],
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._guard:
            meta = changed_meta(self.read_meta(name), deltas, values)
            self.write_meta(name, meta)
            return meta

    @engine_errors
    def finish_writes(self, name: str) -> None:
        self.disk.require(action="optimize")
        shard = self._shard(name)
        shard.optimize()  # builds HNSW / merges segments once per batch, not per upsert
        shard.flush()

    def set_aside(self, name: str) -> Path:
        """Move a (damaged) collection to ``<root>/.damaged/<name>-<time>``; returns the new path.

        The collection no longer exists afterwards: the next ingest creates it again. Not part
        of the VectorStore protocol: only the process holding the store may do it.
        """
        with self._guard:
            shard = self._shards.pop(name, None)
            self._spaces.pop(name, None)  # the record moves with the collection
            if shard is not None:
                with contextlib.suppress(Exception):
                    shard.close()
            target = self.root / ".damaged" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
            target.parent.mkdir(exist_ok=True)
            os.replace(self._shard_dir(name), target)
            return target

    def close(self) -> None:
        with self._guard:
            for shard in self._shards.values():
                with contextlib.suppress(Exception):
                    shard.flush()
                    shard.close()
            self._shards.clear()
            self.lock.release()
