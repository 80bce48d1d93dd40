"""Run an exported model graph with onnxruntime or OpenVINO, and tokenise for it.

Neither runtime imports torch: a server whose models are already exported never loads it.
OpenVINO on CPU picks its inference precision itself: bfloat16 where the CPU computes it
natively (AMX / AVX-512 BF16), float32 elsewhere; both are held to the same fidelity bound
against torch float32 in the tests.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

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

PAD_MULTIPLE: dict[InferenceBackend, int] = {"torch": 1, "onnx": 1, "openvino": 16}
"""Batches are padded to a multiple of this many tokens (capped at the model's window).

OpenVINO prepares kernels for every new input shape (a first query of a new length cost about
twice the CPU time of a repeat); rounding lengths up to 16 leaves a handful of shapes for short
queries, all prepared after the first few. onnxruntime has no per-shape cost, so no padding."""


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
        self.length_multiple = PAD_MULTIPLE[backend]
        self._compiled: Any = None
        if backend == "onnx":
            self._run = self._onnxruntime(export, threads)
        elif backend == "openvino":
            self._compiled, self._run = self._openvino(export, threads)
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
    def _openvino(export: ExportedModel, threads: int) -> tuple[Any, Any]:
        import openvino

        config = dict(OPENVINO_CONFIG)
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = openvino.Core().compile_model(str(export.graph), "CPU", config)
        local = threading.local()  # an infer request serves one call at a time

        def run(features: dict[str, NDArray[np.int64]]) -> Any:
            request = getattr(local, "request", None)
            if request is None:
                request = local.request = compiled.create_infer_request()
            return request.infer(features)[0]

        return compiled, run


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
        """One ``tokenizers.Encoding`` per input, unpadded."""
        return list(self._tokenizer.encode_batch(list(inputs)))

    def pad(self, encodings: Sequence[Any], multiple: int = 1) -> dict[str, NDArray[np.int64]]:
        """Right-pad a batch to its longest member rounded up to ``multiple`` tokens (never past
        the model's window): int64 arrays (batch, width). Padded positions are masked out."""
        longest = max(len(encoding.ids) for encoding in encodings)
        longest = max(longest, min(-(-longest // multiple) * multiple, self._window))
        ids = np.full((len(encodings), longest), self._pad, dtype=np.int64)
        mask = np.zeros((len(encodings), longest), dtype=np.int64)
        types = np.zeros((len(encodings), longest), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            ids[row, :size] = encoding.ids
            mask[row, :size] = 1
            types[row, :size] = encoding.type_ids
        every = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: every[name] for name in self._inputs}


def run_batched(
    session: GraphSession,
    tokenizer: GraphTokenizer,
    inputs: Sequence[TextInput],
    batch_size: int,
) -> NDArray[np.float32]:
    """Outputs for ``inputs`` in their order, shape (len(inputs), dimension).

    Inputs are batched by token length (longest first) so a batch pads little; padding does
    not change an output, since the graph masks padded positions. Widths are rounded up to the
    session's ``length_multiple``.
    """
    encodings = tokenizer.encode(inputs)
    order = np.argsort([-len(encoding.ids) for encoding in encodings], kind="stable")
    result = np.zeros((len(inputs), session.export.dimension), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = [encodings[row] for row in rows]
        result[rows] = session.run(tokenizer.pad(batch, session.length_multiple))
    return result
