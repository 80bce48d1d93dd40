"""``retrieval-mcp ingest``'s progress bar and its log lines, as a terminal shows them.

Invariant: while a bar is drawn on stderr, a log record is printed on a line of its own (the
bar cleared first and redrawn below it), so the terminal shows one bar, ending at its final
count, and each log line whole. The case: a fresh model cache, where the first batch exports
the model and logs it at INFO in the middle of the bar (before, the INFO text landed on the
bar's line and the bar was drawn again below it: two bars). A real CLI subprocess, real export.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve_process import REPO_ROOT, cli_env

FILES = 12
INGEST = [sys.executable, "-m", "server.cli", "ingest"]
_BAR = re.compile(rf"\| *\d+/{FILES} \[")  # "| 3/12 [" of "25%|██▌       | 3/12 [00:01<..."
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) \S+: ")


def terminal_lines(stream: str) -> list[str]:
    """What a terminal shows for ``stream``: each line as its carriage returns leave it (a
    segment after ``\\r`` overwrites the line from its first column)."""
    shown = []
    for line in stream.split("\n"):
        screen = ""
        for segment in line.split("\r"):
            screen = segment + screen[len(segment) :]
        if screen.strip():
            shown.append(screen.rstrip())
    return shown


@pytest.mark.slow
def test_one_bar_and_the_export_log_line_on_its_own_line(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(FILES):
        (docs / f"d{n}.md").write_text(f"# Doc {n}\n\nDocument {n} is about backups.\n")
    env = cli_env(
        RETRIEVAL_INFERENCE_BACKEND="openvino",
        RETRIEVAL_MODEL_CACHE_PATH=str(tmp_path / "models"),  # fresh: the export happens
        RETRIEVAL_STORE_PATH=str(tmp_path / "store"),
    )
    proc = subprocess.run(
        [*INGEST, str(docs), "--domain", "docs", "--tenant", "t"],
        capture_output=True,  # bytes: text mode would turn the bar's carriage returns into newlines
        timeout=600,
        env=env,
        cwd=REPO_ROOT,
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 0, stderr
    shown = terminal_lines(stderr)
    bars = [line for line in shown if _BAR.search(line)]
    assert len(bars) == 1, shown
    assert bars[0].startswith("100%") and f"{FILES}/{FILES}" in bars[0], shown
    exports = [line for line in shown if "exporting sentence model" in line]
    assert len(exports) == 1, shown
    for line in shown:
        if line is not bars[0]:  # every other line is one whole log record
            assert _LOG_LINE.match(line) and "%|" not in line, line
