"""``retrieval-mcp doctor``: what is wrong with this installation, one actionable line each.

Checks, in order: versions; the embedding model (loads offline and embeds); the cross-encoder
(loads, or why not); the store's lock and socket (recorded owner alive? stale lock? socket
answering?); free disk against the reserve; every collection of the embedded store (opens,
counts against the recorded statistics, payloads and vectors readable); the tokens file's
permissions. Each check yields a :class:`Finding` with status ``ok``, ``warn`` (works, but worth
knowing) or ``problem`` (something fails until the user acts; ``action`` says how).
"""

from __future__ import annotations

import os
import platform
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import anyio

from server.errors import DamagedStoreError, RetrievalError, StoreError
from server.retrieval.disk_space import MIB, free_bytes
from server.retrieval.edge_store import collection_dense_dim, read_lock_info, store_path_problem
from server.retrieval.engine_errors import REPAIR_HINT
from server.retrieval.length_stats import TENANTS_KEY, tenant_lengths
from server.retrieval.owner_socket import socket_is_live, socket_paths_for
from server.retrieval.shared_store import SharedStore
from server.retrieval.store import HybridQuery
from server.settings import Settings

Status = Literal["ok", "warn", "problem"]
PACKAGES = ("qdrant-edge-py", "mcp", "sentence-transformers", "torch")
"""Distributions whose versions the report lists (beside Python's)."""


@dataclass(frozen=True)
class Finding:
    """One check's outcome; ``action`` is what the user does about a warn or problem."""

    check: str
    status: Status
    detail: str
    action: str = ""

    def line(self) -> str:
        """The finding as one line of text."""
        text = f"{self.status:<7} {self.check}: {self.detail}"
        return f"{text} -> {self.action}" if self.action else text


def check_versions() -> Iterator[Finding]:
    """Python and the main libraries (a missing one is a broken install)."""
    found = [f"python {platform.python_version()}"]
    for name in PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            yield Finding(
                "versions", "problem", f"{name} is not installed", "reinstall retrieval-mcp"
            )
    yield Finding("versions", "ok", ", ".join(found))


@contextmanager
def _offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the block, the user's value (or none) restored after: later
    checks must not report downloads as switched off when the user did not switch them off."""
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before


def check_embedder(settings: Settings) -> Iterator[Finding]:
    """The bi-encoder loads from local files (``HF_HUB_OFFLINE``) and embeds a query."""
    from server.retrieval.factory import load_embedder

    try:
        with _offline():  # "loads offline" is what the check promises
            embedder = load_embedder(settings)
            dim = len(embedder.embed_query("doctor"))
    except Exception as exc:
        reason = " ".join(str(exc).split())[:300]
        yield Finding(
            "embedding model",
            "problem",
            f"{settings.embedding_model} does not load offline ({type(exc).__name__}: {reason})",
            "set RETRIEVAL_EMBEDDING_MODEL to a local sentence-transformers directory, or "
            "reinstall retrieval-mcp (the MiniLM weights are bundled)",
        )
        return
    yield Finding("embedding model", "ok", f"{settings.embedding_model} loads offline ({dim} dims)")
    running = getattr(embedder, "backend", "torch")
    if running != settings.inference_backend:
        yield Finding(
            "inference backend",
            "warn",
            f"{settings.inference_backend} is configured but the embedder runs on {running} "
            "(the log line 'inference backend ... unavailable' says why)",
            "reinstall retrieval-mcp (onnx, onnxruntime and openvino are dependencies), or set "
            f"RETRIEVAL_INFERENCE_BACKEND={running} to silence this",
        )
    else:
        yield Finding("inference backend", "ok", f"the embedder runs on {running}")


def check_reranker(settings: Settings) -> Iterator[Finding]:
    """The cross-encoder: off by setting, loaded, not on this machine but downloadable (the
    doctor downloads nothing), or unavailable and why (a warning: search still works without
    it)."""
    from server.retrieval.factory import load_reranker
    from server.retrieval.reranker import hub_reachable, loadable_without_download

    reranker = load_reranker(settings)
    if reranker is None:
        yield Finding("cross-encoder", "ok", settings.reranker_off_note)
    elif not loadable_without_download(reranker.model_id) and hub_reachable():
        yield Finding(
            "cross-encoder",
            "warn",
            f"{reranker.model_id} is not on this machine; the server downloads it from the "
            "Hugging Face hub on first use (the hub answers)",
            "run one search to fetch it now, or " + settings.reranker_remedy,
        )
    elif reranker.load():
        yield Finding("cross-encoder", "ok", f"{reranker.model_id} loads")
    else:
        yield Finding(
            "cross-encoder",
            "warn",
            reranker.failure or f"{reranker.model_id} does not load",
            settings.reranker_remedy,
        )


def check_lock(root: Path) -> Iterator[Finding]:
    """The lock file's claims against the facts: holder alive, socket answering."""
    if store_path_problem(root) is not None:
        return  # no lock can be there; the store check says why
    info = read_lock_info(root)
    if info.pid is None:
        yield Finding("store lock", "ok", f"{root} is not in use by another process")
        return
    if not info.holder_alive():
        yield Finding(
            "store lock",
            "ok",
            f"left by pid {info.pid}, which ended without closing the store (killed); harmless: "
            "the next process to open the store takes it over",
        )
        return
    live = [p for p in socket_paths_for(root) if p.exists() and socket_is_live(p)]
    if live:
        yield Finding("store lock", "ok", f"held by {info.holder}, serving on {live[0]}")
    else:
        yield Finding(
            "store lock",
            "problem",
            f"held by {info.holder}, but no socket of this store answers, so other processes "
            "cannot use the store",
            f"restart that process (kill {info.pid}); an older retrieval-mcp does not share",
        )


