"""``bench --sections concurrency``: many Streamable HTTP clients at once, before and after.

Three server processes (``retrieval-mcp serve --transport streamable-http``) run side by
side, each on its own copy of one store holding two tenants' sample docs and code:

- **before**: query batching off (``batch_window_ms=0``), no practical bound on work
  (``max_in_flight=40``, anyio's default thread pool, as the SDK ran sync tools) and HTTP on
  asyncio + h11 (``fast_http=false``), i.e. each request embedding its query alone;
- **after**: the configured defaults (query micro-batching, bounded work, backpressure);
- **after, torch 1 thread**: the defaults with one intra-op inference thread.

1, 4 and 16 clients (alternating tenants, each with its own token and session) call a mix of
doc_search, code_search, get_chunk and list_sources for a fixed time; the servers take
turns level by level, so load on the machine hits both alike. Every query is unique (a tag of
the run and a counter appended, over all runs against a server), so the query cache does not
hide the embedding cost. The clients run in their own processes
(retrieval_eval/bench_clients.py): the MCP SDK's client at every level, then the bench's lean
client (bench_lean.py: same protocol, a tenth of the CPU per call) at 1 and 16, so the second
set measures the servers rather than clients sharing their cores. Reported per run: calls/s,
p50/p95 per tool, errors, cross-tenant leaks (a result naming the other tenant's folder; must
be 0), the server's peak RSS, and the CPU a call costs the server and the clients. A run of
the cheapest call alone (list_sources) gives the floor of that CPU, and both give the calls/s
the machine's cores could serve at most. ``--soak-seconds`` then runs 16 clients against the
"after" server and checks RSS after the first minute never exceeds the first minute's peak.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from retrieval_eval.bench_server import _env, _free_port, _serve_args
from retrieval_eval.metrics import percentile
from server.settings import Settings

TENANTS = ("tenant-a", "tenant-b")
MIX = ("doc_search", "code_search", "get_chunk", "list_sources")
SEARCH_TOOLS = ("doc_search", "code_search")
LEVELS = (1, 4, 16)
SOAK_FIRST_MINUTE_S = 60.0
BEFORE_ENV = {
    "RETRIEVAL_CONCURRENCY__BATCH_WINDOW_MS": "0",
    "RETRIEVAL_CONCURRENCY__MAX_IN_FLIGHT": "40",
    "RETRIEVAL_CONCURRENCY__MAX_QUEUED": "100000",
    "RETRIEVAL_CONCURRENCY__FAST_HTTP": "false",
}
"""Today's code path as far as settings reach: each query embedded alone, work unbounded, HTTP
on asyncio + h11."""
ONE_THREAD_ENV = {"RETRIEVAL_TORCH_THREADS": "1"}
"""The defaults with one intra-op torch thread: on a machine whose cores are all busy, torch's
default (a thread per core) spends its time spinning, not computing."""
SAMPLES = Path(__file__).resolve().parents[1] / "retrieval_samples"


@dataclass
class RunStats:
    """What one measured run saw, client side and server side."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {t: [] for t in MIX})
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    leaks: int = 0
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    anon_mb: list[tuple[float, float]] = field(default_factory=list)
    server_cpu_s: float = 0.0
    """CPU seconds the server process used during the run (user + system)."""
    client_cpu_s: float = 0.0
    """CPU seconds the client processes used during the run."""

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def throughput(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def search_p95(self) -> float:
        return percentile([ms for t in SEARCH_TOOLS for ms in self.latencies.get(t, [])], 95)

    def absorb(self, part: dict[str, Any]) -> None:
        """Add one client process's report (see retrieval_eval/bench_clients.py)."""
        for tool, values in part["latencies"].items():
            self.latencies.setdefault(tool, []).extend(values)
        self.errors += part["errors"]
        self.error_samples = (self.error_samples + part["error_samples"])[:3]
        self.leaks += part["leaks"]
        self.client_cpu_s += part["cpu_s"]

    def note_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(" ".join(text.split())[:160])


# -- corpus and servers --------------------------------------------------------------------------


def _build_store(root: Path) -> dict[str, int]:
    """The sample docs and code of each tenant, copied under ``root/<tenant>-corpus`` (so a
    leak shows as a foreign folder in a result) and ingested; chunks per tenant."""
    from retrieval_eval.product import build_pipeline, run_ingest

    pipeline = build_pipeline(Settings(store_path=root / "store", reranker_model="none"))
    chunks: dict[str, int] = {}
    try:
        for tenant in TENANTS:
            total = 0
            for domain in ("docs", "code"):
                folder = root / f"{tenant}-corpus" / domain
                shutil.copytree(SAMPLES / domain / "corpus", folder)
                report = run_ingest(
                    pipeline.indexer, [folder], domain=domain, tenant=tenant, progress=False
                )
                total += report.chunks_written
            chunks[tenant] = total
    finally:
        pipeline.store.close()
    return chunks


@dataclass
class ServerProcess:
    """A running ``serve --transport streamable-http`` and what clients need to reach it."""

    process: subprocess.Popen[bytes]
    url: str
    tokens: dict[str, str]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far (0 once it is gone)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self, field: str = "VmRSS") -> float:
        """The server's resident set (``VmRSS``), or one part of it (``RssAnon``: heap,
        stacks, runtime buffers; ``RssFile``: mapped libraries and files), in MB."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return 0.0


@contextlib.contextmanager
def _server(store: Path, tokens_file: Path, extra_env: dict[str, str]) -> Iterator[ServerProcess]:
    from retrieval_eval.product import TokenFile

    tokens = {t: TokenFile(tokens_file).add(t, label="bench")[0] for t in TENANTS}
    port = _free_port()
    args = _serve_args(store, "--transport", "streamable-http", "--port", str(port))
    process = subprocess.Popen(
        [sys.executable, *args, "--tokens-file", str(tokens_file)],
        env={**_env(), **extra_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(process, port)
        yield ServerProcess(process, f"http://127.0.0.1:{port}/mcp", tokens)
    finally:
        process.terminate()
        process.wait(timeout=60)


def _wait_for_port(process: subprocess.Popen[bytes], port: int) -> None:
    import socket

    deadline = time.monotonic() + 180
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the HTTP server did not start") from None
            time.sleep(0.1)


# -- clients -------------------------------------------------------------------------------------


def _queries() -> dict[str, list[str]]:
    def read(path: Path) -> list[str]:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [str(r.get("query") or r.get("text")) for r in rows]

    from retrieval_eval.bench_server import QUERIES

    docs = read(SAMPLES / "docs" / "queries.jsonl") + read(QUERIES)[:100]
    return {"doc_search": docs, "code_search": read(SAMPLES / "code" / "queries.jsonl")}


class _Start:
    """The start line: the run's clock starts once every client has its session open."""

    def __init__(
        self, clients: int, seconds: float, gate: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self.waiting = clients
        self.seconds = seconds
        self.gate = gate
        """Awaited once every client here is ready: the other processes' clients being ready."""
        self.go = anyio.Event()
        self.started = 0.0

    async def ready(self) -> float:
        """Wait for the others; the time the run ends."""
        self.waiting -= 1
        if self.waiting == 0:
            if self.gate is not None:
                await self.gate()
            self.started = time.perf_counter()
            self.go.set()
        await self.go.wait()
        return self.started + self.seconds


_Caller = Callable[[str, dict[str, Any]], Awaitable[tuple[str | None, dict[str, Any]]]]
"""One tool call: (error text or None, structured content)."""


class _Client:
    """One client's session and the state its mix needs (a hit id for get_chunk)."""

    def __init__(
        self,
        index: int,
        url: str,
        tokens: dict[str, str],
        queries: dict[str, list[str]],
        mix: tuple[str, ...] = MIX,
        run: str = "",
    ) -> None:
        self.index = index
        self.run_tag = run
        """Tag of the run, in every query: a server sees each query once over all its runs."""
        self.tenant = TENANTS[index % len(TENANTS)]
        self.foreign = f"{TENANTS[(index + 1) % len(TENANTS)]}-corpus"
        self.url = url
        self.token = tokens[self.tenant]
        self.queries = queries
        self.mix = mix
        self.last_hit: str | None = None
        self.calls = 0

    def arguments(self, tool: str) -> dict[str, Any]:
        self.calls += 1
        if tool == "get_chunk" and self.last_hit:
            return {"id": self.last_hit, "neighbors": 1}
        if tool == "list_sources":
            return {"domain": "docs" if self.calls % 2 else "code"}
        name = tool if tool in SEARCH_TOOLS else "doc_search"
        pool = self.queries[name]
        text = pool[(self.index * 7 + self.calls) % len(pool)]
        return {"query": f"{text} {self.run_tag}{self.index}-{self.calls}", "top_k": 5}

    async def run(self, start: _Start, stats: RunStats, kind: str = "sdk") -> None:
        """Open a session (``kind``: the MCP SDK's client, or the bench's lean one,
        bench_lean.py), wait for every client's, then call the mix until the run ends."""
        if kind == "lean":
            from retrieval_eval.bench_lean import LeanSession

            session = LeanSession(self.url, self.token)
            await session.open()
            try:
                await self._loop(start, stats, self._lean_call(session))
            finally:
                await session.close()
            return
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        headers = {"Authorization": f"Bearer {self.token}"}
        http = create_mcp_http_client(headers=headers)
        async with Client(streamable_http_client(self.url, http_client=http)) as client:
            await client.list_tools()
            await self._loop(start, stats, self._sdk_call(client))

    async def _loop(self, start: _Start, stats: RunStats, call: _Caller) -> None:
        until = await start.ready()
        step = self.index
        while time.perf_counter() < until:
            tool = self.mix[step % len(self.mix)]
            step += 1
            if tool == "get_chunk" and not self.last_hit:
                tool = "doc_search"
            args = self.arguments(tool)
            started = time.perf_counter()
            try:
                error, content = await call(tool, args)
            except Exception as exc:  # a refused or failed call is counted, not fatal
                stats.note_error(f"{tool}: {type(exc).__name__}: {exc}")
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if error is not None:
                stats.note_error(f"{tool}: {error}")
                continue
            stats.latencies.setdefault(tool, []).append(elapsed)
            if self.foreign in json.dumps(content):
                stats.leaks += 1
            hits = content.get("hits") or []
            if tool == "doc_search" and hits:
                self.last_hit = str(hits[0]["id"])

    @staticmethod
    def _sdk_call(client: Any) -> _Caller:
        async def call(tool: str, args: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
            result = await client.call_tool(tool, args)
            if result.is_error:
                return str(getattr(result.content[0], "text", "")), {}
            return None, result.structured_content or {}

        return call

    @staticmethod
    def _lean_call(session: Any) -> _Caller:
        async def call(tool: str, args: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
            reply = await session.call_tool(tool, args)
            result = reply.get("result")
            if result is None:
                return str(reply.get("error")), {}
            if result.get("isError"):
                return str((result.get("content") or [{}])[0].get("text", "")), {}
            return None, result.get("structuredContent") or {}

        return call


CLIENT_PROCESSES = 2
"""Processes the clients are spread over: one process of MCP SDK clients spends 4.3-6.6 ms of
CPU per call of this mix under one interpreter lock, so on its own it tops out at 150-230
calls/s, around the 228 calls/s issue 14 asks for; two lift that cap, more would only add
processes competing for a small machine's cores."""


def _measure(
    server: ServerProcess,
    clients: int,
    seconds: float,
    mix: tuple[str, ...] = MIX,
    kind: str = "sdk",
) -> RunStats:
    """Run ``clients`` clients of ``kind`` (``sdk``: the MCP SDK's; ``lean``: bench_lean.py),
    spread over up to :data:`CLIENT_PROCESSES` processes (retrieval_eval/bench_clients.py),
    for ``seconds`` once every session is open; the server's RSS sampled every 0.5 s and its
    CPU time and the clients' measured over the run."""
    stats = RunStats(latencies={t: [] for t in mix})
    groups = [list(range(i, clients, CLIENT_PROCESSES)) for i in range(CLIENT_PROCESSES)]
    spec = {**_run_spec(server, seconds, mix), "client": kind}
    processes = [_client_process({**spec, "clients": group}) for group in groups if group]
    try:
        for process in processes:
            _expect_line(process, "ready", timeout=180)
        stats.seconds, stats.server_cpu_s = _run_clients(server, processes, stats, seconds)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    return stats


def _run_spec(server: ServerProcess, seconds: float, mix: tuple[str, ...]) -> dict[str, Any]:
    """What every client process of one run is told (its clients' numbers are added)."""
    return {
        "url": server.url,
        "tokens": server.tokens,
        "seconds": seconds,
        "mix": list(mix),
        # the same client numbers make the same queries in every run; a server keeps its
        # query cache across runs (levels, soak), so without a tag of the run the 16-client
        # level found the 1- and 4-client levels' searches cached (a quarter of its clients)
        "run": secrets.token_hex(3),
    }


def _client_process(spec: dict[str, Any]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "retrieval_eval.bench_clients"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_env(),
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(spec) + "\n")
    process.stdin.flush()
    return process


def _expect_line(process: subprocess.Popen[str], expected: str | None, timeout: float) -> str:
    """The next stdout line of a client process (``expected`` checked when given); raises
    RuntimeError when the process ends or is silent for ``timeout`` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline().strip() if ready else ""
    if not line or (expected is not None and line != expected):
        raise RuntimeError(f"a bench client process failed (said {line[:200]!r})")
    return line


def _run_clients(
    server: ServerProcess, processes: list[subprocess.Popen[str]], stats: RunStats, seconds: float
) -> tuple[float, float]:
    """Say go to every client process, sample the server until they report; the run's
    seconds and the server's CPU seconds."""
    stop = threading.Event()

    def sample_rss() -> None:
        started = time.perf_counter()
        while not stop.wait(0.5):
            now = time.perf_counter() - started
            stats.rss_mb.append((now, server.rss_mb()))
            stats.anon_mb.append((now, server.rss_mb("RssAnon")))

    sampler = threading.Thread(target=sample_rss, daemon=True)
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    sampler.start()
    try:
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            stats.absorb(json.loads(_expect_line(process, None, timeout=seconds + 120)))
    finally:
        stop.set()
        sampler.join()
    return time.perf_counter() - started, server.cpu_seconds() - cpu_before


# -- report --------------------------------------------------------------------------------------


def _run_rows(label: str, stats: RunStats) -> list[tuple[str, str]]:
    peak = max((rss for _, rss in stats.rss_mb), default=0.0)
    rows = [
        (
            label,
            f"{stats.throughput:6.1f} calls/s   {stats.calls} calls   errors {stats.errors}   "
            f"leaks {stats.leaks}   server RSS peak {peak:.0f} MB",
        ),
        (
            "    CPU per call",
            f"server {_per_call(stats.server_cpu_s, stats):.2f} ms, "
            f"clients {_per_call(stats.client_cpu_s, stats):.2f} ms",
        ),
    ]
    for tool, values in stats.latencies.items():
        if values:
            rows.append(
                (
                    f"    {tool}",
                    f"p50 {percentile(values, 50):7.1f} ms   p95 {percentile(values, 95):7.1f} ms",
                )
            )
    rows.extend(("    error", sample) for sample in stats.error_samples)
    return rows


def _per_call(cpu_s: float, stats: RunStats) -> float:
    return 1000 * cpu_s / max(stats.calls, 1)


FLOOR_MIX = ("list_sources",)
"""The cheapest call of the mix (one indexed page of a small scroll): what a call costs the
HTTP and MCP layers and a client, with next to no retrieval work."""


def _ceiling_rows(mixed: RunStats, floor: RunStats) -> list[tuple[str, str]]:
    """What the machine's cores allow: the mix's calls/s if server and clients used every core
    at their measured CPU per call, and the same with no retrieval work at all."""
    # the cores this process may run on, not the host's (no affinity call on macOS)
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )

    def ceiling(stats: RunStats) -> str:
        per_call = _per_call(stats.server_cpu_s + stats.client_cpu_s, stats)
        return f"{cores * 1000 / max(per_call, 1e-9):.0f} calls/s ({per_call:.2f} ms of CPU a call)"

    return [
        *_run_rows("after: 4 clients, list_sources only", floor),
        (
            f"calls/s {cores} cores allow (server + clients CPU per call)",
            f"the mix at {max(LEVELS)} clients: {ceiling(mixed)}; "
            f"list_sources only: {ceiling(floor)}",
        ),
    ]


ISSUE_CALLS_S = 76.0
"""Issue 14's measure of the first version: 16 clients, this mix, 76 calls/s (SDK clients)."""
LEAN_LEVELS = (1, 16)


def _ratio_rows(
    runs: dict[tuple[str, int], RunStats], clients: str = "SDK clients"
) -> list[tuple[str, str]]:
    top = max(LEVELS)
    configs = list(dict.fromkeys(name for name, _ in runs))
    before = runs[("before", top)]
    rows = [
        (
            f"throughput at {top} {clients}, {config} / before",
            f"x{runs[(config, top)].throughput / max(before.throughput, 1e-9):.2f} "
            f"({runs[(config, top)].throughput:.1f} vs {before.throughput:.1f} calls/s; "
            f"x{runs[(config, top)].throughput / ISSUE_CALLS_S:.2f} the issue's "
            f"{ISSUE_CALLS_S:.0f})",
        )
        for config in configs[1:]
    ]
    for config in configs:
        single = runs[(config, 1)].search_p95()
        loaded = runs[(config, top)].search_p95()
        rows.append(
            (
                f"search p95, {top} / 1 {clients} ({config})",
                f"x{loaded / max(single, 1e-9):.2f} ({loaded:.0f} ms vs {single:.0f} ms)",
            )
        )
    return rows


def _soak_rows(stats: RunStats) -> list[tuple[str, str]]:
    first = [rss for t, rss in stats.rss_mb if t <= SOAK_FIRST_MINUTE_S]
    later = [rss for t, rss in stats.rss_mb if t > SOAK_FIRST_MINUTE_S]
    first_peak = max(first, default=0.0)
    later_peak = max(later, default=0.0)
    excess = later_peak - first_peak
    verdict = "bounded" if excess <= 0 else f"GREW by {excess:.1f} MB"
    by_minute = _by_minute(stats.rss_mb)
    return [
        *_run_rows(f"soak: {max(LEVELS)} clients, {stats.seconds:.0f} s (after)", stats),
        (
            "soak RSS: first-minute peak / later peak",
            f"{first_peak:.0f} MB / {later_peak:.0f} MB ({verdict}; "
            f"last {stats.rss_mb[-1][1] if stats.rss_mb else 0:.0f} MB)",
        ),
        ("soak RSS peak minute by minute (MB)", by_minute),
        ("  of which anonymous (heap, stacks, runtime)", _by_minute(stats.anon_mb)),
    ]


def _by_minute(samples: list[tuple[float, float]]) -> str:
    """The peak of each minute's samples, comma-separated."""
    minutes: dict[int, float] = {}
    for t, mb in samples:
        minutes[int(t // 60)] = max(minutes.get(int(t // 60), 0.0), mb)
    return ", ".join(f"{mb:.0f}" for _, mb in sorted(minutes.items()))


def _allocator() -> str:
    """The allocator ``serve`` over HTTP runs on here, as server/allocator.py chooses it."""
    from retrieval_eval.product import chosen_library

    setting = Settings().mcp.allocator
    library = chosen_library(setting, os.environ.get("LD_PRELOAD", ""))
    return f"{library or 'glibc'} (mcp.allocator {setting})"


def run_concurrency_bench(
    *, seconds: float = 20.0, soak_seconds: float = 0.0
) -> list[tuple[str, str]]:
    """The concurrency figures as (label, figures) rows (see the module docstring)."""
    rows: list[tuple[str, str]] = []
    for name in ("httpx", "httpx2", "mcp"):  # a log line per request would load the clients
        logging.getLogger(name).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        root = Path(tmp)
        chunks = _build_store(root)
        shutil.copytree(root / "store", root / "store-before")
        shutil.copytree(root / "store", root / "store-1thread")
        rows.append(
            (
                "corpus",
                ", ".join(f"{t}: {n} chunks" for t, n in chunks.items())
                + " (sample docs + code), reranker off",
            )
        )
        rows.append(("servers' memory allocator", _allocator()))
        with (
            _server(root / "store-before", root / "tokens-before.json", BEFORE_ENV) as before,
            _server(root / "store", root / "tokens.json", {}) as after,
            _server(root / "store-1thread", root / "tokens-1.json", ONE_THREAD_ENV) as single,
        ):
            servers = {"before": before, "after": after, "after, torch 1 thread": single}
            for server in servers.values():  # first calls wait for the models to load
                _measure(server, 2, 3.0)
            runs: dict[tuple[str, int], RunStats] = {}
            for clients in LEVELS:
                for name, server in servers.items():
                    runs[(name, clients)] = _measure(server, clients, seconds)
                    rows += _run_rows(f"{name}: {clients} client(s)", runs[(name, clients)])
            rows += _ratio_rows(runs)
            # the same servers under the lean load generator: what they serve when the
            # clients do not take most of the machine's cores (bench_lean.py)
            lean: dict[tuple[str, int], RunStats] = {}
            for clients in LEAN_LEVELS:
                for name, server in servers.items():
                    lean[(name, clients)] = _measure(server, clients, seconds, kind="lean")
                    rows += _run_rows(f"{name}: {clients} lean client(s)", lean[(name, clients)])
            rows += _ratio_rows(lean, "lean clients")
            rows += _ceiling_rows(
                runs[("after", max(LEVELS))], _measure(after, 4, seconds, FLOOR_MIX)
            )
            if soak_seconds > 0:
                for other in (before, single):  # the soak measures the "after" server alone
                    other.process.terminate()
                rows += _soak_rows(_measure(after, max(LEVELS), soak_seconds))
    rows.append(("load average at end", " / ".join(f"{x:.1f}" for x in os.getloadavg())))
    return rows
