"""One embedded store, many processes: two stdio MCP servers (as Claude Desktop and an IDE would
launch them) and an ingest from the terminal, all on the same store directory at once."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp_support import cli_env, serve_command

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _stdio(store: Path) -> StdioServerParameters:
    command = serve_command(store, "--transport", "stdio", "--tenant", "acme")
    return StdioServerParameters(command=command[0], args=command[1:], env=cli_env())


async def test_two_stdio_servers_and_an_ingest_share_one_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "backups.md").write_text(
        "# Backups\n\nNightly backups copy the zephyrium database to object storage.\n"
    )
    (docs / "install.md").write_text("# Install\n\nInstall the agent with pip.\n")

    async with Client(_stdio(store)) as first, Client(_stdio(store)) as second:
        for session in (first, second):  # one owns the store, the other forwards to it
            stats = await session.call_tool("index_stats", {})
            assert not stats.is_error, stats.content

        ingest = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "server.cli",
                "ingest",
                str(docs),
                "--domain",
                "docs",
                "--tenant",
                "acme",
                "--store",
                str(store),
                "--no-progress",
            ],
            env=cli_env(),
            check=False,
        )
        assert ingest.returncode == 0, ingest.stderr.decode()
        assert b"Traceback" not in ingest.stderr

        for session in (first, second):
            result = await session.call_tool(
                "doc_search", {"query": "where do the database backups go", "top_k": 2}
            )
            assert not result.is_error, result.content
            hits = (result.structured_content or {})["hits"]
            assert hits and hits[0]["source"].endswith("backups.md")
            sources = await session.call_tool("list_sources", {"domain": "docs"})
            assert not sources.is_error
            assert "install.md" in str(sources.structured_content)
