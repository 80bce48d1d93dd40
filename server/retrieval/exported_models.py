"""Bi-encoder and cross-encoder on an exported graph, behind sentence-transformers' own calls.

:func:`load_sentence_model` and :func:`load_cross_model` return an object with the methods the
embedder and the reranker call (``encode`` / ``predict``, ``tokenizer``, ...): the export on
onnxruntime or OpenVINO when the backend asks for one and it can be made, else the
sentence-transformers model on torch (said once in the log, on stderr).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from server.retrieval.inference import (
    GraphSession,
    GraphTokenizer,
    InferenceBackend,
    run_batched,
    runtime_missing,
)
from server.retrieval.model_export import ModelKind, exported_model, quiet_weight_loading

logger = logging.getLogger(__name__)


class DeferredTokenizer:
    """The transformers tokenizer of a model directory, loaded on first use.

    Chunking counts tokens and reads offsets with it; a server that only embeds queries never
    touches it, so never imports transformers (nor, through it, torch).
    """

    def __init__(self, location: Path) -> None:
        self._location = location
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(self._location))
            return self._tokenizer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._loaded()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._loaded(), name)


class ExportedSentenceEncoder:
    """A bi-encoder on an exported graph: ``encode`` as sentence-transformers calls it.

    Vectors are the graph's output (the model's own pooling and normalisation), L2-normalised
    again when asked (idempotent for normalising models), float32 of shape (n, dimension).
    """

    def __init__(self, location: Path, session: GraphSession) -> None:
        self.session = session
        self.backend = session.backend
        self.max_seq_length = session.export.max_length
        self.tokenizer = DeferredTokenizer(location)
        self._graph_tokenizer = GraphTokenizer(session.export)

    def get_embedding_dimension(self) -> int:
        return self.session.export.dimension

    def encode(
        self,
        sentences: Sequence[str],
        *,
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        **_ignored: Any,
    ) -> NDArray[np.float32]:
        vectors = run_batched(self.session, self._graph_tokenizer, sentences, batch_size)
        if normalize_embeddings:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)  # as torch.nn.functional.normalize
        return vectors


class ExportedCrossEncoder:
    """A cross-encoder on an exported graph: ``predict`` as sentence-transformers calls it.

    Scores are the model's activation (sigmoid for one label, as CrossEncoder does) of its
    logits, shape (n,) for one label, (n, labels) otherwise.
    """

    def __init__(self, session: GraphSession) -> None:
        self.session = session
        self.backend = session.backend
        self.max_length = session.export.max_length
        self._graph_tokenizer = GraphTokenizer(session.export)

    def predict(
        self, pairs: Sequence[tuple[str, str]], *, batch_size: int = 32, **_ignored: Any
    ) -> NDArray[np.float32]:
        scores = run_batched(self.session, self._graph_tokenizer, pairs, batch_size)
        return scores[:, 0] if scores.shape[1] == 1 else scores


def set_torch_threads(threads: int) -> None:
    """Set torch's intra-op thread count for this process (0 leaves torch's default)."""
    if threads > 0:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def local_model_dir(location: str) -> Path:
    """``location`` as a directory: itself, or its snapshot in the local Hugging Face cache.

    A hub id not in the cache comes back unchanged (as a path that is not a directory); the
    exported backends then fall back to torch, which may download it.
    """
    path = Path(location).expanduser()
    if path.is_dir() or "/" not in location or location.startswith((".", "/", "~")):
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), bad id, no hub client
        return path


def export_session(
    location: Path,
    kind: ModelKind,
    backend: InferenceBackend,
    cache_root: Path,
    threads: int,
) -> GraphSession | None:
    """The exported model in its runtime, or None (with one warning) when torch must serve.

    None when ``backend`` is torch, when its runtime is not installed, when ``location`` is
    not a local model directory, or when the export fails for any reason.
    """
    if backend == "torch":
        return None
    problem = runtime_missing(backend)
    if problem is None and not location.is_dir():
        problem = f"{location} is not a local model directory"
    if problem is None:
        try:
            return GraphSession(exported_model(location, kind, cache_root), backend, threads)
        except Exception as exc:  # exporter and runtimes raise many kinds; torch still works
            first_line = (str(exc).strip().splitlines() or [""])[0][:200]
            problem = f"{type(exc).__name__}: {first_line}"
    logger.warning(
        "inference backend %s unavailable for %s (%s); using torch", backend, location, problem
    )
    return None


def load_sentence_model(
    location: Path, backend: InferenceBackend, cache_root: Path, threads: int, device: str
) -> Any:
    """An :class:`ExportedSentenceEncoder`, or a ``SentenceTransformer`` as the fallback."""
    session = export_session(location, "sentence", backend, cache_root, threads)
    if session is not None:
        return ExportedSentenceEncoder(location, session)
    set_torch_threads(threads)
    from sentence_transformers import SentenceTransformer

    with quiet_weight_loading():
        return SentenceTransformer(str(location), device=device)


def load_cross_model(
    location: Path, backend: InferenceBackend, cache_root: Path, threads: int, device: str
) -> Any:
    """An :class:`ExportedCrossEncoder`, or a ``CrossEncoder`` as the fallback."""
    session = export_session(location, "cross", backend, cache_root, threads)
    if session is not None:
        return ExportedCrossEncoder(session)
    set_torch_threads(threads)
    from sentence_transformers import CrossEncoder

    with quiet_weight_loading():
        return CrossEncoder(str(location), device=device)
