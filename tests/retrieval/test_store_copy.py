"""A process only removes what provably belongs to its own store and a dead owner.

Invariant: opening a store (whatever its lock file says: copied from another store, left by a
killed owner, hand-edited) never unlinks a file outside the socket paths derived from that
store, and never a socket that a live process listens on. And an owner whose socket file
vanishes listens again, so other processes keep reaching it. (The copied-store case with a
live owner subprocess is in test_shared_store.py, beside its fixture.)
"""

from __future__ import annotations

import os
import socket
import stat
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import LOCK_FILE, read_lock_info
from server.retrieval.owner_socket import socket_is_live, socket_paths_for
from server.retrieval.shared_store import SharedStore
from server.retrieval.store_identity import StoreIdentity, process_alive, process_start_time
from tests.retrieval.test_shared_store import COLLECTION, DIM, SharedStoreClient


def test_an_owner_whose_socket_vanishes_listens_again(tmp_path: Path) -> None:
    owner = SharedStore(tmp_path / "s")
    try:
        owner.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
        sock = Path(str(read_lock_info(tmp_path / "s").socket))
        sock.unlink()  # as the store-copy bug (or a cleaner of /tmp) did
        deadline = time.monotonic() + 30
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stat.S_ISSOCK(sock.lstat().st_mode)
        with SharedStoreClient(tmp_path / "s") as client:
            assert client.has_collection(COLLECTION)
    finally:
        owner.close()
    assert not sock.exists()


def test_lock_records_holder_start_time_and_store_identity(tmp_path: Path) -> None:
    store = SharedStore(tmp_path / "s")
    try:
        info = read_lock_info(tmp_path / "s")
        assert info.pid == os.getpid()
        assert info.started == process_start_time(os.getpid()) is not None
        assert info.store == StoreIdentity.of(tmp_path / "s")
        assert info.holder_alive()
    finally:
        store.close()


def test_a_recycled_pid_is_not_the_recorded_owner() -> None:
    started = process_start_time(os.getpid())
    assert started is not None
    assert process_alive(os.getpid(), started)
    assert not process_alive(os.getpid(), started + 1)  # same pid, another process
    assert not process_alive(None) and not process_alive(0) and not process_alive(2**40)


# --------------------------------------------------------------------------- the property

_lines = st.sampled_from(["socket", "pid", "started", "store", "junk"])


@st.composite
def _lock_texts(draw: st.DrawFn) -> tuple[int, list[tuple[str, str]]]:
    """A lock file's holder pid and note lines, some pointing at the victims by index."""
    pid = draw(st.one_of(st.just(os.getpid()), st.integers(min_value=-5, max_value=2**31)))
    notes = draw(
        st.lists(
            st.tuples(_lines, st.one_of(st.integers(0, 5).map(str), st.text(max_size=30))),
            max_size=6,
        )
    )
    return pid, notes


class _Victims:
    """Files another store, another process or the user owns; none may disappear."""

    def __init__(self, base: Path) -> None:
        other = base / "other-store" / ".ipc"
        other.mkdir(parents=True)
        self.live_path = other / "owner.sock"
        self.live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.live.bind(str(self.live_path))
        self.live.listen(8)
        self.dead_path = base / "elsewhere" / "dead.sock"
        self.dead_path.parent.mkdir()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(self.dead_path))
        self.file_path = base / "notes.txt"
        self.file_path.write_text("keep me")
        self.paths = [self.live_path, self.dead_path, self.file_path, base, other]

    def close(self) -> None:
        self.live.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lock=_lock_texts(), live_in_own_path=st.booleans())
def test_no_lock_content_leads_to_removing_anything_not_provably_ours(
    lock: tuple[int, list[tuple[str, str]]], live_in_own_path: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        victims = _Victims(base)
        root = base / "store"
        root.mkdir()
        pid, notes = lock
        lines = [f"pid {pid} (retrieval-mcp serve, since 2026-01-01 00:00:00)"]
        for key, value in notes:
            index = int(value) if value.isdigit() and int(value) < len(victims.paths) else None
            lines.append(f"{key} {victims.paths[index] if index is not None else value}")
        (root / LOCK_FILE).write_text("\n".join(lines))
        squatter = None
        own_path = socket_paths_for(root)[0]
        if live_in_own_path:  # a live socket at the store's own path: someone else's, keep it
            own_path.parent.mkdir(mode=0o700)
            squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            squatter.bind(str(own_path))
            squatter.listen(8)
        try:
            store = SharedStore(root)
            try:
                assert store.is_owner
                serving = Path(str(read_lock_info(root).socket))
                assert serving in socket_paths_for(root)
                assert serving != own_path or not live_in_own_path
            finally:
                store.close()
            assert all(p.exists() or p.is_symlink() for p in victims.paths)
            assert socket_is_live(victims.live_path)
            assert victims.file_path.read_text() == "keep me"
            if squatter is not None:
                assert socket_is_live(own_path)
        finally:
            victims.close()
            if squatter is not None:
                squatter.close()


@pytest.mark.parametrize("what", ["dead socket", "regular file"])
def test_a_dead_socket_at_the_stores_own_path_is_replaced_but_a_file_is_not(
    tmp_path: Path, what: str
) -> None:
    root = tmp_path / "s"
    own = socket_paths_for(root)[0]
    own.parent.mkdir(parents=True, mode=0o700)
    if what == "dead socket":
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
            dead.bind(str(own))
    else:
        own.write_text("not a socket")
    store = SharedStore(root)
    try:
        serving = Path(str(read_lock_info(root).socket))
        assert (serving == own) == (what == "dead socket")
        if what == "regular file":
            assert own.read_text() == "not a socket"
    finally:
        store.close()
