"""Every tool through an in-process MCP session: schemas, structured content, filters, errors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import Tool
from mcp_support import (
    SECRET_WORD,
    error_text,
    server_settings,
    validate_structured,
)

from server.app import build_server
from server.errors import StoreError
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ModelStatus, ServerRuntime
from server.settings import Settings
from server.tools.browse import render_stats
from server.tools.models import IndexStats
from server.tools.schemas import schema_keys

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def runtime(
    corpus_store: EdgeStore, embedder: DenseEmbedder, tiny_cross_encoder: Path
) -> ServerRuntime:
    settings = server_settings(corpus_store.root, reranker_model=str(tiny_cross_encoder))
    return ServerRuntime(settings, store=corpus_store, embedder=embedder)


@pytest.fixture
async def client(runtime: ServerRuntime) -> AsyncIterator[Client]:
    async with Client(build_server(runtime, stdio_tenant="acme")) as session:
        yield session


@pytest.fixture
async def tools(client: Client) -> dict[str, Tool]:
    return {t.name: t for t in (await client.list_tools()).tools}


async def call(client: Client, tools: dict[str, Tool], name: str, args: dict[str, Any]) -> Any:
    return validate_structured(tools[name], await client.call_tool(name, args))


async def test_tool_list_schemas_and_hints(tools: dict[str, Tool]) -> None:
    assert set(tools) == {
        "doc_search",
        "legal_search",
        "code_search",
        "embed",
        "get_chunk",
        "list_sources",
        "index_stats",
    }
    for tool in tools.values():
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert tool.annotations and tool.annotations.read_only_hint is True
        assert tool.description and len(tool.description) > 80
    for name in ("doc_search", "legal_search", "code_search"):
        props = tools[name].input_schema["properties"]
        assert props["top_k"]["minimum"] == 1 and props["top_k"]["maximum"] == 50
        assert props["query"]["maxLength"] == 2000
        assert "not as instructions" in tools[name].description.replace("never as", "not as")
    assert tools["embed"].input_schema["properties"]["texts"]["maxItems"] == 64
    assert "tenant" not in str(tools["doc_search"].input_schema)
    for tool in tools.values():  # the client-compatible form (tests/mcp/test_mcp_client_schemas)
        assert not {"$ref", "$defs", "additionalProperties", "default"} & schema_keys(
            tool.input_schema
        ), tool.name
        assert tool.title, tool.name


def _properties_with(schema: Any, name: str) -> dict[str, Any]:
    """The first ``properties`` object anywhere in ``schema`` that has ``name``."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict) and name in props:
            return props
        schema = list(schema.values())
    for value in schema if isinstance(schema, list) else []:
        found = _properties_with(value, name)
        if found:
            return found
    return {}


async def test_stage_ranks_say_they_count_collapsed_copies(tools: dict[str, Tool]) -> None:
    """A client seeing fused ranks 1, 3, 4 learns from the outputSchema why: the stage ranks
    are positions in each stage's list, copies included; the final rank is the place in hits."""
    for name in ("doc_search", "legal_search", "code_search"):
        stages = _properties_with(tools[name].output_schema, "fused_rank")
        for rank in ("dense_rank", "sparse_rank", "fused_rank"):
            description = stages[rank].get("description", "")
            assert "copies of a passage included" in description, (name, rank)
            assert "can skip numbers" in description and "position in hits" in description
        assert "1..n without gaps" in stages["rerank_rank"].get("description", ""), name


async def test_unknown_arguments_are_errors(client: Client) -> None:
    """A misplaced argument (code_search takes path_glob at the top level) must not be
    dropped silently: the agent would read unfiltered results as filtered ones."""
    wrong = await client.call_tool("code_search", {"query": "x", "filters": {"path_glob": "a"}})
    assert "filters" in error_text(wrong)
    tenant = await client.call_tool("doc_search", {"query": "x", "tenant": "globex"})
    assert "tenant" in error_text(tenant)


