"""``retrieval-mcp serve`` and ``retrieval-mcp token {add,list,revoke}``.

Over stdio, stdout carries the protocol: everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from server.allocator import use_allocator
from server.cli_types import RERANKER_HELP
from server.errors import InvalidRequestError
from server.ingest.watch_roots import WatchRoot
from server.settings import Settings
from server.shutdown import ExitOnSignal

if TYPE_CHECKING:
    from server.app import Transport
    from server.auth import TokenFile
    from server.oauth import JwtVerifier
    from server.runtime import ServerRuntime

    HttpAccess = TokenFile | JwtVerifier

logger = logging.getLogger("retrieval_mcp.serve")

SSE_DEPRECATED = "deprecated by the MCP specification in favour of Streamable HTTP"


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the MCP server on one transport until the client or a signal stops it."""
    settings = Settings.from_cli(args)
    watch_roots = [WatchRoot.parse(spec) for spec in args.watch or []]
    # a watched folder is kept indexed anyway: index_path may refresh it too
    settings.mcp.roots = [*settings.mcp.roots, *(root.path for root in watch_roots)]
    if args.transport == "stdio":
        return _serve_stdio_command(args, settings, watch_roots)
    return _serve_http_command(args, settings, watch_roots)


def _serve_stdio_command(
    args: argparse.Namespace, settings: Settings, watch_roots: list[WatchRoot]
) -> int:
    from server.runtime import ServerRuntime as Runtime
    from server.tenants import validate_tenant

    tenant = args.tenant or settings.mcp.tenant
    if not tenant:
        raise InvalidRequestError(
            "stdio needs a tenant: pass --tenant T or set RETRIEVAL_MCP__TENANT"
        )
    validate_tenant(tenant)
    if args.watch_tenant and args.watch_tenant != tenant:
        raise InvalidRequestError(
            "over stdio the watched folders belong to the served tenant: drop --watch-tenant"
        )
    _check_store(settings, watch_roots)
    runtime = Runtime(settings)
    watching = BackgroundWatch(runtime, watch_roots, tenant)
    try:
        serve_stdio(runtime, tenant, watching)
    finally:
        watching.stop()
        runtime.close()
        exit_after_models(runtime)
    return 0


def _check_store(settings: Settings, watch_roots: list[WatchRoot]) -> None:
    """Refuse an embedded store path that can never hold a store (a file on its path); say so
    when it holds none yet. A server may start before anything is ingested (an ingest run
    while it serves shares its store), so a new store is not refused, but a mistyped --store
    must not pass silently: every search would just find nothing."""
    from pathlib import Path

    from server.retrieval.edge_store import holds_store, store_path_problem

    if settings.qdrant_url:
        return
    store = Path(settings.store_path).expanduser()
    problem = store_path_problem(store)
    if problem is not None:
        raise InvalidRequestError(problem)
    if holds_store(store):
        return
    if settings.mcp.allow_write or watch_roots:
        logger.info("no store at %s yet: starting an empty one", store)
        return
    logger.warning(
        "no store at %s: starting an empty one, nothing to search until `retrieval-mcp "
        "ingest PATH --domain D --tenant T --store %s` fills it (it may run while this "
        "server does); check --store / RETRIEVAL_STORE_PATH if you meant an existing store",
        store,
        store,
    )


def exit_after_models(runtime: ServerRuntime, timeout: float = 120.0) -> None:
    """Let a model load in progress end before the interpreter exits (a native runtime's
    threads abort the process otherwise); after ``timeout`` seconds, leave at once with
    ``os._exit`` (the store is closed by then, stdout flushed)."""
    if runtime.wait_for_models(timeout):
        return
    logger.warning("the models were still loading after %.0fs; exiting without them", timeout)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _check_http_arguments(
    args: argparse.Namespace, settings: Settings, watch_roots: list[WatchRoot], host: str
) -> None:
    """One-line errors for arguments HTTP cannot take; warnings for risky ones."""
    from server.tenants import validate_tenant

    if args.transport == "sse":
        logger.warning(
            "the SSE transport is legacy, %s (--transport streamable-http, endpoint /mcp); "
            "it stays for clients that support nothing else",
            SSE_DEPRECATED,
        )
    if settings.mcp.tenant and not args.tenant:
        logger.info("RETRIEVAL_MCP__TENANT is ignored over HTTP: each token names its tenant")
    if args.tenant:
        raise InvalidRequestError(
            "--tenant applies to stdio only; over HTTP each token carries its tenant "
            "(retrieval-mcp token add --tenant T)"
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "listening on %s: reachable beyond this machine; add the names clients use to "
            "RETRIEVAL_MCP__ALLOWED_HOSTS",
            host,
        )
    if watch_roots and not args.watch_tenant:
        raise InvalidRequestError(
            "--watch over HTTP needs --watch-tenant T: the tenant whose index the folders feed"
        )
    if args.watch_tenant:
        validate_tenant(args.watch_tenant)


