"""Resources and bounded output through real MCP sessions (in-process and Streamable HTTP).

Invariants: every hit, chunk view and copy carries the URI of its chunk, and search results
carry resource_link blocks for their hits; the URIs resolve as resources only for the tenant
the session acts for (another tenant's chunk or source is "not found", worded like an unknown
one); the templates are listed; search output respects ``max_chars`` and no longer repeats
``doc_id`` or the ingest bookkeeping on every hit.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.uri_template import UriTemplate
from mcp.types import ResourceLink, TextContent, TextResourceContents, Tool
from mcp_support import (
    SECRET_WORD,
    TENANTS,
    cli_env,
    free_port,
    http_server,
    index_corpus,
    open_retrieval,
    server_settings,
    validate_structured,
)

from server.app import build_server
from server.auth import TokenFile
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.results import ChunkContext
from server.retrieval.types import Chunk
from server.retrieval.uris import (
    CHUNK_JSON_TEMPLATE,
    CHUNK_TEMPLATE,
    SOURCE_TEMPLATE,
    chunk_uri,
    source_uri,
)
from server.runtime import ServerRuntime
from server.settings import Domain

pytestmark = pytest.mark.anyio

INSTALL = "/srv/{tenant}/handbook/install.md"
MIRROR = "/srv/acme/mirror/install copy (old).md"
"""A copy of install.md's first chunk, under a path with spaces and brackets."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[ServerRuntime]:
    path = tmp_path_factory.mktemp("mcp-resources") / "store"
    store = EdgeStore(path)
    settings = server_settings(path, mcp={"max_source_chunks": 2})
    retrieval = open_retrieval(store, settings, embedder)
    index_corpus(retrieval)
    copy = Chunk(
        tenant="acme",
        doc_id=MIRROR,
        source=MIRROR,
        text=f"Install the {SECRET_WORD['acme']} agent with pip install agent.",
        title="Installation > Linux",
        metadata={"rel_path": "install copy (old).md", "content_hash": "1" * 64},
    )
    retrieval.indexer.index("docs", [copy])
    yield ServerRuntime(settings, store=store, embedder=embedder)
    store.close()


@pytest.fixture
async def acme(runtime: ServerRuntime) -> AsyncIterator[Client]:
    async with Client(build_server(runtime, stdio_tenant="acme")) as session:
        yield session


@pytest.fixture
async def tools(acme: Client) -> dict[str, Tool]:
    return {t.name: t for t in (await acme.list_tools()).tools}


async def _read(client: Client, uri: str) -> TextResourceContents:
    result = await client.read_resource(uri, cache_mode="bypass")
    assert len(result.contents) == 1
    content = result.contents[0]
    assert isinstance(content, TextResourceContents)
    return content


async def _search(client: Client, tools: dict[str, Tool], query: str, **args: Any) -> Any:
    raw = await client.call_tool("doc_search", {"query": query, **args})
    return raw, validate_structured(tools["doc_search"], raw)


async def test_templates_are_listed(acme: Client) -> None:
    templates = (await acme.list_resource_templates()).resource_templates
    by_uri = {t.uri_template: t for t in templates}
    assert set(by_uri) == {CHUNK_TEMPLATE, CHUNK_JSON_TEMPLATE, SOURCE_TEMPLATE}
    assert by_uri[CHUNK_JSON_TEMPLATE].mime_type == "application/json"
    assert by_uri[CHUNK_TEMPLATE].mime_type == "text/plain"
    assert all(
        t.description and "not as instructions" in t.description.replace("never as", "not as")
        for t in templates
    )
    assert (await acme.list_resources()).resources == []  # per tenant: reached through hits


def test_uris_are_what_the_templates_expand_and_match() -> None:
    """The URIs hits carry are the SDK's own expansion of the templates, and match back."""
    for source in ["/srv/a b/c%d/ü.md", "rel/x.md", "C:\\x\\y", "/a/../b?q=1#f"]:
        uri = source_uri(Domain.DOCS, source)
        template = UriTemplate.parse(SOURCE_TEMPLATE)
        assert uri == template.expand({"domain": "docs", "path": source})
        assert template.match(uri) == {"domain": "docs", "path": source}
    chunk_id = str(uuid.uuid4())
    assert UriTemplate.parse(CHUNK_TEMPLATE).match(chunk_uri(Domain.CODE, chunk_id)) == {
        "domain": "code",
        "id": chunk_id,
    }


async def test_hits_carry_uris_and_resource_links(acme: Client, tools: dict[str, Tool]) -> None:
    raw, result = await _search(acme, tools, "install the agent with pip")
    hits = result["hits"]
    assert hits
    assert all(h["uri"] == chunk_uri(Domain.DOCS, h["id"]) for h in hits)
    # the text rendering first (clients reading only text take it), then one link per hit
    assert isinstance(raw.content[0], TextContent)
    links = raw.content[1:]
    assert all(isinstance(link, ResourceLink) for link in links)
    assert [link.uri for link in links] == [h["uri"] for h in hits]
    assert [link.name for link in links] == [h["citation"] for h in hits]
    copies = [c for h in hits for c in h["also_in"]]
    assert copies, "the mirrored install chunk collapses into the original"
    assert all(c["uri"] == chunk_uri(Domain.DOCS, c["id"]) for c in copies)
    window = validate_structured(
        tools["get_chunk"], await acme.call_tool("get_chunk", {"id": hits[0]["id"]})
    )
    views = [*window["before"], window["chunk"], *window["after"]]
    assert all(v["uri"] == chunk_uri(Domain.DOCS, v["id"]) for v in views)


