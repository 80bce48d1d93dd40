"""``retrieval-mcp ingest``'s progress bar and its log lines, as a terminal shows them.

Invariant: while a bar is drawn on stderr, a log record is printed on a line of its own (the
bar cleared first and redrawn below it), so the terminal shows one bar, ending at its final
count, and each log line whole. The case: a fresh model cache, where the first batch exports
the model and logs it at INFO in the middle of the bar (before, the INFO text landed on the
bar's line and the bar was drawn again below it: two bars). A real CLI subprocess, real export.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import tty
from pathlib import Path

import pytest

from server.progress_bar import ProgressBar
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


def _drawn_on_a_terminal(columns: int, rows: int, total: int) -> list[str]:
    """The lines a pseudo-terminal reporting ``columns`` x ``rows`` shows for a ProgressBar
    counting to ``total`` (its output read as it comes, so the bar never waits on the pty)."""
    controller, terminal = os.openpty()
    tty.setraw(terminal)  # no newline translation: the bytes as tqdm wrote them
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    received = bytearray()

    def read() -> None:
        while chunk := _read_or_empty(controller):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    with (
        open(terminal, "w", encoding="utf-8", closefd=True) as stream,
        ProgressBar(total, unit="file", desc="ingest", stream=stream) as bar,
    ):
        for _ in range(total):
            bar.update()
    reader.join(timeout=30)
    os.close(controller)
    return terminal_lines(received.decode("utf-8"))


def _read_or_empty(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: the terminal side is closed and everything was read
        return b""


@pytest.mark.parametrize(
    ("columns", "rows", "width"), [(0, 0, 79), (0, 24, 79), (100, 0, 99), (120, 40, 119)]
)
def test_a_terminal_of_unknown_size_gets_a_bar_of_the_default_width(
    columns: int, rows: int, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A terminal reporting 0 columns or 0 rows (some containers do) still shows the bar, as
    wide as an 80-column terminal's (tqdm leaves a column free); a real size is followed."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
    shown = _drawn_on_a_terminal(columns, rows, total=7)
    assert len(shown) == 1, shown
    final = shown[0]
    assert final.startswith("ingest: 100%|") and final.endswith("file/s]"), final
    assert "| 7/7 [" in final and len(final) == width, final
    bar = final.split("|")[1]
    assert set(bar) == {"█"} and len(bar) > 10, bar  # a full bar, wider than tqdm's default 10


def test_columns_and_lines_stand_in_for_a_terminal_that_reports_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setenv("LINES", "10")
    [final] = _drawn_on_a_terminal(0, 0, total=3)
    assert len(final) == 59 and "| 3/3 [" in final, final