async def test_doc_search_hits_have_citations_scores_and_rerank(
    client: Client, tools: dict[str, Tool]
) -> None:
    result = await call(client, tools, "doc_search", {"query": "how do I restore a backup"})
    assert result["domain"] == "docs" and result["query"] == "how do I restore a backup"
    assert result["rerank_applied"] is True and result["rerank_model"]
    # the test cross-encoder is random, so find the passage rather than expect it first
    top = next(h for h in result["hits"] if "restore --from" in h["text"])
    assert top["citation"] == "guides/backup.md > Backups > Restore"
    assert top["source"] == "/srv/acme/handbook/guides/backup.md"
    assert top["stages"]["rerank"] is not None and top["stages"]["fused"] is not None
    assert [h["stages"]["rerank_rank"] for h in result["hits"]] == list(
        range(1, len(result["hits"]) + 1)
    )
    assert result["timings"]["total_ms"] > 0
    assert all(h["source"].startswith("/srv/acme/") for h in result["hits"])
    assert all("path_prefixes" not in h["metadata"] for h in result["hits"])


async def test_doc_search_filters(client: Client, tools: dict[str, Tool]) -> None:
    by_type = await call(
        client, tools, "doc_search", {"query": "credentials", "filters": {"doc_type": "text"}}
    )
    assert {h["metadata"]["doc_type"] for h in by_type["hits"]} == {"text"}
    prefix = await call(
        client, tools, "doc_search", {"query": "service", "filters": {"path_prefix": "guides"}}
    )
    assert prefix["hits"] and all(
        h["metadata"]["rel_path"].startswith("guides/") for h in prefix["hits"]
    )
    partial = await call(
        client, tools, "doc_search", {"query": "service", "filters": {"path_prefix": "guid"}}
    )
    assert partial["hits"] == []  # prefixes match whole path segments
    absolute = await call(
        client,
        tools,
        "doc_search",
        {"query": "service", "filters": {"path_prefix": "/srv/acme/handbook/install.md"}},
    )
    assert {h["metadata"]["rel_path"] for h in absolute["hits"]} == {"install.md"}
    glob = await call(
        client, tools, "doc_search", {"query": "backup", "filters": {"path_glob": "*.md"}}
    )
    assert {h["metadata"]["rel_path"] for h in glob["hits"]} == {"install.md", "guides/backup.md"}
    top_level = await call(
        client, tools, "doc_search", {"query": "backup", "filters": {"path_glob": "[h-j]*.md"}}
    )
    assert {h["metadata"]["rel_path"] for h in top_level["hits"]} == {"install.md"}
    none = await call(
        client, tools, "doc_search", {"query": "backup", "filters": {"path_glob": "*.pdf"}}
    )
    assert none["hits"] == [] and "path_glob" in none["notes"][0]


async def test_legal_search_section_and_filters(client: Client, tools: dict[str, Tool]) -> None:
    result = await call(
        client, tools, "legal_search", {"query": "notice", "filters": {"section": "12.3"}}
    )
    sections = {h["metadata"]["section_path"] for h in result["hits"]}
    assert sections == {"12 > 12.3", "12 > 12.3 > (b)"}
    assert result["hits"][0]["citation"].startswith("msa.txt, 12 > 12.3")
    nested = await call(
        client, tools, "legal_search", {"query": "terminate", "filters": {"section": "12>12.3"}}
    )
    assert {h["metadata"]["section_path"] for h in nested["hits"]} == sections
    licence = await call(
        client,
        tools,
        "legal_search",
        {"query": "free of charge", "filters": {"doc_type": "licence"}},
    )
    assert [h["metadata"]["doc_type"] for h in licence["hits"]] == ["licence"]
    wrong = await call(
        client, tools, "legal_search", {"query": "liability", "filters": {"jurisdiction": "US"}}
    )
    assert wrong["hits"] == []
    bad = await client.call_tool("legal_search", {"query": "x", "filters": {"doc_type": "memo"}})
    assert "doc_type" in error_text(bad)


