"""Running code as a user the file system says no to, and trees such a user can reach.

CI and the dev machine run as root, and root ignores ``chmod 000``. To exercise the real OS
errors, :func:`as_unprivileged` runs a function in a forked child that drops to uid/gid 65534
when the test runs as root (a non-root run needs no drop: chmod applies to it). The child is
forked, not a fresh interpreter: on the dev machine the interpreter lives under ``/root``, which
uid 65534 cannot enter. :func:`cli_as_unprivileged` prefers a real ``python -m server.cli``
subprocess when that user can start one, and falls back to ``main()`` in a forked child.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import pickle
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534
HANG_GUARD_S = 300.0
"""A child still running after this long is killed and the test fails: nothing in a walk may
block (a FIFO opened for reading would). Not a timing assertion: a guard against hanging CI."""

T = TypeVar("T")


def drops_privileges() -> bool:
    """True when the tests run as root, so children switch to uid/gid 65534."""
    return os.geteuid() == 0


def as_unprivileged(fn: Callable[[], T], timeout: float = HANG_GUARD_S, drop: bool = True) -> T:
    """``fn()`` run in a forked child that cannot bypass file permissions; its result is pickled
    back. An exception in the child fails the test with the child's traceback. ``drop=False``
    keeps the user (the child is then only a guard against blocking)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_fd)
        try:
            if drop and drops_privileges():
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            payload = pickle.dumps(("ok", fn()))
        except BaseException:
            payload = pickle.dumps(("error", traceback.format_exc()))
        with os.fdopen(write_fd, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_fd)
    data = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([read_fd], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"the child did not finish in {timeout:.0f}s: it blocked")
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            data.extend(chunk)
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    status, value = pickle.loads(bytes(data))
    if status == "error":
        raise AssertionError(f"the unprivileged child failed:\n{value}")
    return value  # type: ignore[no-any-return]


@functools.cache
def permissions_bite() -> bool:
    """True when an unprivileged child really gets EACCES on a ``chmod 000`` folder (false only
    where neither running as a normal user nor dropping root works: tests then skip)."""
    with open_tempdir() as base:
        locked = base / "locked"
        locked.mkdir()
        locked.chmod(0)

        def try_list() -> bool:
            try:
                os.listdir(locked)
            except PermissionError:
                return True
            return False

        try:
            return as_unprivileged(try_list)
        except AssertionError:  # the child could not drop privileges (no CAP_SETUID)
            return False


@contextlib.contextmanager
def open_tempdir() -> Iterator[Path]:
    """A fresh folder uid 65534 can enter (pytest's tmp_path is 0700 under root's tree);
    removed afterwards whatever modes the test left inside it."""
    base = Path(tempfile.mkdtemp(prefix="walk-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        force_remove(base)


def force_remove(path: Path) -> None:
    """``rm -rf`` that first gives every folder back its permissions (needed when not root)."""
    pending = [path]
    while pending:
        here = pending.pop()
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(here).st_mode):
                here.chmod(0o700)
                pending.extend(here / name for name in os.listdir(here))
    subprocess.run(["rm", "-rf", str(path)], check=True)


def open_to_all(path: Path) -> None:
    """Let uid 65534 write in a folder tree made by this (root) process (e.g. a store)."""
    for here, _, files in os.walk(path):
        os.chmod(here, 0o777)
        for name in files:
            os.chmod(os.path.join(here, name), 0o666)


@functools.cache
def _interpreter_runs_unprivileged() -> bool:
    """Can uid 65534 start this interpreter and import the server? (Not on the dev machine,
    where the interpreter lives under /root.)"""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import server.cli"],
            env=cli_env(),
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **extra}


def cli_as_unprivileged(argv: Sequence[str], home: Path) -> tuple[int, str, str]:
    """``retrieval-mcp ARGV`` as a user without privileges: (exit code, stdout, stderr).

    In the forked fallback the child can import only what this process can already reach or
    has imported: run the same command once in this process first (e.g. the first ingest)."""
    command = [sys.executable, "-m", "server.cli", *argv]
    env = cli_env(HOME=str(home))
    if not drops_privileges():
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stdout, proc.stderr
    if _interpreter_runs_unprivileged():
        proc = subprocess.run(
            command, env=env, user=NOBODY, group=NOBODY, extra_groups=[],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr
    return as_unprivileged(functools.partial(_main_captured, list(argv), str(home)))


def _main_captured(argv: list[str], home: str) -> tuple[int, str, str]:
    from server.cli import main

    os.environ["HOME"] = home
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()
