"""Disk and file faults of the embedded store: refused or reported in one line, never a crash.

Invariants: a write that would leave less than the reserve free is refused (DiskFullError, one
line) while reads keep working, and goes through again once space is free; every engine failure
on damaged files arrives as a one-line StoreError naming the file and the recovery, for every
file of a segment truncated or overwritten (run in a subprocess, so a crash would show as its
exit code instead of killing the test run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.errors import DamagedStoreError, DiskFullError
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.disk_space import MIB, DiskGuard, batch_bytes, free_bytes
from server.retrieval.edge_store import EdgeStore
from server.retrieval.engine_errors import REPAIR_HINT
from server.retrieval.store import HybridQuery
from tests.retrieval.test_shared_store import COLLECTION, DIM, SharedStoreClient, _Owner, _point

REPO_ROOT = Path(__file__).resolve().parents[2]


def _filled_store(root: Path, n: int = 40) -> None:
    store = EdgeStore(root, disk_reserve_mb=0)
    try:
        store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        store.upsert(COLLECTION, [_point(i, "a") for i in range(n)])
        store.finish_writes(COLLECTION)
    finally:
        store.close()


# --------------------------------------------------------------------------- full disk


def test_the_check_refuses_when_the_reserve_exceeds_the_free_space(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)
    over = DiskGuard(tmp_path, free + 64 * MIB)
    with pytest.raises(DiskFullError) as exc:
        over.require(action="write 3 chunks")
    message = str(exc.value)
    assert "\n" not in message and "write 3 chunks" in message
    assert "RETRIEVAL_DISK_RESERVE_MB" in message and "MiB free" in message
    DiskGuard(tmp_path, 1).require(action="write")  # a reserve below the free space passes
    DiskGuard(tmp_path, 0).require(batch=2**62)  # 0 switches the check off
    with pytest.raises(DiskFullError):  # a batch bigger than a quarter of the free space
        DiskGuard(tmp_path, 1).require(batch=free // 4 + MIB)


def test_batch_estimate_counts_vectors_and_payload() -> None:
    points = [_point(i, "a") for i in range(10)]
    size = batch_bytes(points)
    assert size >= 10 * (4 * DIM + 8)
    assert batch_bytes(points * 2) == 2 * size


def test_writes_are_refused_and_reads_keep_working_below_the_reserve(tmp_path: Path) -> None:
    root = tmp_path / "s"
    _filled_store(root)
    huge = DiskGuard(root, free_bytes(tmp_path) + 1024 * MIB)
    store = EdgeStore(root, disk_reserve_mb=0)
    try:
        assert store.count(COLLECTION, "a") == 40  # loaded while there was room
        store.disk = huge  # the disk fills up under a running process
        for write in (
            lambda: store.upsert(COLLECTION, [_point(99, "a")]),
            lambda: store.delete(COLLECTION, "a"),
            lambda: store.finish_writes(COLLECTION),
            lambda: store.ensure_collection("other", DIM, BASE_PAYLOAD_INDEXES),
        ):
            with pytest.raises(DiskFullError):
                write()
        assert store.count(COLLECTION, "a") == 40  # nothing written, nothing lost
        query = HybridQuery(tenant="a", limit=3, candidates=10, dense=_point(1, "a").dense)
        assert len(store.query(COLLECTION, query).final) == 3
        assert not store.has_collection("other")
        store.disk = DiskGuard(root, 1)  # as after space was freed: the next write goes through
        store.upsert(COLLECTION, [_point(99, "a")])
        assert store.count(COLLECTION, "a") == 41
    finally:
        store.close()


def test_a_process_that_would_load_on_a_full_disk_refuses_instead(tmp_path: Path) -> None:
    """Loading a collection fills pages of the engine's preallocated files (SIGBUS on a full
    disk): a process that has not loaded it yet gets a one-line error instead."""
    root = tmp_path / "s"
    _filled_store(root)
    store = EdgeStore(root, disk_reserve_mb=(free_bytes(tmp_path) // MIB) + 1024)
    try:
        with pytest.raises(DiskFullError, match=f"open collection {COLLECTION!r}"):
            store.count(COLLECTION, "a")
        store.disk = DiskGuard(root, 1)
        assert store.count(COLLECTION, "a") == 40
    finally:
        store.close()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **env},
        cwd=REPO_ROOT,
        timeout=600,
    )


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> object:
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 64 MiB tmpfs here ({done.stderr.strip() or 'not root'})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


_OWNER = f"""
import sys
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.shared_store import SharedStore
from tests.retrieval.test_shared_store import _point
store = SharedStore(sys.argv[1], disk_reserve_mb=16)
store.ensure_collection({COLLECTION!r}, {DIM}, BASE_PAYLOAD_INDEXES)
store.upsert({COLLECTION!r}, [_point(i, "a") for i in range(4)])
store.finish_writes({COLLECTION!r})
print("ready", flush=True)
n = 100
for line in sys.stdin:
    if line.strip() == "count":
        print("count", store.count({COLLECTION!r}, None), flush=True)
    elif line.strip() == "write":
        n += 1
        try:
            store.upsert({COLLECTION!r}, [_point(n, "a")])
            print("written", flush=True)
        except Exception as exc:
            print("refused", type(exc).__name__, str(exc).replace(chr(10), "<newline>"), flush=True)