def check_disk(root: Path, settings: Settings) -> Iterator[Finding]:
    """Free space on the store's file system against the reserve writes keep."""
    existing = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    free = free_bytes(existing)
    reserve = settings.disk_reserve_mb * MIB
    detail = f"{free / MIB:.0f} MiB free, reserve {settings.disk_reserve_mb} MiB"
    if free < reserve:
        yield Finding(
            "disk",
            "problem",
            f"{detail}: writes to the store are refused",
            "free space on that disk (or lower RETRIEVAL_DISK_RESERVE_MB)",
        )
    else:
        yield Finding("disk", "ok", detail)


def check_tokens_file(path: Path) -> Iterator[Finding]:
    """A tokens file readable by the group or others leaks the token hashes and tenants."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        yield Finding("tokens file", "ok", f"no tokens file at {path} (HTTP needs one)")
        return
    if mode & 0o077:
        yield Finding(
            "tokens file",
            "problem",
            f"{path} has mode {mode:04o}: readable or writable by other users",
            f"chmod 600 {path}",
        )
    else:
        yield Finding("tokens file", "ok", f"{path} (mode {mode:04o})")


def check_oauth(settings: Settings) -> Iterator[Finding]:
    """With OAuth configured: the issuer and JWKS URLs are usable and the issuer's signing
    keys can be fetched now (what the server does on the first token), within the configured
    HTTP timeout. Nothing is reported without OAuth."""
    oauth = settings.mcp.oauth
    if not oauth.enabled:
        return
    from server.oauth import OAuthConfig
    from server.oauth_keys import JwksCache, KeyLookupError

    issuer = str(oauth.issuer)
    try:
        # the resource URL is the server's business; a placeholder lets the issuer be checked
        OAuthConfig.resolve(oauth, oauth.resource or "http://127.0.0.1/mcp")
    except RetrievalError as exc:
        yield Finding("oauth issuer", "problem", str(exc), "fix --oauth-issuer / --oauth-jwks-url")
        return
    keys = JwksCache(issuer, jwks_url=oauth.jwks_url, timeout=oauth.http_timeout_seconds)
    try:
        anyio.run(keys.refresh_now)
    except KeyLookupError as exc:
        yield Finding(
            "oauth issuer",
            "problem",
            str(exc),
            "check that the issuer is reachable from this machine and its URL is right",
        )
        return
    yield Finding(
        "oauth issuer", "ok", f"{issuer}: {keys.key_count} signing key(s) at {keys.jwks_url}"
    )


def collections_of(root: Path) -> list[str]:
    """Names of the embedded store's collections (directories with an engine config)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "edge_config.json").is_file())


