"""One store and one set of models per server process, shared by every MCP session.

The models take seconds to load, longer than a client waits for ``initialize``; so the
runtime opens the store and loads the models on a background thread while the protocol
already answers, and a tool that needs them waits for them (only the first calls do).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server.errors import RetrievalError, StoreError
from server.settings import Settings

if TYPE_CHECKING:
    from server.retrieval.embedder import DenseEmbedder
    from server.retrieval.factory import Retrieval
    from server.retrieval.reranker import CrossEncoderReranker
    from server.retrieval.store import VectorStore

logger = logging.getLogger(__name__)
CLOSE_POLL_SECONDS = 0.25
"""How often a call waiting for the models checks whether the runtime is closing."""

_STORE_RETRY_SECONDS = 2.0


def _open_store(settings: Settings) -> VectorStore:
    from server.retrieval import factory

    return factory.open_store(settings)


@dataclass(frozen=True)
class ModelStatus:
    """What the models are doing, for index_stats and logs."""

    loaded: bool
    embedding_model: str
    embedding_dimension: int | None
    reranker_model: str | None
    reranker_available: bool
    reranker_note: str | None
    error: str | None


class ServerRuntime:
    """Store + embedder + reranker, opened once, reference-counted by the sessions using them.

    ``store`` / ``embedder`` may be handed in (tests, benchmarks); a store handed in is not
    closed by the runtime. Everything else is built from ``settings`` through the retrieval
    factory, so a store held by another process is handled the way the factory handles it.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: VectorStore | None = None,
        embedder: DenseEmbedder | None = None,
        reranker: CrossEncoderReranker | None = None,
        load_reranker: bool = True,
        store_opener: Callable[[Settings], VectorStore] | None = None,
    ) -> None:
        self.settings = settings
        self._store = store
        self._owns_store = store is None
        self._embedder = embedder
        self._reranker = reranker
        self._want_reranker = load_reranker and reranker is None and settings.reranker_enabled
        self._open_store = store_opener or _open_store
        self._store_error: str | None = None
        self._store_failed_at = 0.0
        self._model_error: str | None = None
        self._store_ready = threading.Event()
        self._models_ready = threading.Event()
        self._go = threading.Event()
        """Set when a tool call needs the store or models: the loader stops holding back."""
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._retrieval: Retrieval | None = None
        self._users = 0
        self._models_started = False
        self._closed = False
        self._closing = False
        self.started_at: float | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Begin opening the store and loading the models in the background (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return
            self._closed = self._closing = False
            self.started_at = time.perf_counter()
            self._thread = threading.Thread(
                target=self._load, name="retrieval-mcp-loader", daemon=True
            )
            self._thread.start()

    def acquire(self) -> None:
        """A session starts using the runtime (starts it on first use)."""
        with self._lock:
            self._users += 1
            self.start()

    def release(self) -> None:
        """A session is done; the last one out closes the store."""
        with self._lock:
            self._users = max(0, self._users - 1)
            last = self._users == 0
        if last:
            self.close()

    def close(self) -> None:
        """Close the store if this runtime opened it. Models still loading are left to finish
        on their daemon thread: a client that disconnects early need not wait for them."""
        with self._lock:
            self._closing = True  # a loader that has not begun the models leaves them
        self._go.set()
        if self._thread is not None:
            self._store_ready.wait(timeout=60)
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_store and self._store is not None:
                try:
                    self._store.close()
                except Exception:  # closing is best effort on shutdown
                    logger.exception("closing the store failed")
                self._store = None
            self._retrieval = None
            self._thread = None
            self._store_ready.clear()

    def wait_for_models(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a model load in progress to end; True when no
        load is running (any more).

        A process must not exit while the loader thread is inside a native inference runtime
        (OpenVINO, onnxruntime, torch): their threads abort the process with std::terminate
        (SIGABRT) when the interpreter shuts down under them. Waiting also leaves a first-use
        export complete in the cache for the next start.
        """
        with self._lock:
            loading = self._models_started
        return not loading or self._models_ready.wait(timeout)

    def _load(self) -> None:
        # Let the protocol handshake go first; a tool call that needs the store sets _go.
        self._go.wait(self.settings.mcp.load_delay_seconds)
        started = time.perf_counter()
        self._try_open_store()
        self._store_ready.set()
        with self._lock:
            # models outlive a close/start cycle: load them once; and not at all when the
            # runtime closed before they began (the client is gone, the process may be exiting)
            if self._models_started or self._closing:
                return
            self._models_started = True
        try:
            from server.retrieval import factory  # qdrant-client & torch: off the protocol path

            if self._embedder is None:
                self._embedder = factory.load_embedder(self.settings)
            if self._want_reranker:
                self._reranker = factory.load_reranker(self.settings)
                if self._reranker is not None:
                    self._reranker.load()  # logs once why reranking is off, if it is
        except Exception as exc:  # a model that cannot load must not take the server down
            self._model_error = str(exc) if isinstance(exc, RetrievalError) else repr(exc)
            logger.error("the embedding model could not be loaded: %s", self._model_error)
        finally:
            self._models_ready.set()
        logger.info("models ready after %.1fs", time.perf_counter() - started)

    def _try_open_store(self) -> None:
        with self._lock:
            if self._store is not None:
                return
            try:
                self._store = self._open_store(self.settings)
                self._store_error = None
                if self._closed:  # closed while opening: do not keep the store held
                    self._store.close()
                    self._store = None
            except RetrievalError as exc:
                self._store_error = str(exc)
                self._store_failed_at = time.monotonic()
                logger.error("the store is not available: %s", exc)
            except Exception as exc:  # unexpected store failures become a readable message
                self._store_error = f"the store could not be opened: {exc!r}"
                self._store_failed_at = time.monotonic()
                logger.exception("opening the store failed")

    # -- access --------------------------------------------------------------------------------

    def store(self) -> VectorStore:
        """The store (waits for the loader to open it); StoreError when it is unavailable."""
        self._wait(self._store_ready, "the store")
        with self._lock:
            retry_due = time.monotonic() - self._store_failed_at >= _STORE_RETRY_SECONDS
            if self._store is None and self._owns_store and retry_due:
                self._try_open_store()  # the holder may have gone away since
            if self._store is None:
                raise StoreError(self._store_error or "the store is closed")
            return self._store

    def embedder(self) -> DenseEmbedder:
        """The bi-encoder (waits while it loads); RetrievalError when it failed to load."""
        self._wait(self._models_ready, "the models")
        if self._embedder is None:
            raise RetrievalError(
                f"the embedding model is not available: {self._model_error or 'not loaded'}"
            )
        return self._embedder

    def retrieval(self) -> Retrieval:
        """The searcher and indexer over the shared store and models (waits for them)."""
        from server.retrieval.factory import assemble  # numpy: off the protocol path

        store = self.store()
        embedder = self.embedder()
        with self._lock:
            if self._retrieval is None or self._retrieval.store is not store:
                self._retrieval = assemble(self.settings, store, embedder, self._reranker)
            return self._retrieval

    def _wait(self, event: threading.Event, what: str) -> None:
        """Wait for ``event`` (``what`` ready) up to ``mcp.model_wait_seconds``; RetrievalError
        past that, or as soon as the runtime closes: a loader told to close leaves the models,
        so a call waiting for them would hold its thread, and the exiting process, for the
        whole wait (a client that died mid-call left its server up for 5 minutes)."""
        self._go.set()
        if self._thread is None and not event.is_set():
            raise RetrievalError("the server is shutting down")
        deadline = time.monotonic() + self.settings.mcp.model_wait_seconds
        while not event.wait(min(CLOSE_POLL_SECONDS, max(0.0, deadline - time.monotonic()))):
            if self._closing:
                raise RetrievalError("the server is shutting down")
            if time.monotonic() >= deadline:
                raise RetrievalError(
                    f"{what} did not become ready within "
                    f"{self.settings.mcp.model_wait_seconds:.0f}s"
                )

    def model_status(self) -> ModelStatus:
        """Current model state, without waiting."""
        loaded = self._models_ready.is_set()
        reranker = self._reranker
        if reranker is not None:
            note = reranker.unavailable_reason
            available = loaded and note is None
        elif not self.settings.reranker_enabled:
            note, available = self.settings.reranker_off_note, False
        else:
            note, available = (None if not loaded else "reranker not loaded"), False
        return ModelStatus(
            loaded=loaded,
            embedding_model=self.settings.embedding_model
            if self._embedder is None
            else self._embedder.model_id,
            embedding_dimension=self._embedder.dimension if self._embedder else None,
            # the configured model while it loads (None only when reranking is off)
            reranker_model=reranker.model_id if reranker else self.settings.reranker_model_id,
            reranker_available=available,
            reranker_note=note,
            error=self._model_error,
        )
