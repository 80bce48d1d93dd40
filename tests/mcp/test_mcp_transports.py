"""Streamable HTTP and SSE on 127.0.0.1 with bearer tokens, and stdio through the real CLI.

Two tokens of two tenants must never see each other's data through any tool; requests
without a valid token get 401; Host/Origin validation is on.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_support import (
    HTTP_ACCEPT,
    SECRET_WORD,
    TENANTS,
    cli_env,
    error_text,
    free_port,
    http_server,
    index_corpus,
    initialize_request,
    open_retrieval,
    serve_command,
    server_settings,
    validate_structured,
    wait_listening,
)

from server.auth import TokenFile
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[TokenFile, dict[str, str]]:
    token_file = TokenFile(tmp_path_factory.mktemp("tokens") / "tokens.json")
    return token_file, {tenant: token_file.add(tenant)[0] for tenant in TENANTS}


@pytest.fixture(scope="module", params=["streamable-http", "sse"])
def server_url(
    request: pytest.FixtureRequest,
    runtime: ServerRuntime,
    tokens: tuple[TokenFile, dict[str, str]],
) -> Iterator[tuple[str, str]]:
    with http_server(runtime, tokens[0], request.param) as base:
        yield request.param, base


def connect(transport: str, base: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if transport == "sse":
        return Client(sse_client(f"{base}/sse", headers=headers))
    http = create_mcp_http_client(headers=headers)
    return Client(streamable_http_client(f"{base}/mcp", http_client=http))


@contextlib.asynccontextmanager
async def session(transport: str, base: str, token: str) -> AsyncIterator[Client]:
    async with connect(transport, base, token) as client:
        yield client


async def test_requests_without_a_valid_token_get_401(
    server_url: tuple[str, str], tokens: tuple[TokenFile, dict[str, str]]
) -> None:
    transport, base = server_url
    endpoint = f"{base}/mcp" if transport == "streamable-http" else f"{base}/sse"
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    async with httpx.AsyncClient(timeout=10) as http:
        for headers in (
            {},
            {"Authorization": "Bearer rmcp_00000000_" + "x" * 43},
            {"Authorization": f"Basic {tokens[1]['acme']}"},
            {"Authorization": "Bearer " + tokens[1]["acme"][:-2]},
        ):
            if transport == "sse":
                response = await http.get(endpoint, headers=headers)
            else:
                response = await http.post(endpoint, json=init, headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
        if transport == "sse":
            posted = await http.post(f"{base}/messages/?session_id=abc", json=init)
            assert posted.status_code == 401
    with pytest.raises(Exception):  # noqa: B017 - the SDK client surfaces the 401 as it likes
        async with connect(transport, base, None) as client:
            await client.list_tools()


async def test_dns_rebinding_protection(
    server_url: tuple[str, str], tokens: tuple[TokenFile, dict[str, str]]
) -> None:
    transport, base = server_url
    auth = {"Authorization": f"Bearer {tokens[1]['acme']}"}
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    async with httpx.AsyncClient(timeout=10) as http:

        async def attempt(headers: dict[str, str]) -> int:
            if transport == "sse":
                return (await http.get(f"{base}/sse", headers={**auth, **headers})).status_code
            response = await http.post(f"{base}/mcp", json=init, headers={**auth, **headers})
            return response.status_code

        assert await attempt({"Host": "evil.example:80"}) in (400, 403, 421)
        assert await attempt({"Origin": "http://evil.example"}) in (400, 403)


async def _tenant_view(client: Client, own: str) -> dict[str, Any]:
    """Run every tool as one tenant; returns what it saw (ids of other tenants for probing)."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    other = next(t for t in TENANTS if t != own)
    seen: dict[str, Any] = {"ids": []}
    for name, query in (
        ("doc_search", SECRET_WORD[other]),
        ("doc_search", "backup restore"),
        ("legal_search", f"notice {SECRET_WORD[other]} legal department"),
        ("code_search", f"serve the {SECRET_WORD[other]} API"),
    ):
        result = validate_structured(tools[name], await client.call_tool(name, {"query": query}))
        assert result["hits"], (name, query)
        for hit in result["hits"]:
            assert hit["source"].startswith(f"/srv/{own}/"), hit["source"]
            assert SECRET_WORD[other] not in hit["text"]
            seen["ids"].append(hit["id"])
    for domain in ("docs", "legal", "code"):
        listed = validate_structured(
            tools["list_sources"],
            await client.call_tool("list_sources", {"domain": domain}),
        )
        assert listed["sources"] and all(
            s["source"].startswith(f"/srv/{own}/") for s in listed["sources"]
        )
    stats = validate_structured(tools["index_stats"], await client.call_tool("index_stats", {}))
    assert stats["tenant"] == own
    assert {d["domain"]: d["chunks"] for d in stats["domains"]} == {
        "docs": 6,
        "legal": 5,
        "code": 4,
    }
    window = validate_structured(
        tools["get_chunk"], await client.call_tool("get_chunk", {"id": seen["ids"][0]})
    )
    assert window["chunk"]["source"].startswith(f"/srv/{own}/")
    return seen