def check_collection(store: SharedStore, name: str) -> Finding:
    """Open one collection and read all of it: counts, every payload, a dense search."""
    meta = store.read_meta(name)
    points = {t: tenant_lengths(meta, t).points for t in meta.get(TENANTS_KEY) or {}}
    # an entry can hold 0 points (an ingest stopped before its first write, or every source
    # removed): that is no tenant a user would count
    tenants = sorted(t for t, n in points.items() if n > 0)
    recorded = sum(points.values())
    stored = store.count(name, None)
    scanned, offset = 0, None
    while True:
        page, offset = store.scroll(name, None, limit=512, offset=offset)
        scanned += len(page)
        if offset is None:
            break
    dim = collection_dense_dim(store.root, name) or 0
    if tenants and dim:  # a dense query reads vectors (an unreadable vector file fails here)
        probe = [1.0] + [0.0] * (dim - 1)
        store.query(name, HybridQuery(tenant=tenants[0], limit=5, candidates=20, dense=probe))
    if scanned != stored:
        return Finding(
            f"collection {name}",
            "problem",
            f"counts {stored} points but {scanned} are readable",
            f"run `retrieval-mcp doctor --repair`, then ingest the sources of {name} again",
        )
    if points and recorded != stored:
        return Finding(
            f"collection {name}",
            "warn",
            f"{stored} points, statistics record {recorded} (an interrupted write)",
            "none needed: the next ingest into it recounts",
        )
    return Finding(f"collection {name}", "ok", f"{stored} points, {len(tenants)} tenant(s)")


def check_store(settings: Settings, repair: bool = False) -> Iterator[Finding]:
    """Open the embedded store (as its owner or through it) and check each collection."""
    root = Path(settings.store_path).expanduser()
    problem = store_path_problem(root)
    if problem is not None:
        yield Finding("store", "problem", problem, "see the message")
        return
    if not root.exists():  # opening would create it: a check must not change anything
        yield Finding("store", "ok", f"no store at {root} yet (the first ingest creates it)")
        return
    try:
        store = SharedStore(root, settings.disk_reserve_mb)
    except RetrievalError as exc:
        yield Finding("store", "problem", str(exc), "see the message")
        return
    try:
        names = collections_of(root)
        yield Finding("store", "ok", f"{root}: {len(names)} collection(s)")
        for name in names:
            try:
                yield check_collection(store, name)
            except DamagedStoreError as exc:
                yield (
                    set_aside(store, name)
                    if repair
                    else Finding(
                        f"collection {name}",
                        "problem",
                        str(exc).removesuffix(f"; {REPAIR_HINT}"),
                        REPAIR_HINT,  # the action goes after "->", as on every problem line
                    )
                )
            except StoreError as exc:
                yield Finding(f"collection {name}", "problem", str(exc), "see the message")
    finally:
        store.close()


def set_aside(store: SharedStore, name: str) -> Finding:
    """``--repair``: move a damaged collection aside (only the store's holder may)."""
    local = store.local_store
    if local is None:
        return Finding(
            f"collection {name}",
            "problem",
            f"damaged, and pid {store.owner_pid} holds the store, so it cannot be repaired now",
            f"stop that process (kill {store.owner_pid}) and run `retrieval-mcp doctor --repair`",
        )
    target = local.set_aside(name)
    return Finding(
        f"collection {name}",
        "warn",
        f"was damaged; moved aside to {target}",
        f"ingest the sources of {name} again (delete {target} once they are back)",
    )


def to_json(findings: list[Finding]) -> dict[str, object]:
    """``{"healthy": bool, "findings": [{check, status, detail, action}, ...]}``."""
    return {
        "healthy": not any(f.status == "problem" for f in findings),
        "findings": [asdict(f) for f in findings],
    }
