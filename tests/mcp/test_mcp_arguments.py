"""Argument errors: one line that names the bad argument and says where it belongs.

Invariant: for every tool and every argument set with a bad argument (unknown, misplaced,
of the wrong type, or a required one missing), the call ends in an is_error result whose text
is exactly one line and names that argument. Arguments are checked before any store or model
work, so the server here runs over an empty store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_support import error_text, server_settings

from server.app import build_server
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime
from server.tools.arguments import not_unicode

VALID: dict[str, dict[str, Any]] = {
    "doc_search": {"query": "backups"},
    "legal_search": {"query": "termination"},
    "code_search": {"query": "retry"},
    "embed": {"texts": ["a"]},
    "get_chunk": {"id": "00000000-0000-0000-0000-000000000000"},
    "list_sources": {"domain": "docs"},
    "index_stats": {},
}
"""A valid call per tool, which each generated case then breaks in one place."""
FILTERS = {
    "doc_search": ["doc_type", "path_prefix", "path_glob", "tags"],
    "legal_search": ["doc_type", "jurisdiction", "section", "path_prefix", "tags"],
}
WRONG_TYPE: dict[str, dict[str, Any]] = {
    "doc_search": {"top_k": "many", "query": 5, "max_chars": [1], "filters": "rst"},
    "legal_search": {"top_k": 1.5, "filters": ["contract"], "query": {"q": 1}},
    "code_search": {"language": 3, "symbol_kind": "lambda", "top_k": None, "path_glob": {}},
    "embed": {"texts": "one text", "normalize": "yes please"},
    "get_chunk": {"id": 7, "neighbors": "all"},
    "list_sources": {"domain": "recipes", "limit": "ten", "cursor": 3},
    "index_stats": {"domain": "everything"},
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
TOOLS = sorted(VALID)
ALL_NAMES = {"query", "top_k", "filters", "max_chars", "texts", "normalize", "id"} | {
    "neighbors", "domain", "path_prefix", "limit", "cursor", "language", "path_glob",
    "symbol_kind", "doc_type", "tags", "jurisdiction", "section",
}  # fmt: skip
UNKNOWN_NAMES = st.text(min_size=1, max_size=80).filter(lambda name: name not in ALL_NAMES)


@pytest.fixture(scope="module")
def empty_runtime(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[ServerRuntime]:
    path = tmp_path_factory.mktemp("arguments") / "store"
    store = EdgeStore(path)
    yield ServerRuntime(server_settings(path), store=store, embedder=embedder)
    store.close()


def call(runtime: ServerRuntime, tool: str, arguments: dict[str, Any]) -> str:
    async def run() -> str:
        async with Client(build_server(runtime, stdio_tenant="acme")) as client:
            return error_text(await client.call_tool(tool, arguments))

    return anyio.run(run)


def assert_one_line(text: str, *names: str) -> None:
    assert len(text.splitlines()) == 1, text
    assert "pydantic" not in text and "validation error" not in text, text
    for name in names:
        assert name in text, (name, text)


def quoted(name: str) -> str:
    """How messages quote a caller's name: repr (escapes line breaks), cut at 60 characters."""
    return repr(name if len(name) <= 60 else name[:60] + "…")


@st.composite
def broken_call(draw: st.DrawFn) -> tuple[str, dict[str, Any], str]:
    """(tool, arguments, the text naming the bad argument) with exactly one thing wrong."""
    tool = draw(st.sampled_from(TOOLS))
    arguments = dict(VALID[tool])
    kinds = ["unknown", "wrong_type"] + (["missing"] if arguments else [])
    kinds += ["misplaced", "nested_unknown"] if tool in FILTERS else []
    kind = draw(st.sampled_from(kinds))
    if kind == "unknown":
        name = draw(UNKNOWN_NAMES)
        arguments[name] = draw(JSON_VALUES)
        return tool, arguments, quoted(name)
    if kind == "wrong_type":
        name, value = draw(st.sampled_from(sorted(WRONG_TYPE[tool].items())))
        arguments[name] = value
        return tool, arguments, f"argument '{name}"
    if kind == "missing":
        name = draw(st.sampled_from(sorted(arguments)))
        del arguments[name]
        return tool, arguments, f"missing required argument '{name}'"
    if kind == "misplaced":
        name = draw(st.sampled_from(FILTERS[tool]))
        arguments[name] = draw(JSON_VALUES)
        return tool, arguments, f"'{name}': it is a filter — pass it inside 'filters'"
    name = draw(UNKNOWN_NAMES.filter(lambda n: n not in FILTERS[tool]))
    arguments["filters"] = {name: draw(JSON_VALUES)}
    return tool, arguments, "unknown argument " + quoted(f"filters.{name}")


@pytest.mark.slow
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=broken_call())
def test_any_bad_argument_is_one_line_naming_it(
    empty_runtime: ServerRuntime, case: tuple[str, dict[str, Any], str]
) -> None:
    tool, arguments, naming = case
    assert_one_line(call(empty_runtime, tool, arguments), naming)


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tool=st.sampled_from(TOOLS),
    extra=st.dictionaries(UNKNOWN_NAMES, JSON_VALUES, min_size=1, max_size=6),
)
def test_many_bad_arguments_are_still_one_line(
    empty_runtime: ServerRuntime, tool: str, extra: dict[str, Any]
) -> None:
    arguments = {**WRONG_TYPE[tool], **extra}
    text = call(empty_runtime, tool, arguments)
    assert_one_line(text, *(quoted(name) for name in extra))  # unknown names come first
    assert text.count(";") + text.count("more problem") >= 1  # several problems, one line