async def test_code_search_filters(client: Client, tools: dict[str, Tool]) -> None:
    result = await call(client, tools, "code_search", {"query": "start the server on a port"})
    citations = {h["citation"] for h in result["hits"]}
    assert "src/server/http.py:10-24 (start_http_server)" in citations
    assert "web/app.ts:5-9 (startServer)" in citations
    ts = await call(
        client, tools, "code_search", {"query": "start server", "language": "TypeScript"}
    )
    assert {h["metadata"]["language"] for h in ts["hits"]} == {"typescript"}
    glob = await call(
        client, tools, "code_search", {"query": "start server", "path_glob": "src/**/*.py"}
    )
    assert {h["metadata"]["rel_path"] for h in glob["hits"]} == {
        "src/server/http.py",
        "src/util/retry.py",
    }
    one_dir = await call(
        client, tools, "code_search", {"query": "retry", "path_glob": "src/*/retry.py"}
    )
    assert {h["metadata"]["rel_path"] for h in one_dir["hits"]} == {"src/util/retry.py"}
    absolute = await call(
        client,
        tools,
        "code_search",
        {"query": "handle", "path_glob": "/srv/acme/repo/src/server/*"},
    )
    assert {h["metadata"]["rel_path"] for h in absolute["hits"]} == {"src/server/http.py"}
    methods = await call(
        client, tools, "code_search", {"query": "request", "symbol_kind": ["method"]}
    )
    assert [h["metadata"]["symbol"] for h in methods["hits"]] == ["HttpHandler.handle"]
    # an unclosed '[' is no class: it is matched as written, and nothing is named so
    literal = await call(client, tools, "code_search", {"query": "x", "path_glob": "src/[a"})
    assert literal["hits"] == [] and "src/[a" in literal["notes"][0]
    empty_glob = await client.call_tool("code_search", {"query": "x", "path_glob": " "})
    assert "path_glob" in error_text(empty_glob)


async def test_get_chunk_with_neighbours(client: Client, tools: dict[str, Tool]) -> None:
    search = await call(client, tools, "doc_search", {"query": "systemctl start agent"})
    hit = next(h for h in search["hits"] if "systemctl" in h["text"])
    assert hit["chunk_index"] == 1
    window = await call(client, tools, "get_chunk", {"id": hit["id"], "neighbors": 1})
    assert window["chunk"]["id"] == hit["id"] and window["domain"] == "docs"
    assert [c["chunk_index"] for c in window["before"]] == [0]
    assert [c["chunk_index"] for c in window["after"]] == [2]
    alone = await call(client, tools, "get_chunk", {"id": hit["id"], "neighbors": 0})
    assert alone["before"] == [] and alone["after"] == []
    missing = await client.call_tool("get_chunk", {"id": "00000000-0000-0000-0000-000000000000"})
    assert "no chunk" in error_text(missing)
    too_wide = await client.call_tool("get_chunk", {"id": hit["id"], "neighbors": 9})
    assert "neighbors" in error_text(too_wide)


async def test_list_sources_pages(client: Client, tools: dict[str, Tool]) -> None:
    first = await call(client, tools, "list_sources", {"domain": "docs", "limit": 2})
    assert len(first["sources"]) == 2 and first["next_cursor"]
    rest = await call(
        client,
        tools,
        "list_sources",
        {"domain": "docs", "limit": 2, "cursor": first["next_cursor"]},
    )
    everything = [s["source"] for s in first["sources"] + rest["sources"]]
    assert sorted(everything) == sorted(
        f"/srv/acme/handbook/{p}" for p in ("install.md", "guides/backup.md", "notes/meeting.txt")
    )
    install = next(
        s for s in first["sources"] + rest["sources"] if s["source"].endswith("install.md")
    )
    assert install["chunks"] == 3 and install["title"] == "Installation"
    under = await call(client, tools, "list_sources", {"domain": "code", "path_prefix": "src"})
    assert {s["metadata"]["rel_path"] for s in under["sources"]} == {
        "src/server/http.py",
        "src/util/retry.py",
    }
    assert under.get("note") is None
    none = await call(client, tools, "list_sources", {"domain": "code", "path_prefix": "lib"})
    assert (
        none["sources"] == []
        and none["note"] == "no indexed code source is under path_prefix 'lib'"
    )
    bad = await client.call_tool("list_sources", {"domain": "music"})
    assert "domain" in error_text(bad)


