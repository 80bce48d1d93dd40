"""Export a local sentence-transformers model to ONNX once, into a cache keyed by its weights.

The export runs the model's own sentence-transformers modules (for a bi-encoder: Transformer,
Pooling, Normalize; for a cross-encoder: the classifier and its activation function) under
``torch.onnx.export`` with dynamic batch and sequence axes, so pooling over the attention mask
and the activation are the library's, not re-implemented here. The tokenizer the model uses
(the Hugging Face fast tokenizer's backend) is saved beside the graph, so loading the export
needs neither torch nor transformers.

Why not sentence-transformers' ``backend="onnx"|"openvino"``: both need optimum exporters;
optimum-onnx pins transformers<5 and optimum-intel 2.2 pins transformers<5.6 (we run 5.24), so
the supported path is blocked by a version conflict; ``torch.onnx.export`` is the next one.

Cache layout: ``<cache_root>/<kind>-<key>/{model.onnx, tokenizer.json, export.json}``, written
into a temporary sibling directory and renamed into place (a crash leaves no half export; two
processes exporting at once both succeed, one rename wins).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

ModelKind = Literal["sentence", "cross"]
"""``sentence``: a bi-encoder (one vector per text); ``cross``: a cross-encoder (one score per
(query, passage) pair)."""

EXPORT_FORMAT = 2
"""Bumped when the layout or the exported graph changes; part of the cache key.
2: attention traced in its eager form (see :data:`ATTENTION`)."""

ATTENTION = "eager"
"""The transformers attention implementation the export traces. The eager form (matmul, masked
add, softmax, matmul) is the pattern OpenVINO fuses into one attention kernel; the SDPA form
traces into extra IsNaN/Select/Transpose nodes around the softmax that it runs one by one
(a cross-encoder at depth 20 spent about a third of its time there). Both compute the same
function; the fidelity tests hold the export to torch's default."""

_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")
_KEY_PACKAGES = ("torch", "transformers", "sentence-transformers", "onnx")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OPSET = 17


@dataclass(frozen=True)
class ExportedModel:
    """A cached export: the ONNX graph, the tokenizer, and what the runtime needs to know.

    ``max_length``: tokens per text (pair) after truncation, the model's ``max_seq_length``.
    ``dimension``: vector size (sentence models) or number of scores per pair (cross models).
    ``inputs``: the graph's input names in order (``token_type_ids`` only when the model has it).
    """

    directory: Path
    kind: ModelKind
    max_length: int
    dimension: int
    inputs: tuple[str, ...]
    pad_token_id: int

    @property
    def graph(self) -> Path:
        return self.directory / "model.onnx"

    @property
    def tokenizer_file(self) -> Path:
        return self.directory / "tokenizer.json"


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def weights_digest(location: Path) -> str:
    """SHA-256 over the model directory's weight, config and tokenizer files (names + bytes).

    Raises OSError when the directory cannot be read.
    """
    digest = hashlib.sha256()
    for path in sorted(location.rglob("*")):
        if path.is_file() and path.suffix in _WEIGHT_SUFFIXES and "onnx" not in path.parts:
            digest.update(str(path.relative_to(location)).encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def cache_key(location: Path, kind: ModelKind) -> str:
    """Weights digest + export format + the versions of every library the export goes through.

    The backend is not part of the key: onnxruntime and OpenVINO read the same float32 graph
    (OpenVINO picks its precision when it compiles), and no quantized graph is written.
    """
    parts = [weights_digest(location), kind, str(EXPORT_FORMAT), f"opset{_OPSET}"]
    parts += [f"{name}={_package_version(name)}" for name in _KEY_PACKAGES]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def exported_model(location: Path, kind: ModelKind, cache_root: Path) -> ExportedModel:
    """The export of the model at ``location``, made (needs torch) on the first call.

    Raises OSError when the cache cannot be written and RuntimeError (or the exporter's own
    error) when the model cannot be exported; callers fall back to torch on any of them.
    """
    target = cache_root / f"{kind}-{cache_key(location, kind)}"
    if not (target / "export.json").is_file():
        _export_atomically(location, kind, target)
    return _read_export(target)


def _read_export(directory: Path) -> ExportedModel:
    meta = json.loads((directory / "export.json").read_text())
    return ExportedModel(
        directory=directory,
        kind=meta["kind"],
        max_length=int(meta["max_length"]),
        dimension=int(meta["dimension"]),
        inputs=tuple(meta["inputs"]),
        pad_token_id=int(meta["pad_token_id"]),
    )


def _export_atomically(location: Path, kind: ModelKind, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("exporting %s model %s to %s (once)", kind, location, target)
        _export(location, kind, staging)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "export.json").is_file():  # not another process winning the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _export(location: Path, kind: ModelKind, out: Path) -> None:
    import torch

    model, tokenizer, max_length = _load_torch_model(location, kind)
    sample = ["a short text", "a somewhat longer text, so that the batch is padded"]
    features = tokenizer(
        [(text, text) for text in sample] if kind == "cross" else sample,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    inputs = tuple(name for name in _INPUTS if name in features)
    wrapper = _graph_wrapper(model, kind, inputs)
    with torch.inference_mode():
        dimension = int(wrapper(*(features[name] for name in inputs)).shape[-1])
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "sequence"} for name in inputs}
    with warnings.catch_warnings():
        # Tracer warnings about shape checks: shapes are symbolic in the graph, and the tests
        # hold every batch size and length to the fidelity bound against torch.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(features[name] for name in inputs),
            str(out / "model.onnx"),
            input_names=list(inputs),
            output_names=["output"],
            dynamic_axes={**axes, "output": {0: "batch"}},
            opset_version=_OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript; handles BERT whole
        )
    tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    meta = {
        "kind": kind,
        "max_length": max_length,
        "dimension": dimension,
        "inputs": list(inputs),
        "pad_token_id": int(tokenizer.pad_token_id or 0),
        "source": str(location),
    }
    (out / "export.json").write_text(json.dumps(meta, indent=2))


@contextmanager
def quiet_weight_loading() -> Iterator[None]:
    """transformers' per-tensor "Loading weights" progress bar off while a model loads: on a
    server, stderr is the log, and a bar there is a burst of carriage returns, not a message."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _load_torch_model(location: Path, kind: ModelKind) -> tuple[Any, Any, int]:
    from sentence_transformers import CrossEncoder, SentenceTransformer

    model_class: Any = SentenceTransformer if kind == "sentence" else CrossEncoder
    with quiet_weight_loading():
        model = model_class(
            str(location), device="cpu", model_kwargs={"attn_implementation": ATTENTION}
        )
    return model, model.tokenizer, int(model.max_seq_length or 512)


def _graph_wrapper(model: Any, kind: ModelKind, inputs: tuple[str, ...]) -> Any:
    """A torch module taking positional tensors and returning the model's own output.

    Built inside a function so importing this module does not import torch.
    """
    import torch

    class GraphWrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            features = dict(zip(inputs, tensors, strict=True))
            if kind == "sentence":
                return self.model(features)["sentence_embedding"]
            scores = self.model(features)["scores"]
            if self.model.activation_fn is not None:
                scores = self.model.activation_fn(scores)
            return scores.reshape(scores.shape[0], -1)

    return GraphWrapper().eval()
