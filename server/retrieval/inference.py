"""Run an exported model graph with onnxruntime or OpenVINO, and tokenise for it.

Neither runtime imports torch: a server whose models are already exported never loads it.
OpenVINO on CPU picks its inference precision itself: bfloat16 where the CPU computes it
natively (AMX / AVX-512 BF16), float32 elsewhere; both are held to the same fidelity bound
against torch float32 in the tests.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from server.retrieval.input_shapes import padded_size
from server.retrieval.length_batches import length_batches
from server.retrieval.model_export import ExportedModel

InferenceBackend = Literal["torch", "onnx", "openvino"]
"""``torch``: sentence-transformers on PyTorch (the reference, and the fallback).
``onnx``: the ONNX export on onnxruntime. ``openvino``: the same export on OpenVINO."""

BACKENDS: tuple[InferenceBackend, ...] = ("torch", "onnx", "openvino")

TextInput = str | tuple[str, str]

OPENVINO_CONFIG: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
"""OpenVINO CPU compile properties (``INFERENCE_NUM_THREADS`` is added from ``threads``).

LATENCY: one stream, since each call is one synchronous request (a query, a rerank, an ingest
batch). Pinning off: pinned to a core another process keeps busy, the inference thread waited
for that core instead of moving; measured under load (2 cores, load average 7-15) pinning made
a depth-20 rerank 0.63x torch instead of 0.39x."""


def runtime_missing(backend: InferenceBackend) -> str | None:
    """Why ``backend`` cannot run here (its package is not importable), or None."""
    module = {"onnx": "onnxruntime", "openvino": "openvino", "torch": "torch"}[backend]
    try:
        __import__(module)
    except ImportError as exc:
        return f"{module} is not installed ({exc})"
    return None


class GraphSession:
    """One exported graph loaded into a runtime; ``run`` is safe from several threads.

    ``threads``: intra-op CPU threads (0 leaves the runtime's default, one per core).
    """

    def __init__(self, export: ExportedModel, backend: InferenceBackend, threads: int) -> None:
        self.export = export
        self.backend = backend
        self.requests: InferRequestPool | None = None
        """OpenVINO's infer requests (None for onnxruntime, whose session is shared)."""
        self._compiled: Any = None
        if backend == "onnx":
            self._run = self._onnxruntime(export, threads)
        elif backend == "openvino":
            self._compiled, self.requests = self._openvino(export, threads)
            self._run = self.requests.infer
        else:
            raise ValueError(f"no exported-graph runtime for backend {backend!r}")

    def run(self, features: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """Graph output for one padded batch: shape (batch, dimension), float32."""
        return np.asarray(self._run(features), dtype=np.float32)

    def properties(self) -> dict[str, Any]:
        """OpenVINO's own values of the properties compiled with (:data:`OPENVINO_CONFIG`,
        threads) and the precision it chose; empty for onnxruntime."""
        if self._compiled is None:
            return {}
        names = [*OPENVINO_CONFIG, "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT"]
        return {name: self._compiled.get_property(name) for name in names}

    @staticmethod
    def _onnxruntime(export: ExportedModel, threads: int) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(export.graph), options, providers=["CPUExecutionProvider"]
        )
        return lambda features: session.run(None, features)[0]

    @staticmethod
    def _openvino(export: ExportedModel, threads: int) -> tuple[Any, InferRequestPool]:
        import openvino

        config = dict(OPENVINO_CONFIG)
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = openvino.Core().compile_model(str(export.graph), "CPU", config)
        return compiled, InferRequestPool(compiled.create_infer_request)


class InferRequestPool:
    """OpenVINO infer requests shared by every calling thread, as many as have run at once.

    An infer request serves one call at a time and keeps working memory for the shapes it
    ran. One per thread (as before) meant a new request, and its memory, for every worker
    thread that happened to embed a batch: with 32 worker threads under load, memory kept
    growing for minutes. A request returns to the pool after its call, so the pool holds no
    more requests than calls ran together (one, for micro-batched queries).
    """

    def __init__(self, create: Callable[[], Any]) -> None:
        self._create = create
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.created = 0
        """Requests made so far (the most calls that ran at once)."""

    def infer(self, features: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """The graph's first output for one batch, copied out of the request."""
        try:
            request = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                self.created += 1
            request = self._create()
        try:
            return np.array(request.infer(features)[0], dtype=np.float32)
        finally:
            self._idle.put(request)


class GraphTokenizer:
    """The model's own fast tokenizer (saved with the export), truncating at its window.

    Encodes texts or (query, passage) pairs exactly as transformers would with
    ``truncation=True, max_length=export.max_length`` (longest-first for pairs).
    """

    def __init__(self, export: ExportedModel) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(export.tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(export.max_length)
        self._inputs = export.inputs
        self._pad = export.pad_token_id
        self._window = export.max_length

    def encode(self, inputs: Sequence[TextInput]) -> list[Any]:
        """One ``tokenizers.Encoding`` per input, unpadded (the same encodings either way)."""
        if len(inputs) == 1:
            # ``encode_batch`` lets go of the GIL, and a search's BM25 search waiting to run
            # meanwhile (run_ahead.py) would take it before the model starts, so the query would
            # wait for BM25 instead of BM25 running while the model does; ``encode`` holds it
            one = inputs[0]
            return [
                self._tokenizer.encode(*one)
                if isinstance(one, tuple)
                else self._tokenizer.encode(one)
            ]
        return list(self._tokenizer.encode_batch(list(inputs)))

    def pad(self, encodings: Sequence[Any]) -> dict[str, NDArray[np.int64]]:
        """Right-pad a batch to one of a bounded set of shapes: int64 arrays (rows, tokens),
        rows and tokens the :func:`~server.retrieval.input_shapes.padded_size` of the batch's
        size and of its longest member (within the model window). Rows past the batch repeat
        its first row; the caller keeps the first ``len(encodings)`` outputs."""
        rows = padded_size(len(encodings))
        tokens = padded_size(max(len(encoding.ids) for encoding in encodings), self._window)
        ids = np.full((rows, tokens), self._pad, dtype=np.int64)
        mask = np.zeros((rows, tokens), dtype=np.int64)
        types = np.zeros((rows, tokens), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            ids[row, :size] = encoding.ids
            mask[row, :size] = 1
            types[row, :size] = encoding.type_ids
        for array in (ids, mask, types):
            array[len(encodings) :] = array[0]
        every = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: every[name] for name in self._inputs}


def run_batched(
    session: GraphSession,
    tokenizer: GraphTokenizer,
    inputs: Sequence[TextInput],
    batch_size: int,
) -> NDArray[np.float32]:
    """Outputs for ``inputs`` in their order, shape (len(inputs), dimension).

    Inputs are batched by token length (longest first, at most ``batch_size`` a batch, cut
    where the padded work is least: :func:`~server.retrieval.length_batches.length_batches`);
    padding does not change an output, since the graph masks padded positions (and padded rows
    are dropped).
    """
    encodings = tokenizer.encode(inputs)
    lengths = [len(encoding.ids) for encoding in encodings]
    result = np.zeros((len(inputs), session.export.dimension), dtype=np.float32)
    for rows in length_batches(lengths, batch_size, session.export.max_length):
        outputs = session.run(tokenizer.pad([encodings[row] for row in rows]))
        result[rows] = outputs[: len(rows)]
    return result
