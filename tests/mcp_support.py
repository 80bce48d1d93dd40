"""A two-tenant corpus in all three domains, indexed through the real indexer, and helpers
to talk to the MCP server in-process, over HTTP (uvicorn on 127.0.0.1) and over stdio."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import uvicorn
from mcp.types import CallToolResult, Tool

from server.app import build_server, http_app
from server.auth import TokenFile
from server.http_stack import http_stack
from server.oauth import JwtVerifier, OAuthConfig
from server.request_gate import RequestGate
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.store import VectorStore
from server.retrieval.types import Chunk
from server.runtime import ServerRuntime
from server.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANTS = ("acme", "globex")
SECRET_WORD = {"acme": "zephyrium", "globex": "quasarite"}
"""A word only that tenant's documents contain: seeing it elsewhere is a leak."""


def initialize_request(client: str = "probe") -> dict[str, Any]:
    """A raw JSON-RPC ``initialize`` request, for tests that speak the wire format directly."""
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": client, "version": "0"},
        },
    }


HTTP_ACCEPT = {"Accept": "application/json, text/event-stream"}
"""The Accept header a Streamable HTTP client sends."""


def _docs(tenant: str) -> list[Chunk]:
    root = f"/srv/{tenant}/handbook"
    word = SECRET_WORD[tenant]
    files = {
        "install.md": [
            (["Installation", "Linux"], f"Install the {word} agent with pip install agent."),
            (["Installation", "Linux"], "Then start the service with systemctl start agent."),
            (["Installation", "Upgrades"], "Upgrade by stopping the service and reinstalling."),
        ],
        "guides/backup.md": [
            (["Backups"], f"Nightly backups copy the {word} database to object storage."),
            (["Backups", "Restore"], "Restore a backup with agent restore --from latest."),
        ],
        "notes/meeting.txt": [
            ([], "Meeting notes: the team agreed to rotate credentials every quarter."),
        ],
    }
    chunks = []
    for rel, parts in files.items():
        doc_type = "text" if rel.endswith(".txt") else "markdown"
        for i, (heading, text) in enumerate(parts):
            chunks.append(
                Chunk(
                    tenant=tenant,
                    doc_id=f"{root}/{rel}",
                    source=f"{root}/{rel}",
                    chunk_index=i,
                    text=text,
                    title=" > ".join(heading),
                    metadata={
                        "rel_path": rel,
                        "doc_type": doc_type,
                        "heading_path": heading,
                        "chunk_count": len(parts),
                        "content_hash": "0" * 64,
                        "ingested_at": "2026-11-22T10:00:00+00:00",
                    },
                )
            )
    return chunks


def _legal(tenant: str) -> list[Chunk]:
    root = f"/srv/{tenant}/legal"
    word = SECRET_WORD[tenant]
    sections = [
        ("12", "12", "Termination. Either party may terminate this agreement."),
        ("12 > 12.3", "12.3", "Termination for convenience requires ninety days notice."),
        ("12 > 12.3 > (b)", "(b)", f"Notice must be sent to the {word} legal department."),
        ("14", "14", "Limitation of liability. Liability is capped at fees paid."),
    ]
    chunks = [
        Chunk(
            tenant=tenant,
            doc_id=f"{root}/msa.txt",
            source=f"{root}/msa.txt",
            chunk_index=i,
            text=text,
            title=f"Master Services Agreement > {path}",
            metadata={
                "rel_path": "msa.txt",
                "doc_type": "contract",
                "section_path": path,
                "section": label,
                "jurisdiction": "DE",
                "chunk_count": len(sections),
            },
        )
        for i, (path, label, text) in enumerate(sections)
    ]
    chunks.append(
        Chunk(
            tenant=tenant,
            doc_id=f"{root}/licence.txt",
            source=f"{root}/licence.txt",
            chunk_index=0,
            text="Permission is hereby granted, free of charge, to any person.",
            title="MIT License",
            metadata={
                "rel_path": "licence.txt",
                "doc_type": "licence",
                "section_path": "1",
                "section": "1",
                "chunk_count": 1,
            },
        )
    )
    return chunks