async def test_two_tokens_two_tenants_never_see_each_other(
    server_url: tuple[str, str], tokens: tuple[TokenFile, dict[str, str]]
) -> None:
    transport, base = server_url
    views = {}
    for tenant in TENANTS:
        async with session(transport, base, tokens[1][tenant]) as client:
            views[tenant] = await _tenant_view(client, tenant)
    # a chunk id of one tenant is unknown to the other, on every id seen
    async with session(transport, base, tokens[1]["acme"]) as client:
        for chunk_id in views["globex"]["ids"][:5]:
            failed = await client.call_tool("get_chunk", {"id": chunk_id})
            assert "no chunk" in error_text(failed)


async def test_revoked_token_is_refused_on_the_next_request(
    server_url: tuple[str, str], runtime: ServerRuntime, tmp_path: Path
) -> None:
    transport, base = server_url
    token_file = TokenFile(tmp_path / "tokens.json")
    token, record = token_file.add("acme")
    with http_server(runtime, token_file, transport) as own_base:
        async with session(transport, own_base, token) as client:
            assert (await client.list_tools()).tools
        token_file.revoke(record.id)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=10) as http:
            if transport == "sse":
                response = await http.get(f"{own_base}/sse", headers=headers)
            else:
                ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
                response = await http.post(f"{own_base}/mcp", json=ping, headers=headers)
            assert response.status_code == 401
    del base


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder) -> Path:
    """A store on disk, indexed and closed, for server subprocesses to open."""
    path = tmp_path_factory.mktemp("mcp-stdio") / "store"
    store = EdgeStore(path)
    index_corpus(open_retrieval(store, server_settings(path), embedder))
    store.close()
    return path


@pytest.mark.slow
async def test_stdio_round_trip_through_the_cli(disk_store: Path) -> None:
    command = serve_command(disk_store, "--transport", "stdio", "--tenant", "globex")
    params = StdioServerParameters(command=command[0], args=command[1:], env=cli_env())
    async with Client(params) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert len(tools) == 7
        result = validate_structured(
            tools["doc_search"],
            await client.call_tool("doc_search", {"query": SECRET_WORD["globex"], "top_k": 3}),
        )
        assert result["hits"] and all(
            h["source"].startswith("/srv/globex/") for h in result["hits"]
        )
        assert any(SECRET_WORD["globex"] in h["text"] for h in result["hits"])
        assert result["rerank_applied"] is False and "reranking is off" in result["rerank_note"]
        bad = await client.call_tool("doc_search", {"query": "x", "top_k": 0})
        assert bad.is_error
        stats = await client.call_tool("index_stats", {})
        assert not stats.is_error and stats.structured_content["tenant"] == "globex"