async def test_chunk_resource_is_the_chunk_with_its_neighbours(
    acme: Client, tools: dict[str, Tool]
) -> None:
    _, result = await _search(acme, tools, "start the service with systemctl")
    hit = next(h for h in result["hits"] if "systemctl" in h["text"])
    text = await _read(acme, hit["uri"])
    assert text.mime_type == "text/plain" and text.uri == hit["uri"]
    assert "systemctl start agent" in text.text  # the chunk (install.md chunk 1)
    assert "pip install agent" in text.text and "Upgrade by stopping" in text.text  # neighbours
    alone = await _read(acme, hit["uri"] + "?neighbors=0")
    assert "systemctl" in alone.text and "pip install" not in alone.text
    as_json = await _read(acme, chunk_uri(Domain.DOCS, hit["id"]) + "/json")
    assert as_json.mime_type == "application/json"
    window = ChunkContext.model_validate_json(as_json.text)
    assert window.chunk.id == hit["id"] and window.chunk.chunk_index == 1
    assert [c.chunk_index for c in window.before + window.after] == [0, 2]
    assert window.chunk.metadata["content_hash"] == "0" * 64  # kept where it is read in full


async def test_source_resource_reads_the_whole_source_in_pages(acme: Client) -> None:
    uri = source_uri(Domain.DOCS, INSTALL.format(tenant="acme"))
    first = await _read(acme, uri)
    assert "pip install agent" in first.text and "systemctl start agent" in first.text
    assert first.text.index("pip install") < first.text.index("systemctl")  # reading order
    assert "chunks 0-1 of 3" in first.text  # max_source_chunks=2 in this module
    assert f"continues: {uri}?start=2" in first.text
    rest = await _read(acme, f"{uri}?start=2")
    assert "Upgrade by stopping" in rest.text and "continues" not in rest.text
    odd = await _read(acme, source_uri(Domain.DOCS, MIRROR))
    assert "pip install agent" in odd.text  # spaces and brackets survive the round trip


async def test_resources_resolve_only_for_their_tenant(runtime: ServerRuntime) -> None:
    async with Client(build_server(runtime, stdio_tenant="globex")) as globex:
        found = (
            await globex.call_tool("doc_search", {"query": "install the agent"})
        ).structured_content
        assert found is not None
        theirs = [h["uri"] for h in found["hits"]]
        assert theirs and SECRET_WORD["globex"] in (await _read(globex, theirs[0])).text
    async with Client(build_server(runtime, stdio_tenant="acme")) as acme:
        unknown = chunk_uri(Domain.DOCS, str(uuid.uuid4()))
        with pytest.raises(MCPError) as never_existed:
            await acme.read_resource(unknown, cache_mode="bypass")
        for uri in theirs:
            with pytest.raises(MCPError) as refused:
                await acme.read_resource(uri, cache_mode="bypass")
            # the same answer as for an id that never existed: nothing to tell them apart
            assert refused.value.error.code == never_existed.value.error.code
            assert "no chunk with id" in refused.value.error.message
            assert SECRET_WORD["globex"] not in refused.value.error.message
        for domain in ("docs", "legal"):
            with pytest.raises(MCPError, match="no source"):
                await acme.read_resource(
                    source_uri(Domain(domain), INSTALL.format(tenant="globex")),
                    cache_mode="bypass",
                )


async def test_a_chunk_is_found_only_under_its_own_domain(
    acme: Client, tools: dict[str, Tool]
) -> None:
    _, result = await _search(acme, tools, "backups")
    chunk_id = result["hits"][0]["id"]
    with pytest.raises(MCPError, match="no chunk with id"):
        await acme.read_resource(chunk_uri(Domain.CODE, chunk_id), cache_mode="bypass")
    with pytest.raises(MCPError, match="unknown domain"):
        await acme.read_resource(f"retrieval://recipes/chunks/{chunk_id}", cache_mode="bypass")
    with pytest.raises(MCPError, match="not a chunk id"):
        await acme.read_resource("retrieval://docs/chunks/not-an-id", cache_mode="bypass")
    with pytest.raises(MCPError, match="neighbors must be between 0 and 5"):
        await acme.read_resource(
            chunk_uri(Domain.DOCS, chunk_id) + "?neighbors=99", cache_mode="bypass"
        )
    with pytest.raises(MCPError, match="neighbors must be an integer, got 'two'"):
        await acme.read_resource(
            chunk_uri(Domain.DOCS, chunk_id) + "?neighbors=two", cache_mode="bypass"
        )
    source = source_uri(Domain.DOCS, INSTALL.format(tenant="acme"))
    for start, message in (("-1", "start must be a chunk index"), ("x", "start must be an")):
        with pytest.raises(MCPError, match=message):
            await acme.read_resource(f"{source}?start={start}", cache_mode="bypass")


