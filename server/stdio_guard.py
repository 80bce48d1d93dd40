"""stdio: a request whose JSON the SDK cannot parse is still answered.

The SDK's stdio transport parses each line with pydantic's JSON parser, which refuses a string
holding an unpaired surrogate escape (``"\\ud83d"``: a client cut an emoji in two; valid JSON,
not valid Unicode), and drops the line: the call it carried was never answered, and a client
without a timeout waited forever. :func:`run_stdio` serves as ``MCPServer.run_stdio_async``
does, and answers such a request itself with a JSON-RPC error (invalid params) naming where
the text is; everything else passes through to the SDK unchanged.
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
                    answer = unparsable_answer(item) if isinstance(item, Exception) else None
                    if answer is None:
                        await send.send(item)
                    else:
                        await write_stream.send(SessionMessage(answer))

        async with anyio.create_task_group() as group:
            group.start_soon(pump)
            await lowlevel.run(receive, write_stream, lowlevel.create_initialization_options())
            group.cancel_scope.cancel()


def unparsable_answer(error: Exception) -> types.JSONRPCError | None:
    """The error answering a request the transport could not parse, or None when the line
    held no request with an id to answer (a notification, or not JSON at all)."""
    if not isinstance(error, ValidationError):
        return None
    details = error.errors()
    line = details[0].get("input") if details and details[0]["type"] == "json_invalid" else None
    if not isinstance(line, str):
        return None
    try:
        message: Any = json.loads(line)  # Python's parser keeps unpaired surrogates
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("method"), str):
        return None
    ident = message.get("id")
    if isinstance(ident, bool) or not isinstance(ident, int | str) or not_unicode(ident):
        return None
    params = message.get("params")
    arguments = params.get("arguments") if isinstance(params, dict) else None
    # a tool call's arguments named as the tools name them ('query'), then the rest ('name')
    bad = (not_unicode(arguments) if isinstance(arguments, dict) else None) or not_unicode(params)
    text = (
        not_unicode_message(*bad)
        if bad is not None
        else "the request could not be read as JSON-RPC"
    )
    error_data = types.ErrorData(code=types.INVALID_PARAMS, message=text)
    return types.JSONRPCError(jsonrpc="2.0", id=ident, error=error_data)
