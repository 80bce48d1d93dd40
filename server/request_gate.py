"""Bounded tool work with backpressure and per-request timeouts.

Tool functions are synchronous (models, store); the SDK would run each on anyio's default
thread pool, whose queue has no bound: under more load than the machine serves, every call
waits longer and longer. The :class:`RequestGate` runs the read tools instead:

- at most ``max_in_flight`` on worker threads at once (an anyio CapacityLimiter);
- at most ``max_queued`` more waiting; one call beyond that is refused at once with a one-line
  "busy, retry in Ns" tool error (:meth:`RequestGate.busy_message`), and over HTTP the
  :class:`BusyResponder` answers such a ``tools/call`` with 503 and ``Retry-After``;
- each call within ``request_timeout_seconds`` (queueing included), else a one-line timeout
  error. A worker thread cannot be interrupted: the work goes on in the background and still
  counts against the bound until it ends, so timeouts never let work pile up unbounded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.settings import ConcurrencySettings

T = TypeVar("T")
logger = logging.getLogger(__name__)


class _Ticket:
    """One admitted call: whether its work started, ended, or was given up by its caller."""

    def __init__(self) -> None:
        self.holds_worker = False
        self.started = False
        self.done = False
        self.abandoned = False


class RequestGate:
    """Admission, a bounded worker pool and a deadline for tool calls (one per server).

    A worker slot is held until the work really ends, even when its caller timed out and was
    answered: the number of threads running tool work never exceeds ``max_in_flight``.
    """

    def __init__(self, settings: ConcurrencySettings) -> None:
        self.settings = settings
        self.capacity = settings.max_in_flight + settings.max_queued
        """Calls admitted at once: running plus waiting (from the concurrency settings)."""
        self._guard = threading.Lock()
        self._pending = 0
        self._running = 0
        self._workers: anyio.CapacityLimiter | None = None
        self.refused = 0
        self.timed_out = 0

    @property
    def pending(self) -> int:
        """Calls admitted and not yet finished (abandoned work included until it ends)."""
        return self._pending

    @property
    def running(self) -> int:
        """Calls whose work is running on a worker thread now."""
        return self._running

    @property
    def saturated(self) -> bool:
        """True when one more call would be refused."""
        return self._pending >= self.capacity

    def busy_message(self) -> str:
        """The one-line refusal: how busy, and when to retry."""
        return (
            f"busy: {self._pending} requests running or queued (limit {self.capacity}); "
            f"retry in {self.settings.retry_after_seconds}s"
        )

    def _admit(self) -> _Ticket | None:
        with self._guard:
            if self._pending >= self.capacity:
                self.refused += 1
                return None
            self._pending += 1
            return _Ticket()

    def _in_worker(self, ticket: _Ticket, fn: Callable[[], T]) -> Callable[[], T | None]:
        workers = self._workers

        def work() -> T | None:
            with self._guard:
                if ticket.abandoned:  # its caller gave up before it started: nothing to do
                    return None
                ticket.started = True
                self._running += 1
            try:
                return fn()
            finally:
                with self._guard:
                    ticket.done = True
                    self._running -= 1
                    self._pending -= 1
                    release_here = ticket.abandoned
                if release_here and workers is not None:  # the caller left: free its slot
                    with contextlib.suppress(Exception):  # the loop may be gone at shutdown
                        anyio.from_thread.run_sync(workers.release_on_behalf_of, ticket)

        return work

    async def run(self, tool: str, fn: Callable[[], T]) -> T:
        """``fn()`` on a worker thread within the bounds; ToolError (one line) when the server
        is busy or the call takes longer than ``request_timeout_seconds``."""
        ticket = self._admit()
        if ticket is None:
            raise ToolError(self.busy_message())
        if self._workers is None:
            self._workers = anyio.CapacityLimiter(self.settings.max_in_flight)
        workers = self._workers
        timeout = self.settings.request_timeout_seconds
        try:
            with anyio.fail_after(timeout):
                await workers.acquire_on_behalf_of(ticket)
                ticket.holds_worker = True
                result = await anyio.to_thread.run_sync(
                    self._in_worker(ticket, fn), abandon_on_cancel=True
                )
        except TimeoutError:
            self.timed_out += 1
            logger.warning("%s timed out after %gs (%d calls pending)", tool, timeout, self.pending)
            # the SDK prefixes "Error executing tool <name>: "
            raise ToolError(
                f"timed out after {timeout:g}s (the server is overloaded or the request is too "
                f"large); retry in {self.settings.retry_after_seconds}s or narrow it"
            ) from None
        finally:
            self._leave(ticket, workers)
        return result  # type: ignore[return-value]  # None only for abandoned work

    def _leave(self, ticket: _Ticket, workers: anyio.CapacityLimiter) -> None:
        """The caller is done waiting: release what the work no longer needs (the worker
        slot of work still running is released by the work itself when it ends)."""
        with self._guard:
            still_running = ticket.started and not ticket.done
            if not ticket.started:
                self._pending -= 1
            ticket.abandoned = True
        if ticket.holds_worker and not still_running:
            workers.release_on_behalf_of(ticket)

    def guard(self, tool: Tool) -> Tool:
        """``tool`` with its function run through :meth:`run` (same schema and arguments)."""
        fn = tool.fn
        name = tool.name

        async def gated(**kwargs: Any) -> Any:
            return await self.run(name, functools.partial(fn, **kwargs))

        return tool.model_copy(update={"fn": gated, "is_async": True})


class BusyResponder:
    """HTTP backpressure: while the gate is saturated, a POST carrying a ``tools/call`` gets
    503 with ``Retry-After`` and a JSON-RPC error at once (other messages, such as
    ``initialize`` or notifications, pass: they cost nothing and keep sessions whole)."""

    max_inspected_bytes = 4 * 1024 * 1024
    """Bodies larger than this are passed on unread (the transport bounds them itself)."""

    def __init__(self, app: ASGIApp, gate: RequestGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not self.gate.saturated
            or not authenticated(scope)
        ):
            await self.app(scope, receive, send)
            return
        body, complete = await read_body(receive, self.max_inspected_bytes)
        call_id = _tool_call_id(body) if complete else None
        if call_id is not None and self.gate.saturated:
            await self._refuse(call_id, send)
            return
        await self.app(scope, replay(body, complete, receive), send)

    async def _refuse(self, call_id: object, send: Send) -> None:
        message = self.gate.busy_message()
        payload = json.dumps(
            {"jsonrpc": "2.0", "id": call_id, "error": {"code": -32000, "message": message}}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"retry-after", str(self.gate.settings.retry_after_seconds).encode()),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def authenticated(scope: Scope) -> bool:
    """False only when the SDK's authentication ran and found no valid token (its
    ``UnauthenticatedUser``); without authentication configured there is no ``user``."""
    user = scope.get("user")
    return user is None or bool(getattr(user, "is_authenticated", False))


async def read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body up to ``limit`` bytes; True when that is all of it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _tool_call_id(body: bytes) -> object | None:
    """The JSON-RPC id of a ``tools/call`` request in ``body`` (first one of a batch)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    for message in data if isinstance(data, list) else [data]:
        if isinstance(message, dict) and message.get("method") == "tools/call":
            return message.get("id")
    return None


def replay(body: bytes, complete: bool, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A receive that hands back the body already read, then reads on."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replayed
