"""One embedded store, many processes: an owner serves it on a Unix socket, others forward.

Real processes, real Qdrant Edge stores, real sockets: a subprocess owner and this test process
as the client (or the other way round), SIGKILL handovers, stale sockets, silent owners.
"""

from __future__ import annotations

import inspect
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.errors import InvalidRequestError, StoreError, StoreLockedError
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore, read_lock_info
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble, open_store
from server.retrieval.owner_socket import socket_is_live
from server.retrieval.shared_store import (
    FORWARDED_METHODS,
    PROTOCOL_METHODS,
    SharedStore,
    socket_paths_for,
)
from server.retrieval.sparse import SparseVector
from server.retrieval.store import HybridQuery, StoredPoint, VectorStore, point_id
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DIM = 4
COLLECTION = "shared"


def _point(i: int, tenant: str) -> StoredPoint:
    dense = [0.0] * DIM
    dense[i % DIM] = 1.0
    return StoredPoint(
        id=point_id(tenant, "docs", f"s{i}", i),
        dense=dense,
        sparse=SparseVector([i], [1.0]),
        payload={"tenant": tenant, "doc_id": f"d{i}", "source": f"s{i}", "chunk_index": i},
    )


# Self-contained: importing this test module in the owner would pull in torch (slow).
OWNER_SCRIPT = f"""
import sys
from server.retrieval.shared_store import SharedStore
from server.retrieval.sparse import SparseVector
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.store import StoredPoint, point_id
COLLECTION, DIM = {COLLECTION!r}, {DIM}
{inspect.getsource(_point)}
store = SharedStore(sys.argv[1])
print("owner" if store.is_owner else "client", flush=True)
store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
store.upsert(COLLECTION, [_point(i, "a") for i in range(4)])
store.finish_writes(COLLECTION)
print("ready", flush=True)
for line in sys.stdin:  # commands from the test: count, quit
    if line.strip() == "count":
        print("count", store.count(COLLECTION, None), flush=True)
    elif line.strip() == "quit":
        break
store.close()
print("closed", flush=True)
"""


class _Owner:
    """A subprocess that opens the store first, fills it and keeps serving it."""

    def __init__(self, root: Path, script: str = OWNER_SCRIPT) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
        )

    def expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith(word), f"expected {word!r} from the owner, got {line!r}"
        return line

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def owner_process(tmp_path: Path) -> Iterator[_Owner]:
    owner = _Owner(tmp_path / "store")
    try:
        owner.expect("owner")
        owner.expect("ready")
        yield owner
    finally:
        owner.stop()


def _query(tenant: str, i: int) -> HybridQuery:
    return HybridQuery(tenant=tenant, limit=10, candidates=10, dense=_point(i, tenant).dense)


# --------------------------------------------------------------------------- in one process


def test_owner_socket_is_private_and_recorded(tmp_path: Path) -> None:
    owner = SharedStore(tmp_path / "s")
    try:
        info = read_lock_info(tmp_path / "s")
        assert info.pid == os.getpid()
        assert info.socket == str(tmp_path / "s" / ".ipc" / "owner.sock")
        sock = Path(info.socket)
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    finally:
        owner.close()
    assert not sock.exists()
    assert read_lock_info(tmp_path / "s").pid is None


def test_errors_arrive_as_the_owners_exception_types(tmp_path: Path) -> None:
    owner = SharedStore(tmp_path / "s")
    client = SharedStore(tmp_path / "s")
    try:
        assert not client.is_owner and client.owner_pid == os.getpid()
        client.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        with pytest.raises(StoreError, match="does not exist"):
            client.query("missing", _query("a", 0))
        with pytest.raises(InvalidRequestError, match="'tenant' cannot be used as a filter"):
            client.count(COLLECTION, "a", {"tenant": "b"})
        with pytest.raises(TypeError, match="columns"):  # an argument scroll does not take
            client.scroll(COLLECTION, "a", limit=1, columns=["text"])  # type: ignore[call-arg]
        with pytest.raises(AttributeError):
            client.root_password  # type: ignore[attr-defined]  # noqa: B018
        # the owner runs only protocol methods, whatever a client sends
        assert client._connection is not None
        status, error = client._connection.call("lock", (), {}, 5.0, 5.0)
        assert status == "error" and "'lock' is not a store method" in str(error)
        assert client.count(COLLECTION, "a") == 0  # the session survives every error
    finally:
        client.close()
        owner.close()


