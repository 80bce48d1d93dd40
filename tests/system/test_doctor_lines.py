"""``retrieval-mcp doctor`` says each thing once, in its output and in the owner's log.

Invariant: every line a user sees during a doctor run is distinct (log lines compared without
their timestamps): doctor's stdout and stderr, and the log of the process holding the store,
whether another process holds the store (doctor goes through it: a liveness probe of its
socket, then a client) or nobody does (doctor opens it itself). Before, the owner logged
"pid N uses the store" for the probe and again for the client. Real ``serve`` subprocess,
real doctor subprocesses, a real store.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.retrieval.test_store_faults import _filled_store
from tests.serve_process import REPO_ROOT, ServeProcess, cli_env

RUNS = 2  # doctor runs per state: a second run must not repeat (or newly say) anything
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _repeated(text: str) -> list[str]:
    lines = [_STAMP.sub("", line) for line in text.splitlines() if line.strip()]
    return [line for line, n in Counter(lines).items() if n > 1]


def _doctor(root: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "doctor", "--store", str(root), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(RETRIEVAL_MCP__TOKENS_FILE=str(tmp_path / "tokens.json")),
        cwd=REPO_ROOT,
    )


@pytest.mark.slow
def test_every_line_of_a_doctor_run_is_said_once(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _filled_store(root)
    for _ in range(RUNS):  # nobody holds the store: doctor opens it itself
        proc = _doctor(root, tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _repeated(proc.stdout) == [] and _repeated(proc.stderr) == []
    owner = ServeProcess(root, tmp_path / "serve.log")
    try:
        for _ in range(RUNS):  # held by a serving owner: doctor goes through it
            before = len(owner.log())
            proc = _doctor(root, tmp_path)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert f"pid {owner.proc.pid}" in proc.stdout
            assert _repeated(proc.stdout) == [] and _repeated(proc.stderr) == []
            during = owner.log()[before:]
            assert _repeated(during) == [], during
            assert during.count(" uses the store at ") == 1, during  # the client, once
    finally:
        owner.stop()


@pytest.mark.slow
def test_a_finding_is_not_also_a_log_line(tmp_path: Path) -> None:
    """The default cross-encoder cannot load offline: its reason is one finding on stdout, not
    also a WARNING log line on stderr (the terminal shows both streams)."""
    root = tmp_path / "store"
    _filled_store(root)
    env = cli_env(RETRIEVAL_MCP__TOKENS_FILE=str(tmp_path / "tokens.json"))
    env.pop("RETRIEVAL_RERANKER_MODEL")  # the default id, not on this machine
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "doctor", "--store", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "HF_HUB_CACHE": str(tmp_path / "hub")},
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = proc.stdout + proc.stderr
    assert "warn    cross-encoder: reranker " in proc.stdout
    assert shown.count("could not be loaded") == 1, shown
    assert _repeated(shown) == []
