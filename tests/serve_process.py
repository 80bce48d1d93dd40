"""A real ``retrieval-mcp serve --transport stdio`` subprocess holding a store (its owner).

Its stdin stays open (a client that has not gone away) until :meth:`ServeProcess.close_stdin`;
its stderr (the log a user sees) goes to a file, read with :meth:`ServeProcess.log`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from server.retrieval.edge_store import read_lock_info

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVE = [sys.executable, "-m", "server.cli", "serve", "--transport", "stdio"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout first, offline, no reranker."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "RETRIEVAL_RERANKER_MODEL": "none",
        **extra,
    }


class ServeProcess:
    """``serve --transport stdio --tenant t --store root``, started and waited for as owner."""

    def __init__(self, root: Path, log: Path, timeout_s: float = 120.0, owner: bool = True) -> None:
        """Start it and wait until it holds the store (``owner``) or forwards to its holder."""
        self.root, self.log_path = root, log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [*SERVE, "--tenant", "t", "--store", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=cli_env(),
            cwd=REPO_ROOT,
        )
        deadline = time.monotonic() + timeout_s
        while not (self.holds_store() if owner else "forwarding to it" in self.log()):
            assert self.proc.poll() is None, f"serve exited early: {self.log()}"
            assert time.monotonic() < deadline, f"serve never held the store: {self.log()}"
            time.sleep(0.1)

    def holds_store(self) -> bool:
        """The lock file names this process and the socket it serves on."""
        info = read_lock_info(self.root)
        return info.pid == self.proc.pid and info.socket is not None

    def log(self) -> str:
        """Everything the process has written to stderr so far."""
        self._log.flush()
        return self.log_path.read_text()

    def close_stdin(self) -> None:
        """The client goes away (EOF on the server's stdin)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout_s: float = 60.0) -> int:
        """The exit code once it has exited (TimeoutExpired if it has not)."""
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        """Kill it if still running (test cleanup) and close the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self._log.close()
