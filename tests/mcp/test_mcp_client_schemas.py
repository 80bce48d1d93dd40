"""The published tool schemas through the conversions real clients run, offline (no model call).

Invariant: every tool this server publishes (read tools, and the write tools with
--allow-write) converts without error in google-genai's MCP path, in openai-agents' strict
mode (add_text excepted: its free-form metadata object cannot be strict), and in the
TypeScript SDK's client, which also checks each call's structured content against the tool's
outputSchema. The converters get the schemas from a real MCP listing; the property test
generates calls from the same schemas as built (checked equal to the listing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import Tool
from mcp_support import (
    REPO_ROOT,
    SECRET_WORD,
    cli_env,
    index_corpus,
    open_retrieval,
    serve_command,
    server_settings,
)

from server.app import build_server, build_tools
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime
from server.settings import Settings
from server.tools.schemas import schema_keys

pytestmark = pytest.mark.anyio

READ_TOOLS = {
    "doc_search",
    "legal_search",
    "code_search",
    "embed",
    "get_chunk",
    "list_sources",
    "index_stats",
}
WRITE_TOOLS = {"index_path", "job_status", "cancel_job", "remove_source", "add_text"}
NOT_STRICT = {"add_text": "its 'metadata' is a free-form object (any keys)"}
"""Tools that cannot be expressed in OpenAI strict mode, and why."""
NODE_DIR = REPO_ROOT / ".ci/node"
SDK_CLIENT = NODE_DIR / "sdk-client.mjs"
SDK_PACKAGE = NODE_DIR / "node_modules/@modelcontextprotocol/sdk/package.json"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def write_settings(store: Path, root: Path, **overrides: Any) -> Settings:
    return server_settings(store, mcp={"allow_write": True, "roots": [root]}, **overrides)


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[ServerRuntime]:
    path = tmp_path_factory.mktemp("schemas")
    store = EdgeStore(path / "store")
    yield ServerRuntime(write_settings(path / "store", path), store=store, embedder=embedder)
    store.close()


@pytest.fixture
async def client(runtime: ServerRuntime) -> AsyncIterator[Client]:
    async with Client(build_server(runtime, stdio_tenant="acme")) as session:
        yield session


@pytest.fixture
async def published(client: Client) -> dict[str, Tool]:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    return tools


def nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every sub-schema (dict) of ``schema``, the root included."""
    if isinstance(schema, dict):
        yield schema
        for key, value in schema.items():
            if key == "properties":
                for prop in value.values():
                    yield from nodes(prop)
            else:
                yield from nodes(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from nodes(item)


async def test_published_input_schemas_avoid_what_clients_reject(
    published: dict[str, Tool], runtime: ServerRuntime
) -> None:
    built = {tool.name: tool.parameters for tool in build_tools(runtime.settings)}
    assert built == {name: tool.input_schema for name, tool in published.items()}
    for name, tool in published.items():
        schema = tool.input_schema
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and isinstance(schema["properties"], dict), name
        assert not {"$ref", "$defs", "default", "title"} & schema_keys(schema), name
        for node in nodes(schema):
            assert not isinstance(node.get("additionalProperties"), bool), (name, node)
            branches = node.get("anyOf", [])
            assert all(b.get("type") != "null" for b in branches), (name, node)
        assert tool.title, name
        assert tool.output_schema is not None, name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)
    filters = published["doc_search"].input_schema["properties"]["filters"]
    assert filters["type"] == "object" and set(filters["properties"]) == {
        "doc_type",
        "path_prefix",
        "path_glob",
        "tags",
    }
    assert published["doc_search"].input_schema["required"] == ["query"]
    top_k = published["doc_search"].input_schema["properties"]["top_k"]
    assert top_k["description"].endswith("(1-50). Default 8.")