def _serve_http_command(
    args: argparse.Namespace, settings: Settings, watch_roots: list[WatchRoot]
) -> int:
    from server.runtime import ServerRuntime as Runtime

    host = args.host or settings.mcp.host
    port = settings.mcp.port if args.port is None else args.port
    _check_http_arguments(args, settings, watch_roots, host)
    # before any thread, store or model: the process is replaced (same pid and arguments),
    # and only when it is the retrieval-mcp program, not a host that called main() in-process
    if args.own_process:
        use_allocator(settings.mcp.allocator)
    access = _http_access(args, settings, _served_url(host, port, args.transport))
    _check_port_free(host, port)
    _check_store(settings, watch_roots)
    runtime = Runtime(settings)
    runtime.acquire()  # held for the process: SSE sessions come and go, the store stays open
    watching = BackgroundWatch(runtime, watch_roots, args.watch_tenant or "")
    try:
        watching.start()
        serve_http(runtime, access, args.transport, host, port)
    finally:
        watching.stop()
        runtime.release()
        exit_after_models(runtime)
    return 0


def _served_url(host: str, port: int, transport: str) -> str:
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    return base + ("/sse" if transport == "sse" else "/mcp")


def _http_access(args: argparse.Namespace, settings: Settings, served_url: str) -> HttpAccess:
    """The tokens file, or with an OAuth issuer configured the JWT verifier (exclusive: the
    tokens file is then never read, so a revoked-by-deletion file cannot reopen access)."""
    from server.auth import TokenFile as Tokens

    if settings.mcp.oauth.enabled:
        from server.oauth import JwtVerifier, OAuthConfig

        if args.tokens_file:
            raise InvalidRequestError(
                "--tokens-file and OAuth exclude each other: drop one (OAuth takes JWTs only)"
            )
        if settings.mcp.tokens_file.exists():
            logger.warning("OAuth is on: the tokens file %s is not read", settings.mcp.tokens_file)
        return JwtVerifier(OAuthConfig.resolve(settings.mcp.oauth, served_url))
    tokens = Tokens(settings.mcp.tokens_file)
    if not tokens.records():
        logger.warning(
            "no tokens in %s: every request will get 401. Create one with "
            "`retrieval-mcp token add --tenant T`.",
            tokens.path,
        )
    return tokens


class BackgroundWatch:
    """``serve --watch``: a watcher started on a background thread (its imports and the
    catch-up never delay the protocol), fed by the runtime's indexer once the models are up,
    logging to stderr only (stdout is the protocol over stdio)."""

    def __init__(self, runtime: ServerRuntime, roots: list[WatchRoot], tenant: str) -> None:
        self.runtime = runtime
        self.roots = roots
        self.tenant = tenant
        self.watcher: Any = None
        self._lock = threading.Lock()
        self._stopped = False
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin watching in the background (nothing to do without roots). The watcher holds
        the runtime until :meth:`stop`: the store stays open for its last writes after the
        client's session has ended (over stdio, the session's end released the store first)."""
        if not self.roots:
            return
        self.runtime.acquire()
        self._held = True
        self._thread = threading.Thread(
            target=self._start, name="retrieval-mcp-watch-start", daemon=True
        )
        self._thread.start()

    def _start(self) -> None:
        # the runtime holds the store and models back this long so the handshake goes first
        if self._stop.wait(self.runtime.settings.mcp.load_delay_seconds):
            return
        from server.ingest.watch import Watcher

        try:
            watcher = Watcher(
                lambda: self.runtime.retrieval().indexer,
                self.roots,
                self.tenant,
                settings=self.runtime.settings,
            )
            with self._lock:
                if self._stopped:
                    return
                self.watcher = watcher
                watcher.start()
        except Exception as exc:  # the server keeps serving; the log says why nothing syncs
            logger.error("watching failed to start: %s", exc)
            return
        shown = ", ".join(f"{r.path} ({r.domain.value})" for r in watcher.roots)
        logger.info("watching %s for tenant %s", shown, self.tenant)

    def stop(self) -> None:
        """Stop the watcher (a sync in progress finishes first and its state is recorded),
        then let go of the runtime (the last holder closes the store). Idempotent."""
        self._stop.set()
        with self._lock:
            self._stopped = True
            watcher, self.watcher = self.watcher, None
            held, self._held = self._held, False
        if watcher is not None:
            watcher.stop()
        if held:
            self.runtime.release()


def _check_port_free(host: str, port: int) -> None:
    """A clear error now rather than a uvicorn traceback after the models started loading."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InvalidRequestError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port"
            ) from None


