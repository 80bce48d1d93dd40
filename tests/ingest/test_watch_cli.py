"""Watching through the real commands: ``retrieval-mcp watch`` as a process (its store read by
this process through the shared store), and ``serve --watch`` over a real MCP stdio session."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_support import cli_env, serve_command
from watch_support import hits_text, poll, sources, write_atomic

from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.shared_store import SharedStore
from server.retrieval.types import SearchRequest
from server.settings import Settings

TENANT = "acme"


def _cli(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "server.cli", *args]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "heron.md").write_text("# Heron\n\nThe grey heron waits by the river.\n")
    (root / "kestrel.md").write_text("# Kestrel\n\nThe kestrel hovers over the field.\n")
    return root


class _Lines:
    """A process's stdout lines, read on a thread (so waiting for one never blocks)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))


@pytest.fixture
def watch_process(docs: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], _Lines]]:
    store = tmp_path / "store"
    command = _cli(
        "watch", str(docs), "--domain", "docs", "--tenant", TENANT, "--store", str(store)
    )
    process = subprocess.Popen(
        command, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    yield process, _Lines(process)
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=60)


@pytest.mark.slow
def test_the_watch_command(
    watch_process: tuple[subprocess.Popen[str], _Lines],
    docs: Path,
    tmp_path: Path,
    embedder: DenseEmbedder,
) -> None:
    process, out = watch_process
    poll(lambda: any(" 2 added" in line for line in out.lines), "the catch-up summary")
    assert out.lines[0].startswith(f"watching {docs.resolve()} (docs, tenant {TENANT})")
    settings = Settings(store_path=tmp_path / "store", reranker_model="none")
    store = SharedStore(settings.store_path)  # the watcher owns the store: calls go to it
    try:
        assert not store.is_owner
        retrieval = assemble(settings, store, embedder, None)
        real = docs.resolve()
        write_atomic(docs / "heron.md", "# Heron\n\nThe heron caught a silver eel.\n")
        (docs / "kestrel.md").unlink()
        poll(lambda: "silver eel" in hits_text(retrieval, TENANT, "heron silver eel"), "edit")
        poll(lambda: sources(retrieval, TENANT) == {f"{real}/heron.md"}, "the deletion")
        response = retrieval.searcher.search(
            SearchRequest(query="heron", domain="docs", tenant=TENANT)
        )
        (root,) = response.freshness
        assert (root.root, root.watched, root.status, root.pending) == (
            real.as_posix(),
            True,
            "fresh",
            0,
        )
    finally:
        store.close()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


@pytest.mark.slow
def test_serve_watch_over_a_real_stdio_session(docs: Path, tmp_path: Path) -> None:
    """Over a real stdio session the watcher follows edits; when the client closes stdin the
    watcher records that it stopped before the store closes (the session's end closed the
    store under it: an ERROR and a traceback on stderr)."""
    import anyio

    store = tmp_path / "store"
    command = serve_command(
        store, "--transport", "stdio", "--tenant", TENANT, "--watch", f"{docs}:docs"
    )
    params = StdioServerParameters(command=command[0], args=command[1:], env=cli_env())
    real = docs.resolve().as_posix()

    async def search(client: Any, query: str) -> dict[str, Any]:
        result = await client.call_tool("doc_search", {"query": query, "top_k": 5})
        assert not result.is_error, result.content
        structured: dict[str, Any] = result.structured_content
        return structured

    async def wait_for(client: Any, query: str, check: Any, what: str) -> dict[str, Any]:
        end = anyio.current_time() + 90
        while True:
            found = await search(client, query)
            if check(found):
                return found
            assert anyio.current_time() < end, f"timed out waiting for {what}"
            await anyio.sleep(0.1)

    async def session(server: Any) -> None:
        async with Client(server) as client:
            first = await wait_for(
                client,
                "grey heron river",
                lambda r: any("grey heron" in h["text"] for h in r["hits"]),
                "the catch-up",
            )
            assert first["freshness"][0]["root"] == real
            write_atomic(docs / "heron.md", "# Heron\n\nThe heron nests in the tall reeds.\n")
            (docs / "kestrel.md").unlink()
            found = await wait_for(
                client,
                "heron nests reeds",
                lambda r: any("tall reeds" in h["text"] for h in r["hits"]),
                "the edit",
            )
            assert not any("grey heron" in h["text"] for h in found["hits"])
            await wait_for(
                client,
                "kestrel hovers field",
                lambda r: all(not h["source"].endswith("kestrel.md") for h in r["hits"]),
                "the deletion",
            )
            stats = await client.call_tool("index_stats", {})
            (fresh,) = stats.structured_content["freshness"]
            assert fresh["root"] == real and fresh["watched"] and fresh["domain"] == "docs"
            assert "index of " in stats.content[0].text

    errlog = tmp_path / "server-stderr.log"
    with errlog.open("w") as err:
        server = stdio_client(params, errlog=err)
        anyio.run(session, server)  # then the client closes stdin: the server stops
    logged = errlog.read_text()
    assert "watching " in logged and "synced " in logged, logged
    assert "ERROR" not in logged and "Traceback" not in logged, logged


def test_serve_watch_needs_a_tenant_over_http_and_a_real_folder(docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    cases = [
        (["--transport", "streamable-http", "--watch", f"{docs}:docs"], "--watch-tenant"),
        (["--transport", "stdio", "--tenant", "t", "--watch", f"{docs}/nope:docs"], "no such"),
        (["--transport", "stdio", "--tenant", "t", "--watch", f"{docs}:recipes"], "domain"),
        (["--transport", "stdio", "--tenant", "t", "--watch", str(docs)], "PATH:DOMAIN"),
    ]
    for args, expected in cases:
        done = subprocess.run(
            serve_command(store, *args), env=cli_env(), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        (line,) = [x for x in done.stderr.splitlines() if x.startswith("error:")]
        assert expected in line and "Traceback" not in done.stderr