def test_every_protocol_method_is_forwarded_and_nothing_else() -> None:
    declared = {
        name
        for name, member in vars(VectorStore).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }
    assert declared == PROTOCOL_METHODS
    assert declared - {"close"} == FORWARDED_METHODS  # a client's close only disconnects it
    for name in declared:  # declared on SharedStore itself, with the protocol's signature
        assert name in vars(SharedStore), name
        assert inspect.signature(getattr(SharedStore, name)) == inspect.signature(
            getattr(VectorStore, name)
        ), name
    assert not hasattr(SharedStore, "__getattr__")


def test_calls_keep_the_wire_shape_old_owners_and_clients_speak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames are (method, args, kwargs): required arguments by position, an optional one only
    when it is not the protocol's default; a frame as an older client built it still works."""
    owner = SharedStore(tmp_path / "s")
    client = SharedStore(tmp_path / "s")
    assert owner._owner is not None and client._connection is not None
    received: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
    serve = owner._owner.call

    def recording(method: str, args: tuple[object, ...], kwargs: dict[str, object]) -> object:
        received.append((method, args, kwargs))
        return serve(method, args, kwargs)

    monkeypatch.setattr(owner._owner, "call", recording)
    try:
        client.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        client.upsert(COLLECTION, [_point(i, "a") for i in range(3)])
        assert client.count(COLLECTION, "a") == 3
        assert client.count(COLLECTION, "a", {"source": "s1"}) == 1
        page, _ = client.scroll(COLLECTION, "a", limit=2)
        assert len(page) == 2
        assert [(m, a[1:], k) for m, a, k in received] == [
            ("ensure_collection", (DIM, BASE_PAYLOAD_INDEXES), {}),
            ("upsert", ([_point(i, "a") for i in range(3)],), {}),
            ("count", ("a",), {}),
            ("count", ("a",), {"filters": {"source": "s1"}}),
            ("scroll", ("a",), {"limit": 2}),
        ]
        # an older client passed the caller's arguments as they came, keywords included
        status, value = client._connection.call(
            "scroll", (COLLECTION,), {"tenant": "a", "limit": 10, "offset": None}, 5.0, 5.0
        )
        assert status == "ok" and len(value[0]) == 3
    finally:
        client.close()
        owner.close()


def test_tenant_filter_is_enforced_through_forwarding(tmp_path: Path) -> None:
    owner = SharedStore(tmp_path / "s")
    client = SharedStore(tmp_path / "s")
    try:
        owner.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        owner.upsert(COLLECTION, [_point(i, "a") for i in range(4)])
        client.upsert(COLLECTION, [_point(i, "b") for i in range(4, 8)])
        client.finish_writes(COLLECTION)
        found = client.query(COLLECTION, _query("b", 0)).final
        assert found and {p.payload["tenant"] for p in found} == {"b"}
        assert client.retrieve(COLLECTION, "b", [point_id("a", "docs", "s1", 1)]) == []
        page, _ = client.scroll(COLLECTION, "a", limit=100)
        assert {p.payload["tenant"] for p in page} == {"a"} and len(page) == 4
        assert owner.count(COLLECTION, "b") == 4  # the client's write is the owner's data
        with pytest.raises(InvalidRequestError):
            client.query(
                COLLECTION,
                HybridQuery(
                    tenant="b", limit=5, candidates=5, dense=[1.0] * DIM, filters={"tenant": "a"}
                ),
            )
    finally:
        client.close()
        owner.close()


def test_closing_the_owner_hands_the_store_to_a_client(tmp_path: Path) -> None:
    first = SharedStore(tmp_path / "s")
    second = SharedStore(tmp_path / "s")
    third = SharedStore(tmp_path / "s")
    try:
        first.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        first.upsert(COLLECTION, [_point(i, "a") for i in range(3)])
        first.finish_writes(COLLECTION)
        first.close()
        assert second.count(COLLECTION, "a") == 3
        assert second.is_owner  # the store was free: the client opened it
        assert third.count(COLLECTION, "a") == 3
        assert not third.is_owner  # the store was held by `second`: forwarded to it
        assert read_lock_info(tmp_path / "s").socket is not None
    finally:
        third.close()
        second.close()


