"""MCP server figures for ``retrieval-mcp bench``: start-up time and protocol overhead.

- Time from spawning ``retrieval-mcp serve`` (stdio) to ``tools/list`` answered, and to the
  first ``doc_search`` answered (which waits for the models loading in the background).
- ``doc_search`` latency end to end over stdio and over Streamable HTTP (a real client, a
  real server process, bearer token) against the same search in-process through the
  pipeline; the ratio is the protocol overhead. The three paths take turns query by query
  (each on its own copy of the store), see each query once after the same warm-up, so the
  query-embedding cache is equally cold for all and load on the machine hits all alike.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from retrieval_eval.beir import load_corpus
from retrieval_eval.eval_sets import ensure_legal_corpus
from retrieval_eval.metrics import percentile
from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
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
    from retrieval_eval.product import build_pipeline
    from retrieval_eval.runner import index_documents

    settings = Settings(store_path=store_dir, reranker_model="none")
    pipeline = build_pipeline(settings)
    try:
        report = index_documents(
            pipeline, load_corpus(ensure_legal_corpus())[:docs], domain="docs", tenant=TENANT
        )
    finally:
        pipeline.store.close()
    return report.chunks


async def _stdio_startup(store: Path) -> tuple[float, float]:
    """Seconds from spawning a stdio server to tools/list answered and to a first search."""
    from mcp import Client

    start = time.perf_counter()
    async with Client(_stdio_params(store)) as client:
        await client.list_tools()
        listed = time.perf_counter() - start
        await client.call_tool("doc_search", {"query": "licence", "top_k": 1})
        return listed, time.perf_counter() - start


def _stdio_params(store: Path) -> Any:
    from mcp import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable,
        args=_serve_args(store, "--transport", "stdio", "--tenant", TENANT),
        env=_env(),
    )


@contextlib.contextmanager
def _http_process(store: Path, tokens_file: Path, port: int) -> Iterator[None]:
    args = _serve_args(store, "--transport", "streamable-http", "--port", str(port))
    process = subprocess.Popen(
        [sys.executable, *args, "--tokens-file", str(tokens_file)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the HTTP server did not start") from None
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _interleaved(
    stores: tuple[Path, Path, Path], tokens_file: Path, queries: Sequence[str]
) -> dict[str, list[float]]:
    """Per-query ms for each path, the paths taking turns query by query (so load changes on
    the machine hit all three alike). Each path has its own copy of the store."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from retrieval_eval.product import TokenFile, build_pipeline, search

    local_store, stdio_store, http_store = stores
    token, _ = TokenFile(tokens_file).add(TENANT, label="bench")
    port = _free_port()
    pipeline = build_pipeline(Settings(store_path=local_store, reranker_model="none"))
    times: dict[str, list[float]] = {"in-process": [], "stdio": [], "http": []}
    try:
        with _http_process(http_store, tokens_file, port):
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
            url = f"http://127.0.0.1:{port}/mcp"
            async with (
                Client(_stdio_params(stdio_store)) as stdio,
                Client(streamable_http_client(url, http_client=http)) as remote,
            ):
                for i, query in enumerate(queries):
                    args = {"query": query, "top_k": 10}
                    start = time.perf_counter()
                    search(pipeline, query, domain="docs", tenant=TENANT, top_k=10)
                    local_ms = (time.perf_counter() - start) * 1000
                    remote_ms = {}
                    for name, client in (("stdio", stdio), ("http", remote)):
                        start = time.perf_counter()
                        result = await client.call_tool("doc_search", args)
                        remote_ms[name] = (time.perf_counter() - start) * 1000
                        if result.is_error:
                            raise RuntimeError(f"doc_search failed over {name}: {result.content}")
                    if i >= WARMUP:
                        times["in-process"].append(local_ms)
                        times["stdio"].append(remote_ms["stdio"])
                        times["http"].append(remote_ms["http"])
    finally:
        pipeline.store.close()
    return times


def _ms(values: Sequence[float]) -> str:
    return f"p50 {percentile(values, 50):7.2f} ms   p95 {percentile(values, 95):7.2f} ms"


def run_server_bench(
    *, queries: int = 100, docs: int = 60, startups: int = 3
) -> list[tuple[str, str]]:
    """Start-up and protocol-overhead figures for the MCP server, as (label, figures) rows."""
    rows: list[tuple[str, str]] = []

    def add(label: str, value: str) -> None:
        rows.append((label, value))

    query_texts = _queries(queries)
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        root = Path(tmp)
        chunks = _index(root / "store", docs)
        add("MCP server corpus", f"{chunks} chunks ({docs} licence documents), reranker off")
        listed: list[float] = []
        first: list[float] = []
        for _ in range(startups):
            to_list, to_search = anyio.run(_stdio_startup, root / "store")
            listed.append(to_list)
            first.append(to_search)
        add("start -> tools/list answered (stdio)", _seconds(listed))
        add("start -> first doc_search answered (stdio)", _seconds(first))
        for copy in ("stdio", "http"):
            shutil.copytree(root / "store", root / copy)
        stores = (root / "store", root / "stdio", root / "http")
        times = anyio.run(_interleaved, stores, root / "tokens.json", query_texts)

    local_p50 = percentile(times["in-process"], 50)
    add("doc_search in-process (pipeline)", _ms(times["in-process"]))
    add("doc_search over stdio", _ms(times["stdio"]))
    add("doc_search over Streamable HTTP", _ms(times["http"]))
    for label, key in (("stdio", "stdio"), ("Streamable HTTP", "http")):
        p50 = percentile(times[key], 50)
        add(
            f"protocol overhead, {label}",
            f"x{p50 / local_p50:5.2f} of in-process p50 (+{p50 - local_p50:.2f} ms)",
        )
    return rows


def _seconds(values: Sequence[float]) -> str:
    return (
        f"median {statistics.median(values):6.2f} s   (runs: "
        + ", ".join(f"{v:.2f}" for v in values)
        + ")"
    )