async def test_published_schemas_describe_the_calls_the_server_takes(
    client: Client, published: dict[str, Tool]
) -> None:
    """A call the published schema allows is one the server's own validation accepts."""
    calls = {
        "doc_search": {"query": "x", "top_k": 3, "filters": {"doc_type": ["rst"], "tags": "a"}},
        "legal_search": {"query": "x", "filters": {"doc_type": "statute", "section": "12"}},
        "code_search": {"query": "x", "language": "go", "symbol_kind": ["function"]},
        "list_sources": {"domain": "code", "path_prefix": "src", "limit": 5},
        "index_stats": {"domain": "legal"},
        "embed": {"texts": ["a"], "normalize": False},
    }
    for name, arguments in calls.items():
        jsonschema.validate(arguments, published[name].input_schema)
        result = await client.call_tool(name, arguments)
        assert not result.is_error, (name, result.content)


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema``, for the JSON Schema subset the published schemas use
    (unknown object keys never generated: the server refuses them by design)."""
    if "anyOf" in schema:
        return st.one_of([values(branch) for branch in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        high = min(schema.get("maxLength", 40), 40)
        return st.text(min_size=schema.get("minLength", 0), max_size=high)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if kind == "number":  # bounds kept: a value outside them is not one the schema allows
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "array":
        high = min(schema.get("maxItems", 4), 4)
        return st.lists(values(schema["items"]), min_size=schema.get("minItems", 0), max_size=high)
    assert kind == "object", schema
    mapping = schema.get("additionalProperties")
    if isinstance(mapping, dict):
        return st.dictionaries(st.text(min_size=1, max_size=8), values(mapping), max_size=3)
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    return st.fixed_dictionaries(
        {key: values(prop) for key, prop in properties.items() if key in required},
        optional={key: values(prop) for key, prop in properties.items() if key not in required},
    )


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_call_the_published_schema_allows_the_server_accepts(
    runtime: ServerRuntime, data: st.DataObject
) -> None:
    """Publishing drops the null branches and defaults, never a value the server takes: any
    arguments valid under the published schema pass the tool's own validation."""
    tools = {tool.name: tool for tool in build_tools(runtime.settings)}
    name = data.draw(st.sampled_from(sorted(tools)))
    arguments = data.draw(values(tools[name].parameters), label=name)
    tools[name].fn_metadata.validate_arguments(arguments)  # raises if the server refuses


async def test_google_genai_converts_every_tool(client: Client) -> None:
    """google-genai's own MCP path: a session in GenerateContentConfig.tools becomes function
    declarations (what generate_content does before it calls the model)."""
    from google.genai import types
    from google.genai._extra_utils import parse_config_for_mcp_sessions

    config = types.GenerateContentConfig(tools=[client.session])
    parsed, adapters = await parse_config_for_mcp_sessions(config)
    assert parsed is not None and parsed.tools is not None
    declarations = {
        d.name: d for tool in parsed.tools for d in (tool.function_declarations or []) if d.name
    }
    assert set(declarations) == READ_TOOLS | WRITE_TOOLS == set(adapters)
    doc = declarations["doc_search"].parameters
    assert doc is not None and doc.type == types.Type.OBJECT and doc.required == ["query"]
    assert doc.properties is not None
    filters = doc.properties["filters"]
    assert filters.type == types.Type.OBJECT and filters.properties is not None
    doc_type = filters.properties["doc_type"].any_of
    assert doc_type is not None
    assert [b.type for b in doc_type] == [types.Type.STRING, types.Type.ARRAY]
    legal = declarations["legal_search"].parameters
    assert legal is not None and legal.properties is not None
    legal_filters = legal.properties["filters"].properties
    assert legal_filters is not None
    assert legal_filters["section"].type == types.Type.STRING
    domain = declarations["list_sources"].parameters
    assert domain is not None and domain.properties is not None
    assert domain.properties["domain"].enum == ["docs", "legal", "code"]


