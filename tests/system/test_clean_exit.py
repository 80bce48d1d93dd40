"""A store owner that exits cleanly leaves nothing behind; a killed one leaves a harmless record.

Invariant: a process that exits cleanly (SIGTERM, SIGINT, or EOF on a stdio server's stdin;
SIGTERM of an ingest) removes exactly what it owns: its lock record and its socket, and never
another process's (a client of the owner that is stopped leaves the owner's record and socket
serving). After it, doctor's lock line says the store is not in use. kill -9 cannot be caught:
its record stays, and doctor calls it harmless (the next opener takes it over), never a problem.
Before, SIGTERM ended the process without its ``finally`` blocks (the record stayed and doctor
called it stale), and SIGINT of a stdio server released the store but then hung on the SDK's
stdin read. Real ``serve`` and ``ingest`` subprocesses, real doctor runs, real stores.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from server.retrieval.edge_store import read_lock_info
from server.retrieval.owner_socket import socket_paths_for
from tests.mcp_support import free_port
from tests.retrieval.test_store_faults import _filled_store
from tests.serve_process import REPO_ROOT, ServeProcess, cli_env

INGEST = [sys.executable, "-m", "server.cli", "ingest"]
STOPS = {"SIGTERM": 128 + signal.SIGTERM, "SIGINT": 128 + signal.SIGINT, "stdin EOF": 0}


def _doctor_lock(root: Path, tmp_path: Path) -> dict[str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "doctor", "--json", "--store", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(RETRIEVAL_MCP__TOKENS_FILE=str(tmp_path / "tokens.json")),
        cwd=REPO_ROOT,
    )
    findings = json.loads(proc.stdout)["findings"]
    lock: dict[str, str] = next(f for f in findings if f["check"] == "store lock")
    return lock


def _assert_released(root: Path, tmp_path: Path) -> None:
    assert read_lock_info(root).pid is None, (root / "store.lock").read_text()
    assert [p for p in socket_paths_for(root) if p.exists()] == []
    lock = _doctor_lock(root, tmp_path)
    assert lock["status"] == "ok" and "is not in use by another process" in lock["detail"], lock


def _terminated_once(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bytes:
    """SIGTERM to ``proc`` once ``ready()`` (within 120 s, while it runs); its stderr once it
    has exited (killed at the end if it has not)."""
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return err


def _owner_stopped_by(
    tmp_path: Path, stop: Callable[[ServeProcess], None]
) -> tuple[Path, ServeProcess, int]:
    """A stdio ``serve`` owning a filled store, stopped by ``stop``: the store, the process,
    its exit status (waited for, so a hang fails)."""
    root = tmp_path / "store"
    _filled_store(root)
    owner = ServeProcess(root, tmp_path / "serve.log")
    try:
        stop(owner)
        code = owner.wait(timeout_s=120)
    finally:
        owner.stop()
    return root, owner, code


@pytest.mark.slow
@pytest.mark.parametrize("stop", list(STOPS))
def test_a_stopped_stdio_owner_removes_its_lock_record_and_socket(
    tmp_path: Path, stop: str
) -> None:
    def stopping(owner: ServeProcess) -> None:
        if stop == "stdin EOF":
            owner.close_stdin()
        else:
            owner.proc.send_signal(getattr(signal, stop))

    root, owner, code = _owner_stopped_by(tmp_path, stopping)
    assert code == STOPS[stop], owner.log()  # it exits: no hang
    _assert_released(root, tmp_path)


@pytest.mark.slow
def test_a_stopped_client_leaves_the_owners_records(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _filled_store(root)
    owner = ServeProcess(root, tmp_path / "owner.log")
    try:
        client = ServeProcess(root, tmp_path / "client.log", owner=False)
        try:
            client.proc.send_signal(signal.SIGTERM)
            assert client.wait(timeout_s=120) == STOPS["SIGTERM"], client.log()
        finally:
            client.stop()
        assert owner.holds_store() and owner.proc.poll() is None
        lock = _doctor_lock(root, tmp_path)
        assert lock["status"] == "ok" and f"held by pid {owner.proc.pid}" in lock["detail"]
        assert "serving on" in lock["detail"], lock
        owner.proc.send_signal(signal.SIGTERM)
        assert owner.wait(timeout_s=120) == STOPS["SIGTERM"], owner.log()
    finally:
        owner.stop()
    _assert_released(root, tmp_path)


@pytest.mark.slow
def test_a_terminated_ingest_removes_its_lock_record_and_socket(tmp_path: Path) -> None:
    docs, root = tmp_path / "docs", tmp_path / "store"
    docs.mkdir()
    for n in range(200):
        (docs / f"d{n}.md").write_text(f"# Doc {n}\n\n" + f"Document {n} is about backups. " * 40)
    proc = subprocess.Popen(
        [*INGEST, str(docs), "--domain", "docs", "--tenant", "t", "--store", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(RETRIEVAL_INFERENCE_BACKEND="torch"),
        cwd=REPO_ROOT,
    )
    # it holds the store: mid-ingest
    err = _terminated_once(proc, lambda: read_lock_info(root).pid == proc.pid)
    assert proc.returncode == STOPS["SIGTERM"], err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    _assert_released(root, tmp_path)


@pytest.mark.slow
def test_a_killed_owners_record_is_called_harmless(tmp_path: Path) -> None:
    root, owner, _ = _owner_stopped_by(tmp_path, lambda o: o.proc.send_signal(signal.SIGKILL))
    assert read_lock_info(root).pid == owner.proc.pid  # the record a dead owner leaves
    lock = _doctor_lock(root, tmp_path)
    assert lock["status"] == "ok", lock
    assert f"left by pid {owner.proc.pid}" in lock["detail"] and "harmless" in lock["detail"]
    assert "takes it over" in lock["detail"]


@pytest.mark.slow
def test_a_terminated_http_server_removes_its_lock_record_and_socket(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _filled_store(root)
    serve = [sys.executable, "-m", "server.cli", "serve", "--transport", "streamable-http"]
    proc = subprocess.Popen(
        [*serve, "--port", str(free_port()), "--store", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(RETRIEVAL_MCP__TOKENS_FILE=str(tmp_path / "tokens.json")),
        cwd=REPO_ROOT,
    )
    # it serves (its socket recorded); uvicorn shuts down on SIGTERM, then re-raises it
    info = lambda: read_lock_info(root)  # noqa: E731
    err = _terminated_once(proc, lambda: info().socket is not None and info().pid == proc.pid)
    assert proc.returncode == STOPS["SIGTERM"], err.decode()[-2000:]
    _assert_released(root, tmp_path)