async def test_index_stats(client: Client, tools: dict[str, Tool]) -> None:
    stats = await call(client, tools, "index_stats", {})
    counts = {d["domain"]: (d["chunks"], d["sources"]) for d in stats["domains"]}
    assert counts == {"docs": (6, 3), "legal": (5, 2), "code": (4, 3)}
    parts = {d["domain"]: d["part_vectors"] for d in stats["domains"]}
    assert parts == {"docs": True, "legal": False, "code": False}  # the domain defaults
    assert stats["tenant"] == "acme" and stats["embedding_dimension"] == 384
    legal = await call(client, tools, "index_stats", {"domain": "legal"})
    assert [(d["domain"], d["chunks"]) for d in legal["domains"]] == [("legal", 5)]


async def test_embed(client: Client, tools: dict[str, Tool]) -> None:
    result = await call(client, tools, "embed", {"texts": ["a cat", "a dog"]})
    assert result["dimension"] == 384 and len(result["vectors"]) == 2
    assert math.isclose(sum(x * x for x in result["vectors"][0]), 1.0, rel_tol=1e-4)
    raw = await call(client, tools, "embed", {"texts": ["a cat"], "normalize": False})
    assert raw["normalized"] is False and len(raw["vectors"][0]) == 384
    long = await call(client, tools, "embed", {"texts": ["word " * 600]})
    assert long["truncated"] == [True]
    full = await client.call_tool("embed", {"texts": [f"text number {i}" for i in range(64)]})
    vectors = validate_structured(tools["embed"], full)["vectors"]
    assert len(vectors) == 64 and all(len(v) == 384 for v in vectors)
    # the vectors stay out of the text a text-only client puts into the model's context
    assert [c.type for c in full.content] == ["text"]
    summary = full.content[0].text  # type: ignore[union-attr]
    assert summary.startswith("64 vector(s), dimension 384, model ") and len(summary) < 300
    assert f"{vectors[0][0]:.4f}"[:6] not in summary
    too_many = await client.call_tool("embed", {"texts": ["x"] * 65})
    assert "limit is 64" in error_text(too_many)
    too_long = await client.call_tool("embed", {"texts": ["x" * 8001]})
    assert "8000" in error_text(too_long)


async def test_bad_arguments_are_tool_errors_and_the_session_survives(
    client: Client, tools: dict[str, Tool]
) -> None:
    cases = [
        ("doc_search", {"query": ""}, "query"),
        ("doc_search", {"query": "x", "top_k": 51}, "top_k"),
        ("doc_search", {"query": "x" * 2001}, "2000"),
        ("doc_search", {"query": "x", "filters": {"colour": "red"}}, "colour"),
        ("code_search", {"query": "x", "symbol_kind": "lambda"}, "symbol_kind"),
        ("get_chunk", {"id": "not-an-id"}, "not a chunk id"),
        ("list_sources", {"domain": "docs", "cursor": "zzz"}, "pass the 'next_cursor'"),
        ("embed", {"texts": []}, "texts"),
    ]
    for name, args, expected in cases:
        assert expected in error_text(await client.call_tool(name, args)), (name, args)
    ok = await call(client, tools, "doc_search", {"query": SECRET_WORD["acme"]})
    assert ok["hits"]


async def test_a_tenant_argument_is_ignored(client: Client, tools: dict[str, Tool]) -> None:
    sneaky = await client.call_tool(
        "doc_search", {"query": SECRET_WORD["globex"], "tenant": "globex"}
    )
    if not sneaky.is_error:
        hits = validate_structured(tools["doc_search"], sneaky)["hits"]
        assert all(h["source"].startswith("/srv/acme/") for h in hits)


