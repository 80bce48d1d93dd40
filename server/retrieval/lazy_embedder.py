"""A DenseEmbedder that loads its weights on first use.

``retrieval-mcp ingest`` over unchanged files embeds nothing, and chunking only counts tokens:
loading the transformer for that costs seconds and hundreds of MB. This embedder answers
``max_tokens`` from the model's ``sentence_bert_config.json`` and counts tokens with the
tokenizer alone (``transformers.AutoTokenizer``, the class sentence-transformers itself uses)
when the model is a local directory; anything else (embedding, ``dimension``, the query cache,
a model id that is not a local directory) loads the full model once, as DenseEmbedder does.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from server.errors import RetrievalError
from server.retrieval.embedder import DenseEmbedder, resolve_model_location
from server.retrieval.inference import InferenceBackend

_LOCAL_SETTINGS = "sentence_bert_config.json"
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


class LazyEmbedder(DenseEmbedder):
    """Same interface and results as DenseEmbedder; the weights load on the first embed."""

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        cache_size: int = 2048,
        device: str = "cpu",
        backend: InferenceBackend = "torch",
        model_cache: Path | None = None,
        threads: int = 0,
    ) -> None:
        # DenseEmbedder.__init__ (which loads the weights) runs later, in _load_model.
        self.model_id = model
        self.batch_size = batch_size
        self._cache_size = cache_size
        self._device = device
        self._backend: InferenceBackend = backend
        self._model_cache = model_cache
        self._threads = threads
        self._location = Path(resolve_model_location(model))
        self._load_guard = threading.Lock()
        self._model_loaded = False

    @property
    def model_loaded(self) -> bool:
        """True once the weights are in memory."""
        return self._model_loaded

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes DenseEmbedder.__init__ has not set yet.
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "max_tokens" and (self._location / _LOCAL_SETTINGS).is_file():
            self.max_tokens = self._configured_max_tokens()
        elif name == "_tokenizer" and self._has_local_tokenizer():
            self._tokenizer = self._load_tokenizer()
        else:
            self._load_model()
        return object.__getattribute__(self, name)

    def _load_model(self) -> None:
        with self._load_guard:
            if not self._model_loaded:
                DenseEmbedder.__init__(
                    self,
                    self.model_id,
                    batch_size=self.batch_size,
                    cache_size=self._cache_size,
                    device=self._device,
                    backend=self._backend,
                    model_cache=self._model_cache,
                    threads=self._threads,
                )
                self._model_loaded = True

    def _configured_max_tokens(self) -> int:
        try:
            config = json.loads((self._location / _LOCAL_SETTINGS).read_text())
            return int(config.get("max_seq_length") or 512)
        except (OSError, ValueError, TypeError) as exc:
            raise RetrievalError(
                f"cannot read {_LOCAL_SETTINGS} of embedding model {self.model_id!r}: {exc}"
            ) from None

    def _has_local_tokenizer(self) -> bool:
        return any((self._location / name).is_file() for name in _TOKENIZER_FILES)

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(str(self._location))
        except Exception as exc:  # the library raises many kinds (OSError, ValueError)
            raise RetrievalError(
                f"cannot load the tokenizer of embedding model {self.model_id!r} from "
                f"{str(self._location)!r}: {exc}"
            ) from exc