store.close()
"""


@pytest.mark.slow
def test_a_full_disk_refuses_writes_keeps_serving_reads_and_recovers(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    """On a real 64 MiB file system (where the engine used to die of SIGBUS): the store owner
    refuses writes in one line, keeps serving searches to itself and to other processes, a
    CLI ingest exits 2 with one ``error:`` line, and writes go through once space is freed."""
    root = small_tmpfs / "store"
    owner = _Owner(root, _OWNER)
    try:
        owner.expect("ready")
        filler = small_tmpfs / "filler"
        with filler.open("wb") as out:  # leave 8 MiB: below the 16 MiB reserve
            out.write(b"\0" * max(0, free_bytes(small_tmpfs) - 8 * MIB))
        assert free_bytes(small_tmpfs) < 16 * MIB
        owner.send("write")
        refused = owner.expect("refused")
        assert "DiskFullError" in refused and "<newline>" not in refused
        owner.send("count")
        assert owner.expect("count") == "count 4"
        with SharedStoreClient(root) as client:  # other processes keep searching through it
            found = client.query(COLLECTION, HybridQuery("a", 3, 10, dense=_point(1, "a").dense))
            assert len(found.final) == 3
        docs = tmp_path / "docs"
        docs.mkdir()
        (docs / "lava.md").write_text("# Volcanoes\n\nMagma rises through the crust.\n")
        env = {"RETRIEVAL_STORE_PATH": str(root), "RETRIEVAL_RERANKER_MODEL": "none"}
        ingest = _cli("ingest", str(docs), "--domain", "docs", "--tenant", "t", env=env)
        assert ingest.returncode == 2, (ingest.returncode, ingest.stderr[-2000:])
        errors = [line for line in ingest.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "not enough free disk space" in errors[0]
        assert "Traceback" not in ingest.stderr
        filler.unlink()  # space freed: the owner writes again, nothing restarted
        owner.send("write")
        assert owner.expect("written") == "written"
        owner.send("count")
        assert owner.expect("count") == "count 5"
        assert owner.proc.poll() is None
    finally:
        owner.stop()


# --------------------------------------------------------------------------- read-only store


@pytest.fixture
def read_only_view(tmp_path: Path) -> object:
    """A read-only bind mount of tmp_path/"rw" (root ignores file modes, not a ro mount)."""
    source, view = tmp_path / "rw", tmp_path / "ro"
    source.mkdir()
    view.mkdir()
    bind = subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip("cannot bind-mount here (needs root and mount rights); read-only untested")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip("cannot remount a bind mount read-only here")
        yield source, view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


@pytest.mark.slow
def test_a_read_only_store_fails_in_one_line(read_only_view: tuple[Path, Path]) -> None:
    """The engine maps its files read-write, so it cannot even search a read-only store: the
    CLI says so in one line (exit 2) and names the way out, for reads and writes alike."""
    source, view = read_only_view
    _filled_store(source / "store")
    env = {"RETRIEVAL_STORE_PATH": str(view / "store"), "RETRIEVAL_RERANKER_MODEL": "none"}
    for args in (
        ["search", "lava", "--tenant", "a", "--mode", "hybrid"],
        ["delete", "--tenant", "a", "--all"],
    ):
        done = _cli(*args, env=env)
        assert done.returncode == 2, done.stderr[-2000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "not writable" in errors[0], done.stderr[-2000:]
        assert "copy it to a writable place" in errors[0] and "Traceback" not in done.stderr
    assert EdgeStore(source / "store", 0).count(COLLECTION, None) == 40  # nothing lost


# --------------------------------------------------------------------------- damaged segments

_PROBE = f"""
import os, shutil, subprocess, sys
from pathlib import Path
from server.errors import StoreError
from server.retrieval.edge_store import EdgeStore
from server.retrieval.store import HybridQuery
pristine, how, copy = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
QUERY = HybridQuery(tenant="a", limit=5, candidates=10, dense=[1.0] + [0.0] * {DIM - 1})
OPS = {{
    "count": lambda s: s.count({COLLECTION!r}, None),
    "query": lambda s: s.query({COLLECTION!r}, QUERY),
    "scroll": lambda s: s.scroll({COLLECTION!r}, "a", limit=100),
    "retrieve": lambda s: s.retrieve({COLLECTION!r}, "a", ["00000000-0000-0000-0000-000000000001"]),
}}
for relative in sys.argv[4:]:
    shutil.rmtree(copy, ignore_errors=True)
    subprocess.run(["cp", "-a", str(pristine), str(copy)], check=True)  # keeps the files sparse
    path = copy / relative
    size = path.stat().st_size
    if how == "empty":
        path.write_bytes(b"")
    elif how == "half":
        os.truncate(path, size // 2)
    else:  # garbage over the first bytes (at most 64 KiB), size unchanged
        with path.open("r+b") as out:
            out.write(os.urandom(min(size, 65536)))
    store = EdgeStore(copy, 0)
    for op, run in OPS.items():
        try:
            run(store)
            print(relative, op, "ok", flush=True)
        except StoreError as exc:
            text = str(exc).replace(chr(10), "<newline>")
            print(relative, op, type(exc).__name__, text, flush=True)
    store.close()
"""


@pytest.mark.slow
@pytest.mark.parametrize("how", ["empty", "half", "garbage"])
def test_every_damaged_file_is_reported_in_one_line_never_a_crash(tmp_path: Path, how: str) -> None:
    """Each file of the collection damaged in turn (one subprocess runs them all: a crash shows
    as its exit code and the last file it printed)."""
    pristine = tmp_path / "pristine"
    _filled_store(pristine)
    files = sorted(
        str(p.relative_to(pristine))
        for p in (pristine / COLLECTION).rglob("*")
        if p.is_file() and p.stat().st_size
    )
    assert len(files) > 10
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(pristine), how, str(tmp_path / "copy"), *files],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        timeout=900,
    )
    last = done.stdout.splitlines()[-1:] or ["nothing"]
    assert done.returncode == 0, f"exit {done.returncode} after {last}: {done.stderr[-800:]}"
    outcomes = [line.split(" ", 3) for line in done.stdout.splitlines()]
    assert len(outcomes) == 4 * len(files)
    damaged = [o for o in outcomes if o[2] == "DamagedStoreError"]
    for relative, op, outcome, *message in outcomes:
        assert outcome in {"ok", "StoreError", "DamagedStoreError"}, (relative, op, outcome)
        assert "<newline>" not in "".join(message), (relative, op, message)
    for relative, _op, _outcome, message in damaged:
        assert REPAIR_HINT in message and str(tmp_path / "copy") in message, (relative, message)
    assert damaged


def test_a_damaged_vector_file_names_the_file_and_the_recovery(tmp_path: Path) -> None:
    root = tmp_path / "s"
    _filled_store(root)
    (vectors,) = (root / COLLECTION).rglob("vector_storage-dense/vectors/chunk_0.mmap")
    os.truncate(vectors, 0)
    store = EdgeStore(root, 0)
    try:
        assert store.count(COLLECTION, "a") == 40  # what does not need the vectors still works
        with pytest.raises(DamagedStoreError) as exc:
            store.query(COLLECTION, HybridQuery(tenant="a", limit=3, candidates=9, dense=[1.0] * 4))
        message = str(exc.value)
        assert "\n" not in message and str(vectors.parent) in message
        assert "doctor --repair" in message
    finally:
        store.close()