def test_a_client_waits_for_the_lock_while_the_owner_vouches_for_it(tmp_path: Path) -> None:
    """One lock serialises all callers; heartbeats keep a waiting client from timing out."""
    owner = SharedStore(tmp_path / "s")
    client = SharedStore(tmp_path / "s")
    client.idle_timeout_s = 1.5
    owner.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    assert owner._owner is not None
    owner_lock = owner._owner.lock
    held = threading.Event()

    def hold_the_store() -> None:
        with owner_lock.write():  # as a long write in the owner's own thread would
            held.set()
            time.sleep(3.5)

    worker = threading.Thread(target=hold_the_store)
    worker.start()
    try:
        held.wait(5)
        start = time.monotonic()
        assert client.count(COLLECTION, None) == 0
        waited = time.monotonic() - start
        assert 2.5 < waited < 10  # waited for the lock, longer than the idle timeout
    finally:
        worker.join()
        client.close()
        owner.close()


def test_many_clients_and_owner_threads_at_once(tmp_path: Path) -> None:
    owner = SharedStore(tmp_path / "s")
    clients = [SharedStore(tmp_path / "s") for _ in range(3)]
    owner.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    errors: list[BaseException] = []

    def work(store: SharedStore, tenant: str) -> None:
        try:
            for i in range(20):
                store.upsert(COLLECTION, [_point(i, tenant)])
                found = store.query(COLLECTION, _query(tenant, i)).final
                assert found and {p.payload["tenant"] for p in found} == {tenant}
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=(store, f"t{n}"))
        for n, store in enumerate([owner, owner, *clients, clients[0]])
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert not errors, errors
        assert owner.count(COLLECTION, None) == 20 * len(workers)
        assert all(client.count(COLLECTION, "t3") == 20 for client in clients)
    finally:
        for client in clients:
            client.close()
        owner.close()


@pytest.mark.parametrize("runtime_dir", [True, False])
def test_long_store_path_uses_a_short_private_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime_dir: bool
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="rt-"))  # short, like /run/user/1000
    if runtime_dir:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        expected_dir = runtime / "retrieval-mcp"
    else:
        monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
        expected_dir = Path(tempfile.gettempdir()) / f"retrieval-mcp-{os.getuid()}"
    root = tmp_path / ("deep-" * 12) / "store"
    assert len(os.fsencode(root / ".ipc" / "owner.sock")) > 107
    owner = SharedStore(root)
    client = SharedStore(root)
    try:
        sock = Path(str(read_lock_info(root).socket))
        assert [sock] == socket_paths_for(root)[:1] and sock.parent == expected_dir
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        client.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        assert owner.has_collection(COLLECTION)
    finally:
        client.close()
        owner.close()
        shutil.rmtree(runtime)
    assert not sock.exists()


def test_a_store_directory_that_cannot_hold_the_socket_falls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="rt-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    root = tmp_path / "s"
    root.mkdir()
    (root / ".ipc").write_text("not a directory")
    owner = SharedStore(root)
    try:
        sock = Path(str(read_lock_info(root).socket))
        assert sock.parent == runtime / "retrieval-mcp"
        with SharedStoreClient(root) as client:
            assert not client.has_collection(COLLECTION)
    finally:
        owner.close()
        shutil.rmtree(runtime)


def test_a_holder_that_does_not_share_gets_a_clear_error(tmp_path: Path) -> None:
    direct = EdgeStore(tmp_path / "s")  # opened without an owner listener
    try:
        start = time.monotonic()
        with pytest.raises(StoreLockedError) as exc:
            SharedStore(tmp_path / "s")
        assert time.monotonic() - start < 5
        message = str(exc.value)
        assert f"is in use by pid {os.getpid()}" in message
        assert "does not share it" in message and f"kill {os.getpid()}" in message
    finally:
        direct.close()


# --------------------------------------------------------------------------- two processes