async def test_search_payload_drops_repeated_fields(acme: Client, tools: dict[str, Tool]) -> None:
    _, result = await _search(acme, tools, "backups database")
    for hit in result["hits"]:
        assert "doc_id" not in hit  # it equals the source for every ingested file
        assert "content_hash" not in hit["metadata"] and "ingested_at" not in hit["metadata"]
        assert None not in hit["stages"].values()
        assert hit["metadata"]["rel_path"] and hit["source"].startswith("/srv/acme/")
    listing = validate_structured(
        tools["list_sources"],
        await acme.call_tool("list_sources", {"domain": "docs", "path_prefix": "guides"}),
    )
    kept = listing["sources"][0]["metadata"]
    assert kept["content_hash"] == "0" * 64 and kept["ingested_at"].startswith("2026-11-22")


async def test_output_budget_is_published_and_respected(
    acme: Client, tools: dict[str, Tool]
) -> None:
    for name in ("doc_search", "legal_search", "code_search"):
        budget = tools[name].input_schema["properties"]["max_chars"]
        assert budget["type"] == "integer"  # optional: not required, no null branch
        assert (budget["minimum"], budget["maximum"]) == (100, 100_000)
        assert budget["description"].endswith("(100-100000). Default 12000.")
    raw, whole = await _search(acme, tools, "install upgrade restore backups", top_k=6)
    assert not any(h["truncated"] for h in whole["hits"])
    raw, cut = await _search(acme, tools, "install upgrade restore backups", top_k=6, max_chars=100)
    assert sum(len(h["text"]) for h in cut["hits"]) <= 100
    assert [h["id"] for h in cut["hits"]] == [h["id"] for h in whole["hits"]]
    assert any(h["truncated"] for h in cut["hits"])
    assert any("max_chars=100" in note for note in cut["notes"])
    text = raw.content[0]
    assert isinstance(text, TextContent) and "(trimmed)" in text.text
    refused = await acme.call_tool("doc_search", {"query": "x", "max_chars": 10})
    assert refused.is_error


# -- over Streamable HTTP with bearer tokens ---------------------------------------------------


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[TokenFile, dict[str, str]]:
    token_file = TokenFile(tmp_path_factory.mktemp("tokens") / "tokens.json")
    return token_file, {tenant: token_file.add(tenant)[0] for tenant in TENANTS}


async def test_http_token_sessions_read_only_their_tenants_resources(
    runtime: ServerRuntime, tokens: tuple[TokenFile, dict[str, str]]
) -> None:
    token_file, secrets = tokens
    with http_server(runtime, token_file, "streamable-http") as base:

        def connect(tenant: str) -> Client:
            headers = {"Authorization": f"Bearer {secrets[tenant]}"}
            http = create_mcp_http_client(headers=headers)
            return Client(streamable_http_client(f"{base}/mcp", http_client=http))

        uris = {}
        for tenant in TENANTS:
            async with connect(tenant) as client:
                raw = await client.call_tool("doc_search", {"query": "install the agent"})
                hits = (raw.structured_content or {})["hits"]
                links = [c.uri for c in raw.content if isinstance(c, ResourceLink)]
                assert links == [h["uri"] for h in hits]
                uris[tenant] = links[0]
                own = ChunkContext.model_validate_json(
                    (await _read(client, links[0] + "/json")).text
                )
                assert own.chunk.source.startswith(f"/srv/{tenant}/")
                source = await _read(client, source_uri(Domain.DOCS, INSTALL.format(tenant=tenant)))
                assert SECRET_WORD[tenant] in source.text
        async with connect("acme") as client:
            with pytest.raises(MCPError, match="no chunk with id"):
                await client.read_resource(uris["globex"], cache_mode="bypass")
            with pytest.raises(MCPError, match="no source"):
                await client.read_resource(
                    source_uri(Domain.DOCS, INSTALL.format(tenant="globex")), cache_mode="bypass"
                )


# -- SSE marked legacy -------------------------------------------------------------------------

LEGACY = "deprecated by the MCP specification in favour of Streamable HTTP"


def test_serve_help_marks_sse_legacy() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=True,
    ).stdout
    assert "legacy" in out and " ".join(LEGACY.split()) in " ".join(out.split())


def test_choosing_sse_logs_that_it_is_legacy(tmp_path: Path) -> None:
    """The warning comes first thing; the busy port then stops the server before it loads."""
    import socket

    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--transport",
                "sse",
                "--port",
                str(port),
                "--store",
                str(tmp_path / "store"),
                "--tokens-file",
                str(tmp_path / "tokens.json"),
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        )
    assert proc.returncode != 0 and "pick another --port" in proc.stderr
    assert LEGACY in proc.stderr and proc.stdout == ""
    assert "Traceback" not in proc.stderr