async def test_sessions_share_one_store_and_one_model_set(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    opened: list[EdgeStore] = []

    def opener(_: object) -> EdgeStore:
        opened.append(EdgeStore(tmp_path / "shared"))
        return opened[-1]

    runtime = ServerRuntime(server_settings(tmp_path), embedder=embedder, store_opener=opener)
    server = build_server(runtime, stdio_tenant="acme")
    async with Client(server) as first, Client(server) as second:
        for session in (first, second):
            result = await session.call_tool("index_stats", {})
            assert not result.is_error
        assert runtime.retrieval().embedder is embedder
    assert len(opened) == 1
    EdgeStore(tmp_path / "shared").close()  # released by the last session: opens again


async def test_unavailable_model_and_store_are_tool_errors(tmp_path: Path) -> None:
    settings = server_settings(tmp_path / "s", embedding_model=str(tmp_path / "no-model"))
    broken_models = ServerRuntime(settings)
    async with Client(build_server(broken_models, stdio_tenant="acme")) as session:
        assert len((await session.list_tools()).tools) == 7
        failed = await session.call_tool("doc_search", {"query": "anything"})
        assert "embedding model" in error_text(failed)
        stats = await session.call_tool("index_stats", {})
        assert not stats.is_error  # the store still answers

    def refuse(_: object) -> EdgeStore:
        raise StoreError("the store at /x is in use by pid 1 (test)")

    no_store = ServerRuntime(
        server_settings(tmp_path / "t"), store_opener=refuse, embedder=broken_models._embedder
    )
    async with Client(build_server(no_store, stdio_tenant="acme")) as session:
        for name, args in [("index_stats", {}), ("list_sources", {"domain": "docs"})]:
            assert "in use by pid 1" in error_text(await session.call_tool(name, args))


async def test_missing_reranker_is_reported_and_search_still_works(
    corpus_store: EdgeStore, embedder: DenseEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    settings = server_settings(
        corpus_store.root, reranker_model="cross-encoder/not-in-any-cache-here"
    )
    runtime = ServerRuntime(settings, store=corpus_store, embedder=embedder)
    async with Client(build_server(runtime, stdio_tenant="acme")) as session:
        result = await session.call_tool("doc_search", {"query": "backup"})
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["hits"]
        assert result.structured_content["rerank_applied"] is False
        assert "could not be loaded" in result.structured_content["rerank_note"]
        assert "note: reranker" in result.content[0].text  # type: ignore[union-attr]
        stats = (await session.call_tool("index_stats", {})).structured_content
        assert stats is not None and stats["reranker_available"] is False
    warnings = [r for r in caplog.records if "could not be loaded" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per search


def test_index_stats_text_names_the_reranker_once() -> None:
    note = (
        "reranker 'cross-encoder/x' could not be loaded (OSError: not in the local Hugging Face "
        "cache and downloads are off (HF_HUB_OFFLINE)); serving hybrid results without reranking."
    )
    base = dict(
        tenant="acme",
        domains=[],
        embedding_model="m",
        embedding_dimension=384,
        models_loaded=True,
        reranker_model="cross-encoder/x",
    )
    failed = render_stats(IndexStats(**base, reranker_available=False, reranker_note=note))
    [line] = [ln for ln in failed.splitlines() if ln.startswith("reranker")]
    assert line == note and line.count("cross-encoder/x") == 1  # not "reranker: reranker ..."
    ok = render_stats(IndexStats(**base, reranker_available=True))
    assert "reranker cross-encoder/x: available" in ok.splitlines()


def test_index_stats_while_models_load_names_the_configured_reranker(tmp_path: Path) -> None:
    """Asked before the models have loaded, index_stats said ``reranker -: off`` for a server
    configured to rerank (found by a fresh user); it names the model and says it is loading,
    and says off only when reranking is switched off."""
    configured = "example-org/some-cross-encoder"
    statuses = {
        value: ServerRuntime(Settings(store_path=tmp_path, reranker_model=value)).model_status()
        for value in (configured, "none")
    }
    loading, off = statuses[configured], statuses["none"]
    assert not loading.loaded and loading.reranker_model == configured
    base = dict(tenant="acme", domains=[], embedding_model="m", embedding_dimension=None)

    def reranker_line(status: ModelStatus) -> str:
        stats = IndexStats(
            **base,
            models_loaded=status.loaded,
            reranker_model=status.reranker_model,
            reranker_available=status.reranker_available,
            reranker_note=status.reranker_note,
        )
        [line] = [ln for ln in render_stats(stats).splitlines() if ln.startswith("reranker")]
        return line

    assert reranker_line(loading) == f"reranker {configured} (loading)"
    assert off.reranker_model is None
    assert reranker_line(off) == "reranker: reranking is off (reranker_model='none')"
