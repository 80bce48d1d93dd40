"""Hypothesis fuzzing of tool arguments: every call ends in a result or a clear tool error,
never a crash, and the session keeps serving."""

from __future__ import annotations

from typing import Any

import anyio
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from server.app import build_server
from server.runtime import ServerRuntime

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` skips it

TOOLS = [
    "doc_search",
    "legal_search",
    "code_search",
    "embed",
    "get_chunk",
    "list_sources",
    "index_stats",
]
KEYS = [
    "query",
    "top_k",
    "filters",
    "texts",
    "normalize",
    "id",
    "neighbors",
    "domain",
    "limit",
    "cursor",
    "path_glob",
    "path_prefix",
    "language",
    "symbol_kind",
    "doc_type",
    "section",
    "jurisdiction",
    "tenant",
]
TRICKY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "docs",
        "legal",
        "code",
        "**",
        "[",
        "[!]",
        "/",
        "../..",
        "*.py",
        "12 > 12.3",
        "00000000-0000-0000-0000-000000000000",
        "x" * 3000,
        "\x00",
        "﷽",
        "python",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    TRICKY_TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RANDOM_ARGUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5)
ARGUMENTS = st.one_of(
    RANDOM_ARGUMENTS,
    # half the time a usable query, so the search path itself is fuzzed, not only validation
    st.builds(lambda extra, q: {**extra, "query": q}, RANDOM_ARGUMENTS, st.text(min_size=1)),
)


async def _exercise(runtime: ServerRuntime, name: str, arguments: dict[str, Any]) -> None:
    async with Client(build_server(runtime, stdio_tenant="acme")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        result = await client.call_tool(name, arguments)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            assert text.strip(), (name, arguments)
            assert len(text.splitlines()) == 1, (name, arguments, text)  # one-line errors
            assert "Traceback" not in text
            assert "unexpectedly" not in text, (name, arguments, text)
            assert text.strip() != f"Error executing tool {name}", (name, arguments)
        else:
            schema = tools[name].output_schema
            assert schema is not None
            jsonschema.validate(result.structured_content, schema)
        after = await client.call_tool("index_stats", {})
        assert not after.is_error  # the session keeps serving


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(TOOLS), arguments=ARGUMENTS)
def test_fuzzed_arguments_never_crash(
    runtime: ServerRuntime, name: str, arguments: dict[str, Any]
) -> None:
    anyio.run(_exercise, runtime, name, arguments)