def serve_stdio(
    runtime: ServerRuntime, tenant: str, watching: BackgroundWatch | None = None
) -> None:
    """Serve one client over stdin/stdout for ``tenant`` (and keep ``watching`` in sync)."""
    import anyio

    from server.app import build_server
    from server.jobs import JobManager
    from server.stdio_guard import run_stdio

    jobs = JobManager(runtime)
    server = build_server(runtime, stdio_tenant=tenant, jobs=jobs)
    runtime.start()  # after the protocol code is imported: models load while clients connect
    if watching is not None:
        watching.start()
    logger.info("serving tenant %s over stdio", tenant)

    def release() -> None:  # what this process owns, as the finally blocks release it
        jobs.shutdown()
        if watching is not None:
            watching.stop()
        runtime.close()

    try:
        # a stop signal cannot unwind anyio.run (the SDK's stdin read blocks it): release, leave
        with ExitOnSignal(release):
            anyio.run(run_stdio, server)
    finally:
        # the client is gone: running jobs stop after their current files, never mid-batch
        jobs.shutdown()


def serve_http(
    runtime: ServerRuntime, access: HttpAccess, transport: Transport, host: str, port: int
) -> None:
    """Serve SSE or Streamable HTTP with bearer tokens (a tokens file, or OAuth JWTs) until
    interrupted."""
    import uvicorn

    from server.app import build_server, http_app
    from server.auth import TokenFile as Tokens
    from server.gc_freeze import freeze_when_loaded
    from server.http_stack import http_stack
    from server.jobs import JobManager
    from server.request_gate import RequestGate
    from server.retrieval.heap import trim_periodically

    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    jobs = JobManager(runtime)
    gate = RequestGate(runtime.settings.concurrency)
    if isinstance(access, Tokens):
        server = build_server(runtime, tokens=access, base_url=base, jobs=jobs, gate=gate)
        described = f"tokens: {access.path}"
    else:
        server = build_server(runtime, oauth=access, base_url=base, jobs=jobs, gate=gate)
        described = f"OAuth: issuer {access.config.issuer}, resource {access.config.resource}"
    app = http_app(server, transport, runtime.settings, host, gate)
    path = "/sse" if transport == "sse" else "/mcp"
    stack = http_stack(runtime.settings.concurrency)
    freeze_when_loaded(runtime)  # many clients: full GC passes skip the long-lived heap
    trim_periodically()  # many worker threads: freed heap goes back to the OS, not kept
    logger.info("serving %s on %s%s (%s; %s)", transport, base, path, described, stack.describe())
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level="warning",
        loop=stack.loop,
        http=stack.http,
    )
    try:
        uvicorn.Server(config).run()
    finally:
        jobs.shutdown()


