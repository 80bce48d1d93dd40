"""An independent client: the MCP Inspector CLI (Node, TypeScript SDK) over stdio and HTTP."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp_support import (
    REPO_ROOT,
    SECRET_WORD,
    cli_env,
    http_server,
    index_corpus,
    open_retrieval,
    serve_command,
    server_settings,
)

from server.auth import TokenFile
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` skips it

INSPECTOR = REPO_ROOT / ".ci/node/node_modules/@modelcontextprotocol/inspector-cli/build/index.js"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed")
    if not INSPECTOR.exists():
        pytest.fail("the inspector CLI is missing: run `make node-deps` (npm ci in .ci/node)")
    return path


def inspect(node: str, *args: str) -> Any:
    done = subprocess.run(
        [node, str(INSPECTOR), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        cwd=INSPECTOR.parent,  # it finds its own package.json relative to the working directory
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def check_tool_list(listing: dict[str, Any]) -> None:
    tools = {t["name"]: t for t in listing["tools"]}
    assert {"doc_search", "legal_search", "code_search", "embed", "get_chunk"} <= set(tools)
    assert tools["doc_search"]["outputSchema"]["type"] == "object"
    assert tools["doc_search"]["annotations"]["readOnlyHint"] is True


def check_search(result: dict[str, Any], tenant: str) -> None:
    assert not result.get("isError"), result
    hits = result["structuredContent"]["hits"]
    assert hits and all(h["source"].startswith(f"/srv/{tenant}/") for h in hits)
    assert any(SECRET_WORD[tenant] in h["text"] for h in hits)
    assert result["content"][0]["type"] == "text"
    assert re.match(r"\d+ docs hits? for ", result["content"][0]["text"])


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder) -> Path:
    path = tmp_path_factory.mktemp("inspector") / "store"
    store = EdgeStore(path)
    index_corpus(open_retrieval(store, server_settings(path), embedder))
    store.close()
    return path


def test_inspector_over_stdio(node: str, disk_store: Path) -> None:
    # the command goes before the options, its arguments after '--' (commander's parsing)
    program, *arguments = serve_command(disk_store, "--transport", "stdio", "--tenant", "acme")
    check_tool_list(inspect(node, program, "--method", "tools/list", "--", *arguments))
    result = inspect(
        node,
        program,
        "--method",
        "tools/call",
        "--tool-name",
        "doc_search",
        "--tool-arg",
        f"query=where does the {SECRET_WORD['acme']} database go",
        "--tool-arg",
        "top_k=3",
        "--",
        *arguments,
    )
    check_search(result, "acme")


@pytest.fixture(scope="module")
def live_runtime(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[ServerRuntime]:
    path = tmp_path_factory.mktemp("inspector-http") / "store"
    store = EdgeStore(path)
    settings = server_settings(path)
    index_corpus(open_retrieval(store, settings, embedder))
    yield ServerRuntime(settings, store=store, embedder=embedder)
    store.close()


def test_inspector_over_streamable_http(
    node: str, live_runtime: ServerRuntime, tmp_path: Path
) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    token, _ = tokens.add("globex")
    with http_server(live_runtime, tokens, "streamable-http") as base:
        common = [
            f"{base}/mcp",
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {token}",
        ]
        check_tool_list(inspect(node, *common, "--method", "tools/list"))
        result = inspect(
            node,
            *common,
            "--method",
            "tools/call",
            "--tool-name",
            "doc_search",
            "--tool-arg",
            f"query={SECRET_WORD['globex']} backups",
        )
        check_search(result, "globex")
        refused = subprocess.run(
            [node, str(INSPECTOR), f"{base}/mcp", "--transport", "http", "--method", "tools/list"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=INSPECTOR.parent,
        )
        assert refused.returncode != 0 and "invalid_token" in refused.stderr