def test_misplaced_filter_names_its_place(empty_runtime: ServerRuntime) -> None:
    text = call(empty_runtime, "doc_search", {"query": "x", "doc_type": "rst"})
    assert text == (
        "Error executing tool doc_search: unknown argument 'doc_type': it is a filter — "
        "pass it inside 'filters'"
    )
    text = call(empty_runtime, "code_search", {"query": "x", "filters": {"path_glob": "*.py"}})
    assert text.endswith(
        "unknown argument 'filters': code_search takes 'path_glob' as top-level arguments — "
        "pass them beside 'query'"
    )
    text = call(empty_runtime, "doc_search", {"query": "x", "filters": {"top_k": 3}})
    assert text.endswith(
        "unknown argument 'filters.top_k': it is a top-level argument — pass it beside "
        "'filters', not inside"
    )


def test_argument_of_another_tool_names_that_tool(empty_runtime: ServerRuntime) -> None:
    text = call(empty_runtime, "doc_search", {"query": "x", "filters": {"language": "go"}})
    assert_one_line(text, "'filters.language'", "code_search", "doc_type, path_prefix")
    text = call(empty_runtime, "get_chunk", {"id": "x", "query": "y"})
    assert_one_line(text, "'query'", "doc_search", "get_chunk takes id, neighbors")


def test_type_errors_are_merged_per_argument(empty_runtime: ServerRuntime) -> None:
    text = call(empty_runtime, "doc_search", {"query": "x", "filters": {"doc_type": 5}})
    assert text.endswith(
        "argument 'filters.doc_type': input should be a valid string or a valid list"
    )
    text = call(empty_runtime, "legal_search", {"query": "x", "filters": {"doc_type": ["deed"]}})
    assert_one_line(text, "'filters.doc_type[0]'", "'contract'")


def test_unknown_arguments_are_named_together(empty_runtime: ServerRuntime) -> None:
    text = call(empty_runtime, "embed", {"texts": ["a"], "foo": 1, "bar": 2, "normalize": "x"})
    assert text == (
        "Error executing tool embed: unknown arguments 'foo', 'bar'; embed takes texts, "
        "normalize; argument 'normalize': input should be a valid boolean, unable to interpret "
        "input"
    )


def test_names_with_line_breaks_stay_on_one_line(empty_runtime: ServerRuntime) -> None:
    for name in ["a\nb", "x\r\ny", "p\u2028q", "tab\there", "z" * 500]:
        text = call(empty_runtime, "embed", {"texts": ["a"], name: 1})
        assert_one_line(text, "unknown argument")


def test_unknown_argument_is_never_silently_dropped(
    empty_runtime: ServerRuntime, tmp_path: Path
) -> None:
    """The filter placed at the top level used to return unfiltered hits."""
    for tool in ("doc_search", "legal_search"):
        text = call(empty_runtime, tool, {"query": "x", "path_prefix": str(tmp_path)})
        assert "pass it inside 'filters'" in text


HALVES = ["\ud83d", "\ude00", "\udce6"]  # the halves of an emoji; a byte that is not UTF-8


@pytest.mark.parametrize(
    ("tool", "arguments", "where"),
    [
        ("doc_search", {"query": "backups {}"}, "'query'"),
        ("legal_search", {"query": "x", "filters": {"tags": ["ok", "{}"]}}, "'filters.tags[1]'"),
        ("code_search", {"query": "x", "path_glob": "src/{}/*"}, "'path_glob'"),
        ("embed", {"texts": ["fine", "{} cut"]}, "'texts[1]'"),
        ("get_chunk", {"id": "{}"}, "'id'"),
    ],
)
@pytest.mark.parametrize("half", HALVES)
def test_text_that_isnot_unicode_is_one_line_naming_it(
    empty_runtime: ServerRuntime, tool: str, arguments: dict[str, Any], where: str, half: str
) -> None:
    """Invariant: a string argument holding an unpaired surrogate (JSON can carry ``\\ud83d``:
    a client cut an emoji in two) is refused in one line naming the argument, which never
    quotes the surrogate itself. Over stdio such a search used to get no reply at all."""

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{}", half)
        if isinstance(value, list):
            return [fill(v) for v in value]
        return {fill(k): fill(v) for k, v in value.items()} if isinstance(value, dict) else value

    text = call(empty_runtime, tool, fill(arguments))
    assert_one_line(text, f"argument {where}", f"unpaired surrogate (U+{ord(half):04X}")
    assert half not in text
    text.encode("utf-8")  # the reply can be written


def test_an_argument_name_that_isnot_unicode_is_named_escaped() -> None:
    """A name (only a raw JSON client can send one: the SDK's client cannot encode it)."""
    where, what = not_unicode({"query": "x", "filters": {"\ud83d": "y"}}) or ("", "")
    assert where == "argument name '\\ud83d' in 'filters'" and what.startswith(
        "an unpaired surrogate (U+D83D)"
    )