def cmd_token(args: argparse.Namespace) -> int:
    """Manage the bearer tokens of the HTTP transports."""
    from server.auth import TokenFile as Tokens

    tokens = Tokens(Settings.from_cli(args).mcp.tokens_file)
    if args.token_command == "add":
        token, record = tokens.add(args.tenant, label=args.label or "", scope=args.scope)
        print(token)
        print(
            f"{record.scope} token {record.id} for tenant {record.tenant} saved (hash only) in "
            f"{tokens.path}; "
            "this is the only time the token is shown.",
            file=sys.stderr,
        )
    elif args.token_command == "list":
        records = tokens.records()
        if not records:
            print(f"no tokens in {tokens.path}", file=sys.stderr)
        for record in records.values():
            label = f"  {record.label}" if record.label else ""
            print(
                f"{record.id}  tenant={record.tenant}  scope={record.scope}  "
                f"created={record.created_at}{label}"
            )
    else:
        record = tokens.revoke(args.id)
        print(f"revoked token {record.id} (tenant {record.tenant})")
    return 0


def add_oauth_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--oauth-*`` flags (``serve``, and ``doctor`` to check the issuer)."""
    oauth = p.add_argument_group(
        "OAuth resource server (HTTP; instead of the tokens file, RETRIEVAL_MCP__OAUTH__*)"
    )
    oauth.add_argument("--oauth-issuer", metavar="URL", help="authorization server (iss)")
    oauth.add_argument(
        "--oauth-resource",
        metavar="URL",
        help="this server's public URL, the audience of its tokens (default http://HOST:PORT/mcp)",
    )
    oauth.add_argument(
        "--oauth-tenant-claim", metavar="NAME", help="claim naming the tenant (default tenant)"
    )
    oauth.add_argument(
        "--oauth-jwks-url", metavar="URL", help="the issuer's JWKS (default: from its metadata)"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve`` and ``token`` to the main parser."""
    p = sub.add_parser("serve", help="run the MCP server (stdio, streamable-http, or legacy sse)")
    p.add_argument(
        "--transport",
        choices=["stdio", "sse", "streamable-http"],
        default="stdio",
        help="stdio (one local client, default), streamable-http (remote clients, bearer "
        "tokens) or sse (legacy: " + SSE_DEPRECATED + "; kept for old clients)",
    )
    p.add_argument("--host", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default 8000)")
    p.add_argument("--tenant", help="stdio: the tenant this server serves")
    p.add_argument("--store", help="embedded store directory (default: RETRIEVAL_STORE_PATH)")
    p.add_argument("--reranker", help=RERANKER_HELP)
    p.add_argument("--tokens-file", help="tokens file (default: RETRIEVAL_MCP__TOKENS_FILE)")
    p.add_argument(
        "--allow-write",
        action="store_true",
        help="enable the write tools (index_path, remove_source, add_text, job_status, "
        "cancel_job); over HTTP only for write-scoped tokens (RETRIEVAL_MCP__ALLOW_WRITE)",
    )
    p.add_argument(
        "--root",
        action="append",
        metavar="PATH",
        help="a folder index_path may read (repeatable; adds to RETRIEVAL_MCP__ROOTS)",
    )
    p.add_argument(
        "--watch",
        action="append",
        metavar="PATH:DOMAIN",
        help="keep this folder indexed into DOMAIN while serving (repeatable; a watched folder "
        "is also a root for index_path)",
    )
    p.add_argument(
        "--watch-tenant", help="HTTP: the tenant the watched folders are indexed for (required)"
    )
    add_oauth_arguments(p)
    p.set_defaults(func=cmd_serve)

    _register_token(sub)


def _register_token(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    t = sub.add_parser("token", help="manage bearer tokens for the HTTP transports")
    tsub = t.add_subparsers(dest="token_command", required=True)
    add = tsub.add_parser("add", help="create a token for a tenant (printed once)")
    add.add_argument("--tenant", required=True)
    add.add_argument("--label", help="a note to recognise the token by (e.g. the client)")
    add.add_argument(
        "--scope",
        choices=["read", "write"],
        default="read",
        help="read: search and browse; write: also the write tools of a server started with "
        "--allow-write (default read)",
    )
    listing = tsub.add_parser("list", help="list token ids and tenants (never the tokens)")
    rev = tsub.add_parser("revoke", help="revoke a token by id")
    rev.add_argument("id", help="token id (from `token list`) or the token itself")
    for command in (add, listing, rev):
        command.add_argument(
            "--tokens-file", help="tokens file (default: RETRIEVAL_MCP__TOKENS_FILE)"
        )
    t.set_defaults(func=cmd_token)
