"""Every line a stdio client sends that asks for an answer gets one.

The SDK's stdio transport drops a line it cannot read as a JSON-RPC message (it only logs it),
so a client that sent a garbled or malformed request waited forever. Invariant (JSON-RPC 2.0,
section 5.1): a line that is not JSON is answered with a parse error (-32700) and JSON that is
not a request object with an invalid request (-32600), ``"id": null`` unless the request's id
can be read; notifications, clients' responses and blank lines are not answered. A request the
SDK reads as a notification (its id is no integer or string) is answered with a null id.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from hypothesis import given
from hypothesis import strategies as st

from server.stdio_guard import idless_request_answer, unparsable_answer


def _answer(line: str) -> types.JSONRPCError | None:
    try:
        types.jsonrpc_message_adapter.validate_json(line, by_name=False)  # what the SDK runs
    except Exception as exc:
        return unparsable_answer(exc)
    raise AssertionError(f"the SDK reads {line!r}")


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


@given(st.text(min_size=1).filter(lambda line: line.strip() and not _is_json(line)))
def test_a_line_that_is_not_json_is_a_parse_error(line: str) -> None:
    answer = _answer(line.replace("\n", " "))
    assert answer is not None and answer.id is None
    assert answer.error.code == types.PARSE_ERROR and answer.error.message.startswith("the line")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@given(JSON)
def test_json_that_is_not_a_message_is_an_invalid_request(value: Any) -> None:
    if isinstance(value, dict):
        value = {**value, "id": 7, "method": 12}  # a request whose method is no string
    answer = _answer(json.dumps(value))
    assert answer is not None and answer.error.code == types.INVALID_REQUEST
    assert answer.id == (7 if isinstance(value, dict) else None)


def test_what_needs_no_answer_gets_none() -> None:
    for line in (
        " ",
        json.dumps({"jsonrpc": "2.0", "method": 5}),  # no id: a notification, however broken
        json.dumps({"jsonrpc": "1.0", "id": 3, "result": {}}),  # a client's response
    ):
        assert _answer(line) is None, line
    wrong_version = _answer(json.dumps({"jsonrpc": "1.0", "id": "a", "method": "ping"}))
    assert wrong_version is not None and wrong_version.id == "a"
    assert wrong_version.error.code == types.INVALID_REQUEST


def test_a_request_id_that_is_not_valid_unicode_is_answered_with_a_null_id() -> None:
    """Its id cannot be echoed back (it is not text a reply can hold): JSON-RPC's null."""
    line = json.dumps({"jsonrpc": "2.0", "id": "call-\ud83d", "method": "tools/call"})
    answer = _answer(line)
    assert answer is not None and answer.id is None
    assert answer.error.code == types.INVALID_REQUEST
    assert answer.error.message.startswith("the request id is not valid Unicode text")
    notification = json.dumps({"jsonrpc": "2.0", "method": "notifications/\ud83d"})
    assert _answer(notification) is None


@given(depth=st.integers(min_value=1, max_value=5000), kind=st.sampled_from(["[]", "{}"]))
def test_json_nested_any_depth_is_answered_without_raising(depth: int, kind: str) -> None:
    """Field report: 1,200 nested brackets raised RecursionError in the guard, which ended
    the server."""
    opened, closed = kind
    inner = '{"a":' if opened == "{" else "["
    line = inner * depth + "1" + closed * depth
    answer = _answer(line)
    assert answer is not None and answer.id is None
    assert answer.error.code == types.INVALID_REQUEST


@given(st.dictionaries(st.sampled_from(["jsonrpc", "foo", "params", "x"]), JSON, max_size=3))
def test_an_object_without_id_or_method_is_an_invalid_request(value: dict[str, Any]) -> None:
    answer = _answer(json.dumps(value))
    assert answer is not None and answer.id is None
    assert answer.error.code == types.INVALID_REQUEST


def test_a_batch_is_refused_as_a_batch() -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    for value in (batch, [], [1, 2], [[]]):  # JSON-RPC reads any array as a batch
        answer = _answer(json.dumps(value))
        assert answer is not None and answer.id is None
        assert answer.error.code == types.INVALID_REQUEST and "batches" in answer.error.message


UNREADABLE_IDS = (
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False).filter(lambda x: not x.is_integer())
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers())
)


@given(
    ident=UNREADABLE_IDS,
    method=st.sampled_from(["tools/call", "tools/list", "ping", "resources/read", "initialize"]),
)
def test_a_request_whose_id_the_sdk_cannot_read_is_answered(ident: Any, method: str) -> None:
    """Fresh-user report: ``"id": {"n": 1}`` made the SDK read a tools/list as a notification,
    never run nor answered. A request method asks for an answer: invalid request, null id."""
    line = json.dumps({"jsonrpc": "2.0", "id": ident, "method": method})
    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    answer = idless_request_answer(message)
    assert answer is not None and answer.id is None
    assert answer.error.code == types.INVALID_REQUEST and method in answer.error.message


def test_notifications_and_readable_requests_pass_through() -> None:
    for value in (
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": "x", "method": "ping"},
        {"jsonrpc": "2.0", "id": 3, "result": {}},
    ):
        message = types.jsonrpc_message_adapter.validate_json(json.dumps(value), by_name=False)
        assert idless_request_answer(message) is None, value
