"""Cross-encoder reranking with sentence-transformers' CrossEncoder.

If the model cannot be loaded (offline, wrong id) the reranker says so once in the log and
reports ``available = False`` with the reason; searches then return fused results with
``rerank_applied = false`` instead of failing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from server.retrieval.exported_models import load_cross_model, local_model_dir, set_torch_threads
from server.retrieval.heap import release_free_heap
from server.retrieval.inference import InferenceBackend
from server.settings import default_model_cache_path

logger = logging.getLogger(__name__)


def hub_disabled() -> bool:
    """Whether downloads from the Hugging Face hub are switched off (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def loadable_without_download(model_id: str) -> bool:
    """Whether ``model_id`` is a local directory or has a snapshot in the local Hugging Face
    cache (its documented layout, ``models--{org}--{name}/snapshots``). Read at server start-up:
    only the cache root is imported, not the hub client (~0.3 s) that
    :func:`local_model_dir` resolves snapshots with."""
    path = Path(model_id).expanduser()
    if path.is_dir() or "/" not in model_id or model_id.startswith((".", "/", "~")):
        return path.is_dir()
    from huggingface_hub.constants import HF_HUB_CACHE

    snapshots = Path(HF_HUB_CACHE) / f"models--{model_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(snapshots.iterdir())


def _no_hub() -> str:
    """Why the hub cannot be used, for an error message."""
    return "downloads are off (HF_HUB_OFFLINE)" if hub_disabled() else "the hub is unreachable"


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connect (honours HF_HUB_OFFLINE/HF_ENDPOINT).

    Checked before a hub download so an offline machine fails in milliseconds instead of
    sitting through the hub client's retry back-off.
    """
    if hub_disabled():
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout):
            return True
    except OSError:
        return False


class CrossEncoderReranker:
    """Scores (query, passage) pairs; loaded lazily once per process.

    ``backend``, ``model_cache`` and ``threads`` as for DenseEmbedder: an exported graph on
    onnxruntime / OpenVINO, or sentence-transformers' CrossEncoder on torch (the fallback).
    ``remedy`` ends the note when the model cannot load: what to change, where the value was
    set (``Settings.reranker_remedy``).
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        device: str = "cpu",
        backend: InferenceBackend = "torch",
        model_cache: Path | None = None,
        threads: int = 0,
        remedy: str = "set RETRIEVAL_RERANKER_MODEL to a local cross-encoder directory, "
        "or to 'none' to silence this",
    ) -> None:
        self.model_id = model
        self.batch_size = batch_size
        self.device = device
        self.backend = backend if device == "cpu" else "torch"
        self.model_cache = model_cache or default_model_cache_path()
        self.threads = threads
        self.remedy = remedy
        self._model: Any = None
        self._error: str | None = None
        self.failure: str | None = None
        """Why the model did not load, without the remedy: ``reranker 'id' could not be loaded
        (ExcType: first line); serving hybrid results without reranking``."""
        self._lock = threading.Lock()

    def load(self) -> bool:
        """Load the model if not yet tried; True when it is usable."""
        with self._lock:
            if self._model is not None:
                return True
            if self._error is not None:
                return False
            try:
                self._model = self._load_model()
            except Exception as exc:  # offline hub, missing files, bad config...
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self.failure = (
                    f"reranker {self.model_id!r} could not be loaded ({type(exc).__name__}: "
                    f"{first_line[:200]}); serving hybrid results without reranking"
                )
                self._error = f"{self.failure}; {self.remedy}."
                logger.warning(self._error)
                return False
            logger.info("reranker %s loaded", self.model_id)
            return True

    def _load_model(self) -> Any:
        location = local_model_dir(self.model_id)
        if location.is_dir():  # a local directory, or the model's Hugging Face cache snapshot
            return load_cross_model(
                location, self.backend, self.model_cache, self.threads, self.device
            )
        if self.model_id.startswith((".", "/", "~")):  # a path, never a hub id
            # absolute: a server's working directory is its client's choice, not the user's
            raise OSError(f"no folder {str(location.absolute())!r}")
        if "/" in self.model_id and not hub_reachable():
            # local_model_dir already looked in the Hugging Face cache: fail before importing
            # sentence-transformers and torch, which costs seconds on every offline command
            raise OSError(f"not in the local Hugging Face cache and {_no_hub()}")
        set_torch_threads(self.threads)
        from sentence_transformers import CrossEncoder

        try:  # the Hugging Face cache first: no network round trip
            return CrossEncoder(self.model_id, device=self.device, local_files_only=True)
        except Exception:
            if not hub_reachable():
                raise OSError(f"not in the local Hugging Face cache and {_no_hub()}") from None
        return CrossEncoder(self.model_id, device=self.device)

    @property
    def available(self) -> bool:
        """True when the model is loaded (loads on first access)."""
        return self.load()

    @property
    def unavailable_reason(self) -> str | None:
        """Why reranking is off (None when it works or was not tried)."""
        return self._error

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Relevance score per passage (higher is better); requires ``available``."""
        if not passages:
            return []
        if not self.load():
            raise RuntimeError(self._error or "reranker unavailable")
        pairs = [(query, passage) for passage in passages]
        scores = self._model.predict(
            pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        release_free_heap()  # activations are freed now; keep the resident set from creeping
        return [float(s) for s in scores]