@pytest.mark.slow
def test_two_processes_search_and_write_one_store(tmp_path: Path, embedder: DenseEmbedder) -> None:
    """A subprocess owns and indexes; this process searches through it and writes into it."""
    script = textwrap.dedent(
        """
        import sys
        from server.retrieval.factory import build_retrieval
        from server.retrieval.types import Chunk, SearchRequest
        from server.settings import Settings

        settings = Settings(store_path=sys.argv[1], reranker_model="none")
        retrieval = build_retrieval(settings)
        print("owner" if retrieval.store.is_owner else "client", flush=True)
        retrieval.indexer.index("docs", [
            Chunk(tenant="t", doc_id="volcano", source="v.md",
                  text="Magma rises through the crust and erupts as lava."),
            Chunk(tenant="other", doc_id="secret", source="s.md",
                  text="Lava secrets of another tenant."),
        ])
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() == "search":
                request = SearchRequest("ocean tides moon", domain="docs", tenant="t")
                hits = retrieval.searcher.search(request).hits
                print("hits", ",".join(h.doc_id for h in hits), flush=True)
            elif line.strip() == "quit":
                break
        retrieval.close()
        """
    )
    root = tmp_path / "store"
    owner = _Owner(root, script)
    try:
        owner.expect("owner")
        owner.expect("ready")
        settings = Settings(store_path=root, reranker_model="none")
        store = open_store(settings)
        try:
            assert isinstance(store, SharedStore) and not store.is_owner
            assert store.owner_pid == owner.proc.pid
            retrieval = assemble(settings, store, embedder)
            result = retrieval.searcher.search(
                SearchRequest("lava eruption", domain="docs", tenant="t")
            )
            assert [h.doc_id for h in result.hits] == ["volcano"]  # never tenant "other"
            retrieval.indexer.index(
                "docs",
                [
                    Chunk(
                        tenant="t",
                        doc_id="tides",
                        source="t.md",
                        text="The moon's gravity raises bulges in the oceans.",
                    )
                ],
            )
            owner.send("search")
            hits = owner.expect("hits").split(" ", 1)[1].split(",")
            assert hits[0] == "tides" and "secret" not in hits
        finally:
            store.close()
        owner.send("quit")
        assert owner.proc.wait(timeout=60) == 0
    finally:
        owner.stop()


def test_a_write_from_the_client_process_is_visible_to_the_owner(
    owner_process: _Owner, tmp_path: Path
) -> None:
    client = SharedStore(tmp_path / "store")
    try:
        assert client.owner_pid == owner_process.proc.pid
        assert client.count(COLLECTION, "a") == 4
        client.upsert(COLLECTION, [_point(i, "c") for i in range(10, 13)])
        owner_process.send("count")
        assert owner_process.expect("count") == "count 7"
    finally:
        client.close()


def test_killed_owner_is_replaced_by_the_client(owner_process: _Owner, tmp_path: Path) -> None:
    client = SharedStore(tmp_path / "store")
    try:
        assert client.count(COLLECTION, None) == 4 and not client.is_owner
        owner_process.proc.send_signal(signal.SIGKILL)
        owner_process.proc.wait(timeout=30)
        assert client.count(COLLECTION, None) == 4  # reconnects, finds the store free, opens it
        assert client.is_owner
        info = read_lock_info(tmp_path / "store")
        assert info.pid == os.getpid() and info.socket is not None
        assert client.query(COLLECTION, _query("a", 1)).final[0].payload["tenant"] == "a"
    finally:
        client.close()


FORWARDER_SCRIPT = f"""
import sys
from server.retrieval.shared_store import SharedStore
from server.retrieval.sparse import SparseVector
from server.retrieval.store import StoredPoint, point_id
COLLECTION, DIM = {COLLECTION!r}, {DIM}
{inspect.getsource(_point)}
store, tenant, steps = SharedStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(steps):
    store.upsert(COLLECTION, [_point(i, tenant)])
    assert store.count(COLLECTION, tenant) == i + 1
    print("step", i, flush=True)
print("done", store.count(COLLECTION, tenant), store.count(COLLECTION, None), flush=True)
store.close()
"""


