"""Exported inference backends (onnxruntime, OpenVINO) against torch float32.

Invariants: an exported model computes the same function as the sentence-transformers model
it came from (per-text cosine >= 0.99 on every domain, short and long texts, any batch size,
so padding never changes a vector; a cross-encoder ranks pairs in the same order); the export
is made once per weights and library versions and reused; when it cannot be made, torch serves
and the log says why; a server whose models are exported never imports torch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval_eval.bench_test_models import build_test_cross_encoder
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import load_embedder, load_reranker
from server.retrieval.inference import GraphSession, GraphTokenizer, run_batched
from server.retrieval.input_shapes import padded_size
from server.retrieval.model_export import cache_key, exported_model
from server.retrieval.reranker import CrossEncoderReranker
from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "retrieval_samples"
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
EXPORTED = ("onnx", "openvino")
FIDELITY = 0.99


def fidelity_sample() -> list[str]:
    """A fixed sample of every domain: short and long texts (longer than the model window)."""
    texts: list[str] = []
    for domain in ("docs", "legal", "code"):
        files = sorted(p for p in (SAMPLES / domain / "corpus").rglob("*") if p.is_file())
        assert len(files) >= 3, f"the {domain} sample corpus is missing: {SAMPLES}"
        for path in files[:8]:
            text = path.read_text(errors="replace")
            paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 20]
            texts += paragraphs[:2]  # short: a heading, a sentence, a signature
            texts.append(text[:6000])  # long: truncated at the window
    if SCIFACT.is_file():
        with SCIFACT.open() as handle:
            docs = [json.loads(line) for _, line in zip(range(24), handle, strict=False)]
        texts += [doc["title"] for doc in docs[:6]] + [doc["text"] for doc in docs]
    return [*texts, "x", "what does the retention clause require?"]


@pytest.fixture(scope="module")
def graph_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> GraphTokenizer:
    """The tokenizer of an export whose window is 48 tokens."""
    model = build_test_cross_encoder(
        tmp_path_factory.mktemp("window-48"), layers=1, hidden=32, max_length=48
    )
    export = exported_model(model, "cross", tmp_path_factory.mktemp("window-48-cache"))
    assert export.max_length == 48
    return GraphTokenizer(export)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


@pytest.mark.slow
@pytest.mark.parametrize("backend", EXPORTED)
def test_exported_embedder_matches_torch_on_every_domain(
    backend: str, embedder: DenseEmbedder, exported_embedders: dict[str, DenseEmbedder]
) -> None:
    texts = fidelity_sample()
    exported = exported_embedders[backend]
    assert exported.backend == backend
    reference = np.vstack([embedder.embed_documents([text]) for text in texts])
    one_by_one = np.vstack([exported.embed_documents([text]) for text in texts])
    exported.batch_size = 32
    batched = exported.embed_documents(texts)
    assert cosines(one_by_one, reference).min() >= FIDELITY
    assert cosines(batched, reference).min() >= FIDELITY
    assert cosines(batched, one_by_one).min() >= 0.999  # padding does not change a vector
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert exported.dimension == embedder.dimension == 384
    assert exported.max_tokens == embedder.max_tokens
    for text in texts[:6]:
        assert exported.count_tokens(text) == embedder.count_tokens(text)
        assert exported.truncate(text, 64) == embedder.truncate(text, 64)


@pytest.mark.slow
def test_serving_from_the_export_never_imports_torch(
    exported_embedders: dict[str, DenseEmbedder], model_cache: Path
) -> None:
    script = (
        "import sys, pathlib\n"
        "from server.retrieval.embedder import DenseEmbedder\n"
        "e = DenseEmbedder('bundled', backend='openvino', model_cache=pathlib.Path(sys.argv[1]))\n"
        "assert len(e.embed_query('hello')) == 384 and e.backend == 'openvino'\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(model_cache)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def _rerankers(model: Path, cache: Path) -> dict[str, CrossEncoderReranker]:
    return {
        backend: CrossEncoderReranker(str(model), backend=backend, model_cache=cache)  # type: ignore[arg-type]
        for backend in ("torch", *EXPORTED)
    }


def test_tiny_cross_encoder_ranks_alike_under_every_backend(
    tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    rerankers = _rerankers(tiny_cross_encoder, tmp_path / "cache")
    query = "how is the cache size configured"
    passages = [text[:400] for text in fidelity_sample()[:30]] + ["", "cache size " * 300]
    reference = np.asarray(rerankers["torch"].score(query, passages))
    assert rerankers["torch"]._model.__class__.__name__ == "CrossEncoder"
    for backend in EXPORTED:
        scores = np.asarray(rerankers[backend].score(query, passages))
        assert rerankers[backend]._model.backend == backend
        assert np.abs(scores - reference).max() < 1e-2
        # Same order, except among scores torch itself cannot tell apart at bf16 precision.
        clear = np.abs(reference[:, None] - reference[None, :]) > 5e-3
        agree = np.sign(scores[:, None] - scores[None, :]) == np.sign(
            reference[:, None] - reference[None, :]
        )
        assert agree[clear].all()


def test_export_is_made_once_and_keyed_by_the_weights(
    tiny_cross_encoder: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    first = exported_model(tiny_cross_encoder, "cross", cache)
    assert "Loading weights" not in capfd.readouterr().err  # stderr is the server's log
    made = first.graph.stat().st_mtime_ns
    again = exported_model(tiny_cross_encoder, "cross", cache)
    assert again.directory == first.directory and again.graph.stat().st_mtime_ns == made
    assert [p.name for p in cache.iterdir()] == [first.directory.name]  # no staging left over
    changed = tmp_path / "changed"
    shutil.copytree(tiny_cross_encoder, changed)
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "classifier_dropout": 0.5}))
    assert cache_key(changed, "cross") != cache_key(tiny_cross_encoder, "cross")
    assert cache_key(tiny_cross_encoder, "sentence") != cache_key(tiny_cross_encoder, "cross")


@pytest.mark.slow
def test_factory_builds_both_models_on_the_configured_backend(
    tiny_cross_encoder: Path, model_cache: Path, exported_embedders: dict[str, DenseEmbedder]
) -> None:
    settings = Settings(
        inference_backend="onnx",
        model_cache_path=model_cache,
        reranker_model=str(tiny_cross_encoder),
    )
    embedder = load_embedder(settings)
    reranker = load_reranker(settings)
    assert embedder.backend == "onnx" and len(embedder.embed_query("a query")) == 384
    assert reranker is not None and len(reranker.score("a query", ["a passage"])) == 1
    assert reranker._model.backend == "onnx"


def test_backend_falls_back_to_torch_and_says_why(
    tiny_cross_encoder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    reranker = CrossEncoderReranker(
        str(tiny_cross_encoder), backend="openvino", model_cache=blocker / "cache"
    )
    with caplog.at_level(logging.WARNING):
        scores = reranker.score("query", ["one passage", "another passage"])
    assert len(scores) == 2 and reranker.available
    assert reranker._model.__class__.__name__ == "CrossEncoder"
    warnings = [r.getMessage() for r in caplog.records if "using torch" in r.getMessage()]
    assert len(warnings) == 1 and "openvino" in warnings[0]


def test_backend_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETRIEVAL_INFERENCE_BACKEND", raising=False)
    assert Settings().inference_backend == "openvino"
    monkeypatch.setenv("RETRIEVAL_INFERENCE_BACKEND", "onnx")
    assert Settings().inference_backend == "onnx"
    monkeypatch.setenv("RETRIEVAL_INFERENCE_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="inference_backend"):
        Settings()


def test_export_traces_eager_attention_which_openvino_fuses(
    tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    """The SDPA trace wraps the softmax in IsNaN/Select nodes that OpenVINO runs one by one;
    the eager trace is plain masked softmax attention, one Softmax per layer."""
    import onnx

    export = exported_model(tiny_cross_encoder, "cross", tmp_path / "cache")
    ops = [node.op_type for node in onnx.load(str(export.graph)).graph.node]
    assert "IsNaN" not in ops
    assert ops.count("Softmax") == 2  # the tiny model's two layers


def test_openvino_compiles_for_latency_unpinned_with_the_configured_threads(
    tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    export = exported_model(tiny_cross_encoder, "cross", tmp_path / "cache")
    properties = GraphSession(export, "openvino", threads=1).properties()
    assert str(properties["PERFORMANCE_HINT"]) == "LATENCY"
    assert properties["ENABLE_CPU_PINNING"] is False
    assert properties["INFERENCE_NUM_THREADS"] == 1
    assert GraphSession(export, "onnx", threads=1).properties() == {}


@given(lengths=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=6))
@settings(max_examples=25, deadline=None)
def test_padding_goes_to_a_bounded_shape_within_the_window_and_masks_the_rest(
    graph_tokenizer: GraphTokenizer, lengths: list[int]
) -> None:
    texts = [" ".join(["word"] * n) for n in lengths]
    encodings = graph_tokenizer.encode(texts)
    longest = max(len(encoding.ids) for encoding in encodings)
    batch = graph_tokenizer.pad(encodings)
    rows, width = batch["input_ids"].shape
    window = 48  # the fixture export's max_length
    assert width == padded_size(longest, window) and longest <= width <= window
    assert rows == padded_size(len(encodings))
    real = batch["attention_mask"][: len(encodings)].sum(axis=1).tolist()
    assert real == [len(e.ids) for e in encodings]


@pytest.mark.parametrize("backend", EXPORTED)
def test_how_a_batch_is_padded_changes_no_output(
    backend: str, tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    """Same scores whether each pair runs alone (its own padded shape) or in batches of 5
    padded to the longest pair's bounded shape, with extra rows."""
    export = exported_model(tiny_cross_encoder, "cross", tmp_path / "cache")
    session = GraphSession(export, backend, threads=1)  # type: ignore[arg-type]
    tokenizer = GraphTokenizer(export)
    pairs = [("a query", text[:300]) for text in fidelity_sample()[:12]]
    alone = run_batched(session, tokenizer, pairs, batch_size=1)
    padded = run_batched(session, tokenizer, pairs, batch_size=5)
    assert np.abs(padded - alone).max() < 1e-3


@given(
    texts=st.lists(st.text(min_size=0, max_size=120), min_size=1, max_size=4),
    pair=st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_one_input_encodes_as_it_does_in_a_batch(
    graph_tokenizer: GraphTokenizer, texts: list[str], pair: bool
) -> None:
    """A single input is tokenized with ``encode`` (which keeps the GIL, for run_ahead.py),
    a batch with ``encode_batch``: the same ids, type ids and truncation, texts or pairs."""
    inputs: list[str] | list[tuple[str, str]] = (
        [(text, text[::-1] * 3) for text in texts] if pair else texts
    )
    batch = graph_tokenizer.encode(inputs)  # type: ignore[arg-type]
    alone = [graph_tokenizer.encode([one])[0] for one in inputs]  # type: ignore[list-item]
    assert [(e.ids, e.type_ids) for e in alone] == [(e.ids, e.type_ids) for e in batch]
