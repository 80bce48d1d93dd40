"""One embedded store, many processes: the first opener owns it and serves it on a Unix socket.

Qdrant Edge admits one opener per store directory. The process that opens it through
:class:`SharedStore` becomes the owner: it keeps the :class:`EdgeStore`, serialises every call
(its own threads and all clients) with one lock, and serves the VectorStore methods on a Unix
socket (``<store>/.ipc/owner.sock``, 0600 in a 0700 directory; a short path under
``$XDG_RUNTIME_DIR`` or the temp directory when that path is too long for ``sun_path``). The
socket path is recorded in the store's lock file. A later process finds the store locked, reads
the socket path there and forwards each call to the owner as (method name, args, kwargs).
:class:`SharedStore` declares every VectorStore method itself (mypy checks it against the
protocol); the owner serves exactly the protocol's methods (:data:`FORWARDED_METHODS`, read from
the protocol), and an optional argument travels only when it differs from its default.

Frames are length-prefixed pickles. Pickle is safe here only because both ends are the same
user: the socket is owner-only and each end checks the peer's uid (``SO_PEERCRED``) before
reading a single frame. Owner-side exceptions travel back as the same exception types.

When the owner goes away (closed, exited, killed), a client reconnects: if the store is free it
opens it and becomes the owner itself (handover), otherwise it connects to the new owner. The
interrupted call is retried: upserts by id, deletes by filter and reads are idempotent; a
metadata delta (``adjust_meta``, ``meta_deltas``) the dead owner had applied counts twice, which
the pipeline's recount check repairs on the next index run. Nothing waits forever: connects,
handovers and silent owners are bounded by timeouts, and a holder that does not share the
store gets a clear StoreLockedError naming its pid.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import pickle
import socket
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from server.errors import StoreError, StoreLockedError
from server.retrieval.edge_store import (
    DEFAULT_DISK_RESERVE_MB,
    EdgeStore,
    LockInfo,
    read_lock_info,
)
from server.retrieval.exit_release import release_socket_at_exit
from server.retrieval.owner_socket import listen_first_free, socket_paths_for, still_bound
from server.retrieval.rwlock import ReadWriteLock
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    VALUES_LIMIT,
    HybridQuery,
    IndexKind,
    QueryResponse,
    ScoredPoint,
    StoredPoint,
    StoredVectors,
    VectorStore,
)
from server.retrieval.store_identity import StoreIdentity
from server.retrieval.store_tuning import StoreTuning
from server.retrieval.store_users import StoreUsers
from server.retrieval.types import FilterValue

__all__ = ["FORWARDED_METHODS", "PROTOCOL_METHODS", "SharedStore", "socket_paths_for"]

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 2
"""2: the greeting carries the store's identity, which the client checks (1 had none)."""
MAX_FRAME = 1 << 31

PROTOCOL_METHODS = frozenset(
    name
    for name, member in vars(VectorStore).items()
    if callable(member) and not name.startswith("_")
)
"""The methods the VectorStore protocol declares (read from the protocol class itself)."""
FORWARDED_METHODS = PROTOCOL_METHODS - {"close"}
"""The VectorStore methods a client may call on the owner's store (``close`` stays local: it
disconnects the client, it never closes the owner's store)."""
_OPTIONAL_DEFAULTS: dict[str, dict[str, Any]] = {
    name: {
        param.name: param.default
        for param in inspect.signature(getattr(VectorStore, name)).parameters.values()
        if param.default is not inspect.Parameter.empty
    }
    for name in FORWARDED_METHODS
}
"""Per forwarded method, its optional parameters and their defaults in the protocol."""


class _Disconnected(ConnectionError):
    """The peer closed the connection (or it broke) before a whole frame arrived."""


class _ChannelError(StoreError):
    """The socket answers but cannot be used (wrong user, other protocol version, bad frame)."""


class _OtherStoreError(_ChannelError):
    """The socket's owner serves a different store directory (e.g. the original of a copy)."""


# --------------------------------------------------------------------------- framing


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    header = struct.pack("!Q", len(payload))
    if len(payload) < 1 << 20:
        sock.sendall(header + payload)  # one write: the peer wakes once
    else:
        sock.sendall(header)
        sock.sendall(payload)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        n = sock.recv_into(view[received:], size - received)
        if n == 0:
            raise _Disconnected("connection closed by the peer")
        received += n
    return bytes(buffer)


