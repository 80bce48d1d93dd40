"""Watch figures for ``retrieval-mcp bench``: save-to-searchable latency and idle overhead.

A real ``retrieval-mcp watch`` process keeps a folder of small Markdown files indexed. The bench
saves one file at a time the way editors do (temporary file renamed over it) with a word no
other file holds, then searches for that word (BM25, through the store the watcher owns, from
this process) until the hit carries the new text: the time from the save to that moment, per
save, gives p50 / p95 (goal: under 2 s). Then nothing changes for a while: the watcher's CPU
time over that window (per minute) and its resident memory are its idle cost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from retrieval_eval import product
from retrieval_eval.metrics import percentile
from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
SAVE_TIMEOUT_S = 60.0
POLL_S = 0.02
Row = tuple[str, str]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "TOKENIZERS_PARALLELISM": "false",
    }


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _save(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp~")
    tmp.write_text(text)
    os.replace(tmp, path)


def _wait_line(
    lines: list[str], needle: str, process: subprocess.Popen[str], deadline: float
) -> None:
    end = time.monotonic() + deadline
    while not any(needle in line for line in lines):
        if process.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"the watcher did not report {needle!r} (exit {process.poll()})")
        time.sleep(0.05)


def run_watch_bench(saves: int = 20, idle_seconds: float = 30.0, files: int = 200) -> list[Row]:
    """Rows: save-to-searchable p50/p95 over ``saves`` saves, idle CPU and RSS of the watcher
    over ``idle_seconds`` (Linux: reads /proc)."""
    with tempfile.TemporaryDirectory(prefix="retrieval-bench-watch-") as scratch:
        root, store = Path(scratch) / "docs", Path(scratch) / "store"
        root.mkdir()
        for i in range(files):
            (root / f"doc{i:04}.md").write_text(
                f"# Document {i}\n\nThis note number {i} describes an ordinary topic.\n"
            )
        command = [sys.executable, "-m", "server.cli", "watch", str(root)]
        command += ["--domain", "docs", "--tenant", TENANT, "--store", str(store)]
        process = subprocess.Popen(
            command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        lines: list[str] = []

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            _wait_line(lines, f"{files} added", process, 600)
            settings = Settings(store_path=store, reranker_model="none")
            pipeline = product.assemble_pipeline(
                settings, product.open_store(settings), product.load_embedder(settings)
            )
            latencies = []
            for i in range(saves):
                word = f"zqx{i}vlorp{os.getpid()}"
                _save(root / f"doc{(i * 7) % files:04}.md", f"# Saved {i}\n\nThe {word} is here.\n")
                started = time.perf_counter()
                while True:
                    hits = product.rank(
                        pipeline, word, domain="docs", tenant=TENANT, limit=3, mode="bm25"
                    ).hits
                    if any(word in hit.text for hit in hits):
                        break
                    if time.perf_counter() - started > SAVE_TIMEOUT_S:
                        raise RuntimeError(f"save {i} not searchable after {SAVE_TIMEOUT_S:.0f}s")
                    time.sleep(POLL_S)
                latencies.append(time.perf_counter() - started)
            pipeline.store.close()
            cpu_before = _cpu_seconds(process.pid)
            time.sleep(idle_seconds)  # the measurement: nothing changes for this long
            cpu_idle = _cpu_seconds(process.pid) - cpu_before
            rss = _rss_mb(process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    ms = [s * 1000 for s in latencies]
    p50, p95 = percentile(ms, 50), percentile(ms, 95)
    verdict = "meets" if p95 < 2000 else "misses"
    return [
        (
            f"save -> searchable ({saves} saves, {files} files)",
            f"p50 {p50:7.0f} ms   p95 {p95:7.0f} ms   ({verdict} the 2 s goal at p95)",
        ),
        (
            f"idle CPU of the watcher ({idle_seconds:.0f} s window)",
            f"{cpu_idle * 60 / idle_seconds:.3f} CPU s per minute",
        ),
        ("watcher RSS (model loaded, idle)", f"{rss:.0f} MB"),
    ]