def test_http_serve_through_the_cli(disk_store: Path, tmp_path: Path) -> None:
    """The real `serve --transport streamable-http` process: 401 without a token, tools/list
    with one (answered while the models may still be loading), nothing on stdout, and a
    clear error for a port that is taken."""
    import socket
    import subprocess

    tokens_file = tmp_path / "tokens.json"
    token, _ = TokenFile(tokens_file).add("acme")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        busy = subprocess.run(
            [*serve_command(disk_store, "--transport", "sse", "--port", str(taken))],
            env=cli_env(RETRIEVAL_MCP__TOKENS_FILE=str(tokens_file)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr
    port = free_port()
    command = serve_command(disk_store, "--transport", "streamable-http", "--port", str(port))
    process = subprocess.Popen(
        [*command, "--tokens-file", str(tokens_file)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(process, port)
        init = initialize_request("test")
        accept = HTTP_ACCEPT
        url = f"http://127.0.0.1:{port}/mcp"
        assert httpx.post(url, json=init, headers=accept, timeout=30).status_code == 401
        ok = httpx.post(
            url, json=init, headers={**accept, "Authorization": f"Bearer {token}"}, timeout=30
        )
        assert ok.status_code == 200 and "retrieval-mcp" in ok.text
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert out == ""  # logs go to stderr only
    assert "serving streamable-http" in err
    assert "uvloop + httptools" in err  # the fast HTTP stack is the default (http_stack.py)


@pytest.mark.parametrize("write", [[], ["--allow-write", "--root", "."]])
def test_serve_says_when_it_starts_an_empty_store(tmp_path: Path, write: list[str]) -> None:
    """A mistyped --store served an empty store without a word (every search "nothing
    indexed"). A store may be new on purpose (serve first, ingest while it runs; write tools),
    so it starts, and the log says so: a warning naming the fix where only an ingest can fill
    it."""
    store = tmp_path / "new" / "store"
    command = serve_command(store, "--tenant", "acme", *write)
    done = subprocess.run(command, env=cli_env(), input="", capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and done.stdout == "", done.stderr
    said = [line for line in done.stderr.splitlines() if f"no store at {store}" in line]
    assert len(said) == 1 and ("WARNING" in said[0]) is (not write), done.stderr
    assert ("--store" in said[0]) is (not write)
    assert store.is_dir()
    # an existing folder holding no store (a mistyped --store naming a notes folder): the same
    notes = tmp_path / "notes"
    notes.mkdir()
    command = serve_command(notes, "--tenant", "acme", *write)
    done = subprocess.run(command, env=cli_env(), input="", capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and f"no store at {notes}" in done.stderr, done.stderr


async def test_the_bench_lean_client_gets_what_the_sdk_client_gets(
    runtime: ServerRuntime, tokens: tuple[TokenFile, dict[str, str]]
) -> None:
    """The concurrency bench's lean load generator (retrieval_eval/bench_lean.py) speaks the
    protocol as the SDK's client does: same hits and structured content for every tool of the
    bench's mix, tool errors as errors, a bad token refused."""
    from retrieval_eval.bench_lean import LeanSession

    calls = [
        ("doc_search", {"query": "backup restore", "top_k": 3}),
        ("code_search", {"query": "serve the API", "top_k": 3}),
        ("list_sources", {"domain": "docs"}),
        ("no_such_tool", {}),
    ]
    with http_server(runtime, tokens[0], "streamable-http") as base:
        for tenant, token in tokens[1].items():
            lean = LeanSession(f"{base}/mcp", token)
            await lean.open()
            try:
                async with session("streamable-http", base, token) as sdk:
                    for name, args in calls:
                        reply = await lean.call_tool(name, args)
                        expected = await sdk.call_tool(name, args)
                        got = reply["result"]
                        assert got.get("isError", False) is expected.is_error, (name, reply)
                        if expected.is_error:
                            continue
                        assert _comparable(got["structuredContent"]) == _comparable(
                            expected.structured_content or {}
                        ), (tenant, name)
                id_ = (await lean.call_tool(*calls[0]))["result"]["structuredContent"]
                window = await lean.call_tool("get_chunk", {"id": id_["hits"][0]["id"]})
                assert window["result"]["structuredContent"]["chunk"]["source"].startswith(
                    f"/srv/{tenant}/"
                )
            finally:
                await lean.close()
        refused = LeanSession(f"{base}/mcp", "not-a-token")
        with pytest.raises(RuntimeError, match="HTTP 401"):
            await refused.open()
        await refused.close()


def _comparable(content: dict[str, Any]) -> dict[str, Any]:
    """Structured content without what differs from one call to the next (timings)."""
    return {k: v for k, v in content.items() if k not in ("timings", "freshness")}