def _code(tenant: str) -> list[Chunk]:
    root = f"/srv/{tenant}/repo"
    word = SECRET_WORD[tenant]
    units = [
        (
            "src/server/http.py",
            "python",
            "start_http_server",
            "function",
            10,
            24,
            f"def start_http_server(port):\n    '''Serve the {word} API.'''\n    listen(port)",
        ),
        (
            "src/server/http.py",
            "python",
            "HttpHandler.handle",
            "method",
            26,
            40,
            "def handle(self, request):\n    return route(request)",
        ),
        (
            "src/util/retry.py",
            "python",
            "retry",
            "function",
            1,
            12,
            "def retry(fn, attempts=3):\n    for _ in range(attempts):\n        fn()",
        ),
        (
            "web/app.ts",
            "typescript",
            "startServer",
            "function",
            5,
            9,
            "export function startServer(port: number) { app.listen(port); }",
        ),
    ]
    chunks = []
    counters: dict[str, int] = {}
    for rel, language, symbol, kind, start, end, text in units:
        index = counters.get(rel, 0)
        counters[rel] = index + 1
        chunks.append(
            Chunk(
                tenant=tenant,
                doc_id=f"{root}/{rel}",
                source=f"{root}/{rel}",
                chunk_index=index,
                text=text,
                title=f"{symbol}()",
                metadata={
                    "rel_path": rel,
                    "doc_type": "code",
                    "language": language,
                    "symbol": symbol,
                    "symbol_kind": kind,
                    "signature": f"{symbol}(...)",
                    "start_line": start,
                    "end_line": end,
                },
            )
        )
    for chunk in chunks:
        chunk.metadata["chunk_count"] = counters[chunk.source.split("/repo/", 1)[1]]
    return chunks


def index_corpus(retrieval: Retrieval) -> None:
    """Index every tenant's docs, legal and code chunks."""
    for tenant in TENANTS:
        retrieval.indexer.index("docs", _docs(tenant))
        retrieval.indexer.index("legal", _legal(tenant))
        retrieval.indexer.index("code", _code(tenant))


def server_settings(store_path: Path, **overrides: Any) -> Settings:
    """Settings for a test server: a given store path, reranker off unless overridden."""
    values: dict[str, Any] = {"store_path": store_path, "reranker_model": "none"}
    values.update(overrides)
    return Settings(**values)


def validate_structured(tool: Tool, result: CallToolResult) -> dict[str, Any]:
    """The structured content, checked against the tool's published outputSchema."""
    assert not result.is_error, result.content
    assert tool.output_schema is not None
    assert result.structured_content is not None
    jsonschema.validate(result.structured_content, tool.output_schema)
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The text of an is_error result."""
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(process: subprocess.Popen[str], port: int, timeout: float = 120.0) -> None:
    """Return once ``process`` accepts TCP connections on 127.0.0.1:``port``; fails the test
    (with the server's stderr) when it exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not start listening"
            time.sleep(0.1)


@contextlib.contextmanager
def http_server(
    runtime: ServerRuntime,
    tokens: TokenFile | None,
    transport: str,
    gate: RequestGate | None = None,
) -> Iterator[str]:
    """Serve ``runtime`` over an HTTP transport on 127.0.0.1 in a thread; yields the base URL.
    Without ``tokens``, OAuth as ``runtime.settings.mcp.oauth`` configures it. ``gate``: the
    server's request gate (its 503 answers included), else a private one."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if tokens is not None:
        server = build_server(runtime, tokens=tokens, base_url=base, gate=gate)
    else:
        served = base + ("/sse" if transport == "sse" else "/mcp")
        config = OAuthConfig.resolve(runtime.settings.mcp.oauth, served)
        server = build_server(runtime, oauth=JwtVerifier(config), base_url=base, gate=gate)
    app = http_app(server, transport, runtime.settings, "127.0.0.1", gate)  # type: ignore[arg-type]
    stack = http_stack(runtime.settings.concurrency)  # the event loop and parser serve_http uses
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        log_level="warning",
        loop=stack.loop,
        http=stack.http,
    )
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    runtime.acquire()
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        runtime.release()


def cli_env(**extra: str) -> dict[str, str]:
    """Environment for a CLI subprocess importing this checkout, offline."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        **extra,
    }


def serve_command(store: Path, *args: str) -> list[str]:
    """The argv of ``retrieval-mcp serve`` on this checkout."""
    return [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--store",
        str(store),
        "--reranker",
        "none",
        *args,
    ]


def open_retrieval(store: VectorStore, settings: Settings, embedder: Any) -> Retrieval:
    """Searcher and indexer over a test store (no reranker)."""
    return assemble(settings, store, embedder)