def _recv_frame(sock: socket.socket) -> Any:
    (size,) = struct.unpack("!Q", _recv_exact(sock, 8))
    if size > MAX_FRAME:
        raise _ChannelError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
    payload = _recv_exact(sock, size)
    try:
        return pickle.loads(payload)
    except Exception as exc:  # e.g. a class this process's code does not have
        raise _ChannelError(f"cannot decode a store frame ({type(exc).__name__}: {exc})") from None


def _dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def peer_credentials(sock: socket.socket) -> tuple[int | None, int]:
    """(pid, uid) of the process at the other end of a connected Unix socket."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", raw)
        return pid, uid
    local_peercred = getattr(socket, "LOCAL_PEERCRED", None)
    if local_peercred is not None:  # macOS / BSD: struct xucred {version, uid, ...}
        raw = sock.getsockopt(0, local_peercred, 4 + 4 + 2 + 2 + 16 * 4)
        _version, uid = struct.unpack_from("=II", raw)
        return None, uid
    raise _ChannelError("this platform cannot tell who is at the other end of a Unix socket")


# --------------------------------------------------------------------------- owner side


READ_METHODS = frozenset(
    {
        "has_collection",
        "has_part_vectors",
        "query",
        "retrieve",
        "vectors",
        "scroll",
        "count",
        "values",
        "read_meta",
    }
)
"""Store methods that only read: Qdrant Edge serves concurrent reads of a shard (its own
locks), so the owner runs them side by side."""


class StoreOwner:
    """Serves one open EdgeStore to this user's other processes; one lock serialises all calls."""

    accept_poll_s = 0.2
    heartbeat_s = 1.0

    def __init__(self, store: EdgeStore) -> None:
        self.store = store
        self.lock = ReadWriteLock()
        """Reads (searches, counts, scrolls) run side by side; writes and close run alone."""
        self.socket_path: Path | None = None
        self.identity: StoreIdentity | None = None
        self._socket_inode = 0
        self._socket_guard = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._busy: dict[socket.socket, tuple[float, threading.Lock]] = {}
        self._clients_guard = threading.Lock()
        self._users = StoreUsers(store.root)

    def call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run one VectorStore method on the store, serialised with every other caller."""
        if method not in FORWARDED_METHODS:
            raise StoreError(f"{method!r} is not a store method")
        with self.lock.read() if method in READ_METHODS else self.lock.write():
            if self._closed:
                raise StoreError(f"the store at {self.store.root} has been closed")
            return getattr(self.store, method)(*args, **kwargs)

    def start(self) -> None:
        """Listen on one of the store's own socket paths and record it in the lock file.

        Only paths derived from the store directory are used (and only dead sockets there are
        replaced): the socket named in a lock file copied from another store is never touched.
        """
        self.identity = StoreIdentity.of(self.store.root)
        self._bind()
        self._thread = threading.Thread(target=self._accept_loop, name="store-owner", daemon=True)
        self._thread.start()
        threading.Thread(target=self._heartbeat_loop, name="store-heartbeat", daemon=True).start()
        logger.info(
            "sharing the store at %s with other processes via %s", self.store.root, self.socket_path
        )

    def _bind(self) -> None:
        """Listen at the first free socket path of the store; swap out any previous listener."""
        listener, path, inode = listen_first_free(self.store.root)
        listener.settimeout(self.accept_poll_s)
        previous, self._listener = self._listener, listener
        self.socket_path, self._socket_inode = path, inode
        release_socket_at_exit(self)  # even when an exit skips close()
        if previous is not None:
            previous.close()
        self.store.lock.note("socket", str(path))

    def _keep_socket(self) -> None:
        """Recreate the socket when its file vanished or was replaced (clients find it again)."""
        with self._socket_guard:  # never rebind after close() removed the socket
            path = self.socket_path
            if self._stop.is_set() or path is None or still_bound(path, self._socket_inode):
                return
            logger.warning("the store socket %s disappeared; listening again", path)
            try:
                self._bind()
            except (OSError, StoreError) as exc:
                logger.warning("cannot listen for the store at %s again: %s", self.store.root, exc)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            assert listener is not None
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set() or listener is not self._listener:
                    continue  # closed by close(), or replaced by _keep_socket
                logger.exception("store socket accept failed")
                time.sleep(self.accept_poll_s)
                continue
            conn.settimeout(None)
            with self._clients_guard:
                self._clients.add(conn)
            threading.Thread(
                target=self._serve_client, args=(conn,), name="store-client", daemon=True
            ).start()

    def _serve_client(self, conn: socket.socket) -> None:
        pid, used = None, False
        try:
            pid, uid = peer_credentials(conn)
            if uid != os.getuid():
                logger.warning("refused a store connection from uid %s (pid %s)", uid, pid)
                return
            hello = ("hello", PROTOCOL_VERSION, os.getpid(), str(self.identity))
            _send_frame(conn, _dumps(hello))
            send_lock = threading.Lock()
            while not self._stop.is_set():
                method, args, kwargs = _recv_frame(conn)
                if not used:  # a user from its first request (probes send none)
                    used = True
                    self._users.arrived(pid)
                payload = self._answer(conn, send_lock, method, args, kwargs)
                with send_lock:  # never interleave with a heartbeat
                    _send_frame(conn, payload)
        except (_Disconnected, OSError, EOFError):
            pass  # the client went away, or close() shut the connection
        except Exception:
            logger.exception("store client connection failed")
        finally:
            if used:
                self._users.left(pid)
            with self._clients_guard:
                self._clients.discard(conn)
            conn.close()

    def _answer(
        self,
        conn: socket.socket,
        send_lock: threading.Lock,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> bytes:
        """Run the call (the heartbeat thread vouches for it while it runs); encode the reply."""
        with self._clients_guard:
            self._busy[conn] = (time.monotonic(), send_lock)
        try:
            reply: tuple[str, Any] = ("ok", self.call(method, args, kwargs))
        except Exception as exc:
            reply = ("error", exc)
        finally:
            with self._clients_guard:
                self._busy.pop(conn, None)
        try:
            payload = _dumps(reply)
            if reply[0] == "error":
                pickle.loads(payload)  # an exception that cannot be rebuilt would fail the client
        except Exception as exc:  # an unpicklable result or exception
            error = reply[1] if reply[0] == "error" else exc
            payload = _dumps(("error", StoreError(f"{type(error).__name__}: {error}")))
        return payload

    def _heartbeat_loop(self) -> None:
        """Tell clients whose call runs long (or waits for the lock) that the owner is alive;
        put the socket back if its file went away."""
        beat = _dumps(("beat",))
        while not self._stop.wait(self.heartbeat_s):
            self._keep_socket()
            now = time.monotonic()
            with self._clients_guard:
                busy = [(c, lock) for c, (t, lock) in self._busy.items() if now - t >= 0.5]
            for conn, send_lock in busy:
                with send_lock, contextlib.suppress(OSError):
                    if conn in self._busy:
                        _send_frame(conn, beat)

    def release_at_exit(self) -> None:
        """Remove the socket file if it is still the one this process bound (never another
        process's: identity is the inode, not the path)."""
        path = self.socket_path
        if path is not None and still_bound(path, self._socket_inode):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def close(self) -> None:
        """Stop listening, drop clients, remove the socket, then close the store."""
        with self._socket_guard:
            self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._listener is not None:
            self._listener.close()
        self.release_at_exit()
        with self._clients_guard:
            for conn in self._clients:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        with self.lock.write():  # waits for the calls in progress
            self._closed = True
            self.store.close()


# --------------------------------------------------------------------------- client side


class _Connection:
    """A verified connection to the owner of a store."""

    def __init__(self, sock: socket.socket, owner_pid: int, path: Path) -> None:
        self.sock = sock
        self.owner_pid = owner_pid
        self.path = path

    @classmethod
    def open(cls, path: Path, timeout: float, identity: StoreIdentity) -> _Connection:
        """Connect to the owner at ``path`` and check that it serves the store ``identity``.

        Raises _OtherStoreError when the socket belongs to the owner of another store (e.g. the
        original of a copied store), _ChannelError when it cannot be used, OSError when no one
        answers.
        """
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(str(path))
            _pid, uid = peer_credentials(sock)
            if uid != os.getuid():
                raise _ChannelError(f"{path} belongs to uid {uid}, not to this user")
            hello = _recv_frame(sock)
            if not (isinstance(hello, tuple) and len(hello) >= 3 and hello[0] == "hello"):
                raise _ChannelError(f"{path} does not speak the retrieval-mcp store protocol")
            if hello[1] != PROTOCOL_VERSION:
                raise _ChannelError(
                    f"the owner speaks store protocol {hello[1]}, this process {PROTOCOL_VERSION}"
                    " (different retrieval-mcp versions)"
                )
            if StoreIdentity.parse(hello[3]) != identity:
                raise _OtherStoreError(f"{path} serves another store (identity {hello[3]})")
        except BaseException:
            sock.close()
            raise
        return cls(sock, int(hello[2]), path)

    def call(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        idle_timeout: float,
        call_timeout: float,
    ) -> tuple[str, Any]:
        """Send one call; wait for its reply while heartbeats arrive, within ``call_timeout``.

        Returns ``("ok", value)`` or ``("error", exception raised by the owner)``.
        """
        deadline = time.monotonic() + call_timeout
        self.sock.settimeout(idle_timeout)
        _send_frame(self.sock, _dumps((method, args, kwargs)))
        while True:
            reply = _recv_frame(self.sock)
            if reply[0] in ("ok", "error"):
                return reply[0], reply[1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer within {call_timeout:.0f} s")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class SharedStore:
    """The embedded store at ``root`` as a VectorStore any number of processes can open at once.

    The first opener owns the store (``is_owner``) and serves the others; later openers forward
    every call to it. Ownership moves to a client when the owner goes away.
    """

    connect_timeout_s = 5.0
    """Connecting to the owner's socket and reading its greeting."""
    handover_window_s = 15.0
    """How long to keep trying to open the store or reach its owner after losing the owner."""
    listener_grace_s = 1.0
    """How long a holder may take to announce its socket before it counts as not sharing."""
    idle_timeout_s = 30.0
    """Longest silence from the owner during a call (it sends heartbeats while working)."""
    call_timeout_s = 3600.0
    """Longest any one forwarded call may take."""

    def __init__(
        self,
        root: Path | str,
        disk_reserve_mb: int = DEFAULT_DISK_RESERVE_MB,
        tuning: StoreTuning | None = None,
    ) -> None:
        """``tuning``: the layout and search parameters when this process becomes the owner
        (a forwarding process searches with the owner's)."""
        self.root = Path(root).expanduser()
        self.disk_reserve_mb = disk_reserve_mb
        """Applied by whichever process owns the store (its own setting, see EdgeStore)."""
        self.tuning = tuning
        self._state = threading.RLock()
        self._owner: StoreOwner | None = None
        self._connection: _Connection | None = None
        self._closed = False
        self._attach()

    @property
    def is_owner(self) -> bool:
        """True while this process holds the store (and serves the others)."""
        return self._owner is not None

    @property
    def local_store(self) -> EdgeStore | None:
        """The EdgeStore itself while this process owns it (maintenance), else None."""
        return None if self._owner is None else self._owner.store

    @property
    def owner_pid(self) -> int:
        """The pid of the process that holds the store now."""
        return os.getpid() if self._connection is None else self._connection.owner_pid

    # ----------------------------------------------------------------- VectorStore, forwarded
    # One explicit method per protocol method, so mypy checks SharedStore against VectorStore
    # (see the static check at the end of this module) and a signature drift fails the lint.

    def ensure_collection(
        self,
        name: str,
        dense_dim: int,
        payload_indexes: Mapping[str, IndexKind],
        part_vectors: bool = False,
    ) -> None:
        """See :meth:`VectorStore.ensure_collection`."""
        self._forward(
            "ensure_collection", name, dense_dim, payload_indexes, part_vectors=part_vectors
        )

    def has_collection(self, name: str) -> bool:
        """See :meth:`VectorStore.has_collection`."""
        return cast(bool, self._forward("has_collection", name))

    def has_part_vectors(self, name: str) -> bool:
        """See :meth:`VectorStore.has_part_vectors`."""
        return cast(bool, self._forward("has_part_vectors", name))

    def upsert(
        self,
        name: str,
        points: Sequence[StoredPoint],
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`VectorStore.upsert`."""
        self._forward("upsert", name, points, meta_deltas=meta_deltas)

    def update_sparse(
        self, name: str, tenant: str, vectors: Sequence[tuple[str, SparseVector]]
    ) -> None:
        """See :meth:`VectorStore.update_sparse`."""
        self._forward("update_sparse", name, tenant, vectors)

    def query(self, name: str, request: HybridQuery) -> QueryResponse:
        """See :meth:`VectorStore.query`."""
        return cast(QueryResponse, self._forward("query", name, request))

    def retrieve(self, name: str, tenant: str, ids: Sequence[str]) -> list[ScoredPoint]:
        """See :meth:`VectorStore.retrieve`."""
        return cast(list[ScoredPoint], self._forward("retrieve", name, tenant, ids))

    def vectors(self, name: str, tenant: str, ids: Sequence[str]) -> list[StoredVectors]:
        """See :meth:`VectorStore.vectors`."""
        return cast(list[StoredVectors], self._forward("vectors", name, tenant, ids))

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
        """See :meth:`VectorStore.scroll`."""
        page = self._forward(
            "scroll",
            name,
            tenant,
            filters=filters,
            limit=limit,
            offset=offset,
            fields=fields,
            omit=omit,
        )
        return cast(tuple[list[ScoredPoint], str | int | None], page)

    def delete(
        self,
        name: str,
        tenant: str,
        filters: Mapping[str, FilterValue] | None = None,
        meta_deltas: Mapping[str, Any] | None = None,
    ) -> None:
        """See :meth:`VectorStore.delete`."""
        self._forward("delete", name, tenant, filters=filters, meta_deltas=meta_deltas)

    def count(
        self, name: str, tenant: str | None, filters: Mapping[str, FilterValue] | None = None
    ) -> int:
        """See :meth:`VectorStore.count`."""
        return cast(int, self._forward("count", name, tenant, filters=filters))

    def values(self, name: str, tenant: str, key: str, limit: int = VALUES_LIMIT) -> list[str]:
        """See :meth:`VectorStore.values`."""
        return cast(list[str], self._forward("values", name, tenant, key, limit=limit))

    def read_meta(self, name: str) -> dict[str, Any]:
        """See :meth:`VectorStore.read_meta`."""
        return cast(dict[str, Any], self._forward("read_meta", name))

    def write_meta(self, name: str, meta: Mapping[str, Any]) -> None:
        """See :meth:`VectorStore.write_meta`."""
        self._forward("write_meta", name, meta)

    def adjust_meta(
        self,
        name: str,
        deltas: Mapping[str, Any],
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """See :meth:`VectorStore.adjust_meta`."""
        return cast(dict[str, Any], self._forward("adjust_meta", name, deltas, values=values))

    def finish_writes(self, name: str) -> None:
        """See :meth:`VectorStore.finish_writes`."""
        self._forward("finish_writes", name)

    def _forward(self, method: str, *args: Any, **optional: Any) -> Any:
        """Call ``method`` on the store (here when this process owns it, else on the owner).

        Required arguments go positionally; an optional one only when it differs from the
        protocol's default, so an owner whose method predates a newer optional parameter still
        serves every call that leaves it at its default. The wire shape stays (method, args,
        kwargs), as before explicit forwarding.
        """
        defaults = _OPTIONAL_DEFAULTS[method]
        kwargs = {
            key: value
            for key, value in optional.items()
            if key not in defaults or not _is_default(value, defaults[key])
        }
        return self._call(method, args, kwargs)

    def _become_owner(self) -> bool:
        try:
            store = EdgeStore(self.root, self.disk_reserve_mb, self.tuning)
        except StoreLockedError:
            return False
        owner = StoreOwner(store)
        try:
            owner.start()
        except (OSError, StoreError) as exc:
            logger.warning(
                "other processes cannot share the store at %s: %s", self.root, exc, exc_info=False
            )
        self._owner = owner
        return True

    def _attach(self) -> None:
        """Open the store (becoming its owner) or connect to its owner, within the window."""
        deadline = time.monotonic() + self.handover_window_s
        silent_since: dict[int | None, float] = {}
        while True:
            if self._become_owner():
                return
            info = read_lock_info(self.root)
            problem: Exception | None = None
            if info.socket:
                problem = self._connect(info)
                if problem is None:
                    return
            elif info.pid is not None:
                first_seen = silent_since.setdefault(info.pid, time.monotonic())
                if time.monotonic() - first_seen > self.listener_grace_s:
                    raise StoreLockedError(self._not_shared_message(info))
            if isinstance(problem, _ChannelError | PermissionError) or time.monotonic() > deadline:
                raise StoreLockedError(self._unreachable_message(info, problem))
            time.sleep(0.05)

    def _connect(self, info: LockInfo) -> Exception | None:
        """Connect to the owner of this store; None on success, else the last problem.

        The lock file's socket path is only a hint (tried first): a connection is kept only when
        the owner greets with this store's identity, so a lock file copied from another store
        never routes calls to that store's owner. The paths derived from the store are tried too.
        """
        try:
            identity = StoreIdentity.of(self.root)
        except OSError as exc:
            return exc
        hint = [Path(info.socket)] if info.socket else []
        candidates = list(dict.fromkeys([*hint, *socket_paths_for(self.root)]))
        problem: Exception | None = None
        for path in candidates:
            if path != candidates[0] and not path.exists():
                continue
            try:
                self._connection = _Connection.open(path, self.connect_timeout_s, identity)
            except _OtherStoreError as exc:
                problem = OSError(str(exc))  # not fatal: the owner may still be starting
            except (OSError, EOFError, pickle.UnpicklingError, StoreError) as exc:
                problem = exc
            else:
                logger.info(
                    "the store at %s is held by pid %s; forwarding to it via %s",
                    self.root,
                    self._connection.owner_pid,
                    path,
                )
                return None
        return problem

    def _not_shared_message(self, info: LockInfo) -> str:
        return (
            f"the store at {self.root} is in use by {info.holder}, which does not share it with "
            "other processes (it opened the store directly, runs an older retrieval-mcp, or "
            "could not create its socket: see its log). "
            f"Stop that process (kill {info.pid}) and retry, or point this one at another store "
            "(RETRIEVAL_STORE_PATH) or a Qdrant server (RETRIEVAL_QDRANT_URL)."
        )

    def _unreachable_message(self, info: LockInfo, problem: Exception | None) -> str:
        holder = info.holder or "another process"
        reason = f" ({problem})" if problem else ""
        stop = f" (kill {info.pid})" if info.pid else ""
        return (
            f"the store at {self.root} is in use by {holder}, but its socket {info.socket} "
            f"cannot be used{reason}. If that process hangs, stop it{stop} and retry, or point "
            "this one at another store (RETRIEVAL_STORE_PATH) or a Qdrant server "
            "(RETRIEVAL_QDRANT_URL)."
        )

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        owner = self._owner
        if owner is not None:  # the owner's reads run in parallel (its lock decides)
            return owner.call(method, args, kwargs)
        with self._state:
            for _attempt in range(3):
                if self._closed:
                    raise StoreError(f"the store at {self.root} has been closed")
                if self._owner is None and self._connection is None:
                    self._attach()
                if self._owner is not None:
                    return self._owner.call(method, args, kwargs)
                connection = self._connection
                assert connection is not None
                try:
                    status, value = connection.call(
                        method, args, kwargs, self.idle_timeout_s, self.call_timeout_s
                    )
                except TimeoutError as exc:
                    self._drop_connection()
                    raise StoreError(
                        f"the process holding the store at {self.root} (pid "
                        f"{connection.owner_pid}) did not answer {method} in time ({exc}); "
                        f"if it hangs, stop it (kill {connection.owner_pid}) and retry"
                    ) from None
                except (OSError, EOFError) as exc:
                    logger.info(
                        "lost the owner of the store at %s (pid %s: %s); reconnecting",
                        self.root,
                        connection.owner_pid,
                        exc or type(exc).__name__,
                    )
                    self._drop_connection()
                    self._attach()
                    if self._owner is not None:
                        logger.info("this process (pid %s) now owns the store", os.getpid())
                    continue
                except (pickle.PickleError, _ChannelError) as exc:
                    self._drop_connection()
                    raise StoreError(f"cannot forward {method} to the store owner: {exc}") from None
                if status == "error":
                    raise value
                return value
            raise StoreError(f"lost the owner of the store at {self.root} repeatedly; giving up")

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Owner: stop serving, remove the socket, close the store. Client: disconnect."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            if self._owner is not None:
                self._owner.close()
                self._owner = None
            self._drop_connection()


def _is_default(value: Any, default: Any) -> bool:
    """True when ``value`` is the parameter's default (None, a bool or a number: by value)."""
    if value is default:
        return True
    return type(value) is type(default) and isinstance(default, int | float) and value == default


if TYPE_CHECKING:  # mypy: SharedStore must satisfy VectorStore, signature by signature
    _shared_store_is_a_vector_store: type[VectorStore] = SharedStore
