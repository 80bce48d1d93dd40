"""MCP server figures for ``retrieval-mcp bench``: start-up time and protocol overhead.

- Time from spawning ``retrieval-mcp serve`` (stdio) to ``tools/list`` answered, and to the
  first ``doc_search`` answered (which waits for the models loading in the background).
- ``doc_search`` latency end to end over stdio and over Streamable HTTP (a real client, a
  real server process, bearer token) against the same search in-process through the
  pipeline; the ratio is the protocol overhead. Every path sees the same queries once each,
  after the same warm-up, so the query-embedding cache is equally cold for all.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from server.evaluation.beir import load_corpus
from server.evaluation.metrics import percentile
from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT / "datasets/eval/legal/corpus.jsonl"
QUERIES = REPO_ROOT / "datasets/eval/legal/queries.jsonl"
TENANT = "bench"
WARMUP = 3


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "TOKENIZERS_PARALLELISM": "false",
    }


def _serve_args(store: Path, *extra: str) -> list[str]:
    return ["-m", "server.cli", "serve", "--store", str(store), "--reranker", "none", *extra]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _queries(limit: int) -> list[str]:
    import json

    rows = [json.loads(line) for line in QUERIES.read_text().splitlines() if line.strip()]
    texts = list(dict.fromkeys(str(r["text"]) for r in rows))
    return texts[: limit + WARMUP]


def _index(store_dir: Path, docs: int) -> int:
    from server.evaluation.runner import index_documents
    from server.retrieval.factory import build_pipeline

    settings = Settings(store_path=store_dir, reranker_model="none")
    pipeline = build_pipeline(settings)
    try:
        report = index_documents(pipeline, load_corpus(CORPUS)[:docs], domain="docs", tenant=TENANT)
    finally:
        pipeline.store.close()
    return report.chunks


async def _time_calls(client: Any, queries: Sequence[str]) -> list[float]:
    for query in queries[:WARMUP]:
        await client.call_tool("doc_search", {"query": query, "top_k": 10})
    times = []
    for query in queries[WARMUP:]:
        start = time.perf_counter()
        result = await client.call_tool("doc_search", {"query": query, "top_k": 10})
        times.append((time.perf_counter() - start) * 1000)
        if result.is_error:
            raise RuntimeError(f"doc_search failed during the benchmark: {result.content}")
    return times


async def _stdio_run(store: Path, queries: Sequence[str]) -> tuple[float, float, list[float]]:
    """(seconds to tools/list, seconds to first search, per-query ms) for one process."""
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=_serve_args(store, "--transport", "stdio", "--tenant", TENANT),
        env=_env(),
    )
    start = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        listed = time.perf_counter() - start
        await client.call_tool("doc_search", {"query": "licence", "top_k": 1})
        first = time.perf_counter() - start
        times = await _time_calls(client, queries) if queries else []
    return listed, first, times


async def _http_run(store: Path, tokens_file: Path, queries: Sequence[str]) -> list[float]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from server.auth import TokenFile

    token, _ = TokenFile(tokens_file).add(TENANT, label="bench")
    port = _free_port()
    args = _serve_args(store, "--transport", "streamable-http", "--port", str(port))
    process = subprocess.Popen(
        [sys.executable, *args, "--tokens-file", str(tokens_file)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the HTTP server did not start") from None
                await anyio.sleep(0.1)
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(streamable_http_client(url, http_client=http)) as client:
            return await _time_calls(client, queries)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _in_process(store: Path, queries: Sequence[str]) -> list[float]:
    from server.retrieval.factory import build_pipeline

    pipeline = build_pipeline(Settings(store_path=store, reranker_model="none"))
    try:
        for query in queries[:WARMUP]:
            pipeline.search(query, domain="docs", tenant=TENANT, top_k=10)
        times = []
        for query in queries[WARMUP:]:
            start = time.perf_counter()
            pipeline.search(query, domain="docs", tenant=TENANT, top_k=10)
            times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        pipeline.store.close()


def _ms(values: Sequence[float]) -> str:
    return f"p50 {percentile(values, 50):7.2f} ms   p95 {percentile(values, 95):7.2f} ms"


def run_server_bench(*, queries: int = 100, docs: int = 60, startups: int = 3) -> str:
    """Start-up and protocol-overhead figures for the MCP server, as printable lines."""
    lines: list[str] = []

    def add(label: str, value: str) -> None:
        lines.append(f"{label:<48}{value}")

    query_texts = _queries(queries)
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        store = Path(tmp) / "store"
        chunks = _index(store, docs)
        add("MCP server corpus", f"{chunks} chunks ({docs} licence documents), reranker off")

        listed: list[float] = []
        first: list[float] = []
        stdio_times: list[float] = []
        for run in range(startups):
            to_list, to_search, times = anyio.run(
                _stdio_run, store, query_texts if run == 0 else []
            )
            listed.append(to_list)
            first.append(to_search)
            stdio_times = stdio_times or times
        add("start -> tools/list answered (stdio)", _seconds(listed))
        add("start -> first doc_search answered (stdio)", _seconds(first))

        http_times = anyio.run(_http_run, store, Path(tmp) / "tokens.json", query_texts)
        local_times = _in_process(store, query_texts)

    local_p50 = percentile(local_times, 50)
    add("doc_search in-process (pipeline)", _ms(local_times))
    add("doc_search over stdio", _ms(stdio_times))
    add("doc_search over Streamable HTTP", _ms(http_times))
    for label, times in (("stdio", stdio_times), ("Streamable HTTP", http_times)):
        p50 = percentile(times, 50)
        add(
            f"protocol overhead, {label}",
            f"x{p50 / local_p50:5.2f} of in-process p50 (+{p50 - local_p50:.2f} ms)",
        )
    return "\n".join(lines)


def _seconds(values: Sequence[float]) -> str:
    return (
        f"median {statistics.median(values):6.2f} s   (runs: "
        + ", ".join(f"{v:.2f}" for v in values)
        + ")"
    )
