"""stdio: a request whose JSON the SDK cannot parse is still answered.

The SDK's stdio transport parses each line with pydantic's JSON parser, which refuses a string
holding an unpaired surrogate escape (``"\\ud83d"``: a client cut an emoji in two; valid JSON,
not valid Unicode), and drops the line: the call it carried was never answered, and a client
without a timeout waited forever. It drops a line that is not JSON, or not a JSON-RPC
message, the same way, where JSON-RPC asks for an error with ``"id": null``; and it reads a
request whose id is an object, an array, a boolean or a fraction as a notification, never
answered. :func:`run_stdio` serves as ``MCPServer.run_stdio_async`` does, and answers such
lines itself (:func:`unparsable_answer`, :func:`idless_request_answer`); everything else passes
through to the SDK unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp import types
from mcp.server import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from server.errors import not_unicode_message
from server.tools.arguments import not_unicode


async def run_stdio(server: MCPServer) -> None:
    """Serve ``server`` over stdin/stdout until the client closes stdin."""
    lowlevel = server._lowlevel_server  # what MCPServer.run_stdio_async runs
    async with stdio_server() as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)

        async def pump() -> None:
            async with send:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        answer = unparsable_answer(item)
                    else:
                        answer = idless_request_answer(item.message)
                    if answer is None:
                        await send.send(item)
                    else:
                        await write_stream.send(SessionMessage(answer))

        async with anyio.create_task_group() as group:
            group.start_soon(pump)
            await lowlevel.run(receive, write_stream, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()


def unparsable_answer(error: Exception) -> types.JSONRPCError | None:
    """The JSON-RPC error answering a line the transport could not read as a message, or None
    when no answer is due (a blank line, a notification, a client's response).

    As JSON-RPC 2.0 (section 5.1) asks: a line that is not JSON is a parse error (-32700) and
    JSON that is not a request object an invalid request (-32600), both with ``"id": null``
    unless the request's id can be read; a request whose text is not valid Unicode is invalid
    params (-32602) naming where the text is. Never raises (a line nested too deep for any
    parser is an invalid request too).
    """
    if not isinstance(error, ValidationError):
        return None
    try:
        return _answer(error)
    except RecursionError:  # JSON nested deeper than Python's stack (json.loads, walks)
        return _error(None, types.INVALID_REQUEST, "the message nests too deep to be read")


NO_ID = (
    'a request needs an integer or string "id"; without one (or with a null, boolean, '
    "fractional, array or object id) it was read as a notification, which is never run or "
    "answered"
)


def idless_request_answer(message: types.JSONRPCMessage) -> types.JSONRPCError | None:
    """The answer to a message the SDK read as a notification although its method is a
    request's (``tools/call`` without a usable ``id``), else None.

    The SDK reads a request whose id is not an integer or a string (``{"id": {"n": 1}}``) as a
    notification: it drops the id, never runs it and never answers, so the client waits
    forever. MCP's notifications all start with ``notifications/``; any other method asks for
    an answer, so it gets an invalid request (-32600) with ``"id": null``, as JSON-RPC 2.0
    answers a request whose id cannot be read (the SDK has dropped it, so a request sent with
    no id at all gets the same answer).
    """
    if isinstance(message, types.JSONRPCNotification) and not message.method.startswith(
        "notifications/"
    ):
        return _error(None, types.INVALID_REQUEST, f"{message.method!r}: {NO_ID}")
    return None


def _answer(error: ValidationError) -> types.JSONRPCError | None:
    details = error.errors()
    if details and details[0]["type"] == "json_invalid":
        line = details[0].get("input")
        if not isinstance(line, str) or not line.strip():
            return None
        try:
            message: Any = json.loads(line)  # Python's parser keeps unpaired surrogates
        except ValueError as exc:
            return _error(None, types.PARSE_ERROR, f"the line is not JSON: {exc}")
        return _request_answer(message, parsed_by_sdk=False)
    # valid JSON that is no JSON-RPC message: a "missing" or "model_type" error holds it whole
    whole = [d["input"] for d in details if d["type"] in ("missing", "model_type")]
    return _request_answer(whole[0], parsed_by_sdk=True) if whole else None


NO_BATCHES = (
    "JSON-RPC batches are not supported (MCP dropped them in 2025-06-18): send each message "
    "on its own line"
)
NOT_A_REQUEST = (
    'the message is not a JSON-RPC 2.0 request: it needs "jsonrpc": "2.0", a string "method" '
    'and an integer or string "id"'
)


def _request_answer(message: Any, *, parsed_by_sdk: bool) -> types.JSONRPCError | None:
    """The answer to a JSON value that is no message the SDK reads: none for a notification
    (a "method" and no "id") or a client's response, else invalid request; a request the SDK's
    parser refused although Python's reads it (an unpaired surrogate escape) is invalid params,
    naming where its text is not valid Unicode."""
    if isinstance(message, list):  # a batch, empty or of anything: one answer says why
        return _error(None, types.INVALID_REQUEST, NO_BATCHES)
    if not isinstance(message, dict):
        return _error(None, types.INVALID_REQUEST, NOT_A_REQUEST)
    if _is_response(message) or ("id" not in message and "method" in message):
        return None  # JSON-RPC answers neither
    if "id" not in message:
        return _error(None, types.INVALID_REQUEST, NOT_A_REQUEST)
    ident = request_id(message)
    if ident is None:  # an id that cannot be echoed back: JSON-RPC's "id": null
        bad_id = not_unicode(message["id"])
        text = (
            not_unicode_message("the request id", bad_id[1])
            if bad_id is not None
            else "the request id must be an integer or a string"
        )
        return _error(None, types.INVALID_REQUEST, text)
    if parsed_by_sdk or not isinstance(message.get("method"), str):
        return _error(ident, types.INVALID_REQUEST, NOT_A_REQUEST)
    params = message.get("params")
    arguments = params.get("arguments") if isinstance(params, dict) else None
    # a tool call's arguments named as the tools name them ('query'), then the rest ('name')
    bad = (not_unicode(arguments) if isinstance(arguments, dict) else None) or not_unicode(params)
    text = (
        not_unicode_message(*bad)
        if bad is not None
        else "the request could not be read as JSON-RPC"
    )
    return _error(ident, types.INVALID_PARAMS, text)


def _is_response(message: dict[str, Any]) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


def request_id(message: dict[str, Any]) -> int | str | None:
    """The id of a JSON-RPC request as an answer can echo it: an integer or a string of valid
    Unicode; None otherwise (absent, null, a boolean, a fraction, an array, an object)."""
    ident = message.get("id")
    if isinstance(ident, bool) or not isinstance(ident, int | str) or not_unicode(ident):
        return None
    return ident


def _error(ident: int | str | None, code: int, text: str) -> types.JSONRPCError:
    error_data = types.ErrorData(code=code, message=text)
    return types.JSONRPCError(jsonrpc="2.0", id=ident, error=error_data)