async def test_openai_agents_strict_mode_takes_every_tool(published: dict[str, Tool]) -> None:
    """openai-agents' MCP conversion with convert_schemas_to_strict=True: a tool it cannot make
    strict silently falls back to non-strict, which is what must not happen."""
    from agents.mcp import MCPServerStdio, MCPUtil

    server = MCPServerStdio(params={"command": "unused"})  # only its settings are read
    for name, tool in published.items():
        function = MCPUtil.to_function_tool(tool, server, convert_schemas_to_strict=True)
        assert function.strict_json_schema is (name not in NOT_STRICT), name
    strict = MCPUtil.to_function_tool(published["doc_search"], server, True).params_json_schema
    assert strict["additionalProperties"] is False
    assert strict["properties"]["filters"]["additionalProperties"] is False
    assert set(strict["required"]) == {"query", "top_k", "filters", "max_chars"}


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip("node is not installed (the TypeScript SDK check needs Node 20+)")
    if not SDK_PACKAGE.exists():
        pytest.skip("@modelcontextprotocol/sdk is not installed: run `make node-deps`")
    return path


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder) -> Path:
    path = tmp_path_factory.mktemp("ts-sdk") / "store"
    store = EdgeStore(path)
    index_corpus(open_retrieval(store, server_settings(path), embedder))
    store.close()
    return path


def run_sdk_client(node: str, command: list[str], calls: list[Any]) -> dict[str, Any]:
    program, *args = command
    spec = {"command": program, "args": args, "env": cli_env(), "calls": calls}
    done = subprocess.run(
        [node, str(SDK_CLIENT), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=NODE_DIR,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


READ_CALLS: list[Any] = [
    ["doc_search", {"query": f"where does the {SECRET_WORD['acme']} database go"}],
    ["get_chunk", {"id": "$first_hit_id", "neighbors": 2}],
    ["doc_search", {"query": "backup", "filters": {"doc_type": "markdown", "path_glob": "*.md"}}],
    ["legal_search", {"query": "termination notice", "filters": {"doc_type": ["contract"]}}],
    ["code_search", {"query": "retry attempts", "language": "python", "top_k": 3}],
    ["embed", {"texts": ["a cat", "a dog"]}],
    ["list_sources", {"domain": "docs"}],
    ["index_stats", {}],
    ["index_stats", {"domain": "code"}],
]


@pytest.mark.slow
def test_typescript_sdk_lists_and_calls_every_tool(
    node: str, disk_store: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Pager\n\nThe pager rota is kept in the wiki.\n")
    writes = ["--allow-write", "--root", str(notes)]
    command = serve_command(disk_store, "--transport", "stdio", "--tenant", "acme", *writes)
    calls = [
        *READ_CALLS,
        ["add_text", {"text": "Decision: keep backups for 30 days.", "title": "Retention"}],
        ["index_path", {"path": str(notes), "domain": "docs"}],
        ["job_status", {"job_id": "$job_id", "wait_s": 20}],
        ["cancel_job", {"job_id": "$job_id"}],
        ["remove_source", {"domain": "docs", "source": str(notes / "a.md")}],
        ["doc_search", {"query": "x", "doc_type": "rst"}],
    ]
    result = run_sdk_client(node, command, calls)
    tools = {t["name"]: t for t in result["tools"]}
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    assert all(t["title"] and t["outputSchema"] for t in tools.values())
    *good, misplaced = result["calls"]
    for call in good:
        assert "thrown" not in call, call  # the SDK found the structured content valid
        assert call["structuredContent"] is not None, call
    assert {c["name"] for c in good} == READ_TOOLS | WRITE_TOOLS
    assert not any(c["isError"] for c in good if c["name"] in READ_TOOLS), good
    first = good[0]["structuredContent"]["hits"][0]
    chunk = good[1]["structuredContent"]
    assert chunk["chunk"]["id"] == first["id"] and SECRET_WORD["acme"] in first["text"]
    assert misplaced["isError"] and misplaced["text"].splitlines() == [
        "Error executing tool doc_search: unknown argument 'doc_type': it is a filter — pass it "
        "inside 'filters'"
    ]