@pytest.mark.slow
def test_killing_the_owner_while_two_processes_forward_loses_no_call(
    owner_process: _Owner, tmp_path: Path
) -> None:
    """Issue 14's fault run as a test: kill -9 of the owner while two other processes write and
    read through it. Every call of both succeeds (one of them takes the store over, the other
    forwards to it, and takes over again when that one exits); nothing lost, nothing doubled."""
    root, steps = tmp_path / "store", 40
    forwarders = [
        subprocess.Popen(
            [sys.executable, "-c", FORWARDER_SCRIPT, str(root), tenant, str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            cwd=REPO_ROOT,
        )
        for tenant in ("f1", "f2")
    ]
    try:
        for forwarder in forwarders:  # both are mid-way through their calls
            assert forwarder.stdout is not None
            for _ in range(5):
                assert forwarder.stdout.readline().startswith("step")
        owner_process.proc.send_signal(signal.SIGKILL)
        owner_process.proc.wait(timeout=30)
        for forwarder in forwarders:
            assert forwarder.stdout is not None and forwarder.stderr is not None
            out, err = forwarder.stdout.read(), forwarder.stderr.read()  # after the lines read
            assert forwarder.wait(timeout=300) == 0, err[-2000:]
            assert out.splitlines()[-1].split()[:2] == ["done", str(steps)]
        store = SharedStore(root)
        try:
            assert store.count(COLLECTION, "a") == 4  # the dead owner's own data
            assert store.count(COLLECTION, "f1") == store.count(COLLECTION, "f2") == steps
            assert store.count(COLLECTION, None) == 4 + 2 * steps
        finally:
            store.close()
    finally:
        for forwarder in forwarders:
            if forwarder.poll() is None:
                forwarder.kill()
                forwarder.wait(timeout=30)


def test_stale_socket_of_a_killed_owner_is_replaced(owner_process: _Owner, tmp_path: Path) -> None:
    root = tmp_path / "store"
    sock = Path(str(read_lock_info(root).socket))
    owner_process.proc.send_signal(signal.SIGKILL)
    owner_process.proc.wait(timeout=30)
    assert stat.S_ISSOCK(sock.lstat().st_mode)  # the dead owner could not remove it
    with pytest.raises(ConnectionRefusedError), socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(sock))
    store = SharedStore(root)
    try:
        assert store.is_owner and store.count(COLLECTION, None) == 4
        with SharedStoreClient(root) as client:
            assert client.count(COLLECTION, None) == 4
    finally:
        store.close()


def test_a_silent_owner_times_out_instead_of_hanging(owner_process: _Owner, tmp_path: Path) -> None:
    client = SharedStore(tmp_path / "store")
    client.idle_timeout_s = 1.0
    owner_process.proc.send_signal(signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(StoreError, match=f"pid {owner_process.proc.pid}.*did not answer"):
            client.count(COLLECTION, None)
        assert time.monotonic() - start < 10

        class Impatient(SharedStore):
            connect_timeout_s = 0.5
            handover_window_s = 1.0

        start = time.monotonic()
        with pytest.raises(StoreLockedError, match="cannot be used"):
            Impatient(tmp_path / "store")  # connects, but the greeting never comes
        assert time.monotonic() - start < 10
    finally:
        owner_process.proc.send_signal(signal.SIGCONT)
        client.close()
    with SharedStoreClient(tmp_path / "store") as again:  # the owner serves again
        assert again.count(COLLECTION, None) == 4


def test_opening_a_copy_leaves_the_original_owner_and_its_clients_working(
    owner_process: _Owner, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    original_socket = Path(str(read_lock_info(root).socket))
    client = SharedStore(root)
    assert not client.is_owner and client.count(COLLECTION, None) == 4
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(root), str(copy)], check=True)
    assert read_lock_info(copy).socket == str(original_socket)  # the copied claim
    try:
        copied = SharedStore(copy)
        try:
            assert copied.is_owner  # the copy is a store of its own, free to open
            assert copied.count(COLLECTION, None) == 4
            copied.upsert(COLLECTION, [_point(9, "copy")])
            assert socket_is_live(original_socket)
            assert read_lock_info(copy).socket != str(original_socket)
            # the original's existing client and a new process both still reach the original
            assert client.count(COLLECTION, None) == 4
            with SharedStoreClient(root) as newcomer:
                assert newcomer.owner_pid == owner_process.proc.pid
                assert newcomer.count(COLLECTION, None) == 4  # not the copy's 5
            # and a client of the copy reaches the copy's owner, not the original
            with SharedStoreClient(copy) as copy_client:
                assert copy_client.owner_pid == os.getpid()
                assert copy_client.count(COLLECTION, None) == 5
        finally:
            copied.close()
        assert socket_is_live(original_socket)
        owner_process.send("count")
        assert owner_process.expect("count") == "count 4"
    finally:
        client.close()


class SharedStoreClient:
    """``with`` helper: a SharedStore that must be a client, closed on exit."""

    def __init__(self, root: Path) -> None:
        self.store = SharedStore(root)
        assert not self.store.is_owner

    def __enter__(self) -> SharedStore:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()
