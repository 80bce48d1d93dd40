"""Every query shape run once when a long-running server's models are up
(server/shape_warmup.py).

Invariant: once the warm-up has run, no batch of at most ``max_batch`` queries of at most
:data:`QUERY_TOKENS` tokens reaches the graph at a shape it has not run before (OpenVINO keeps
memory per shape run and grows its working memory to the largest, so a new shape minutes into
a soak meant RSS above the first minute's peak); the warm-up runs each such shape exactly
once, leaves the query cache alone, waits for the models without starting their load, and
does nothing on a backend whose memory does not grow per shape.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.input_shapes import padded_size
from server.runtime import ServerRuntime
from server.settings import ConcurrencySettings
from server.shape_warmup import QUERY_TOKENS, query_shapes, warm_query_shapes, warm_when_loaded
from tests.mcp_support import server_settings


@given(
    max_rows=st.integers(min_value=1, max_value=64),
    window=st.sampled_from([48, 128, 256, 512]),
    data=st.data(),
)
@settings(max_examples=200, deadline=None)
def test_every_query_batch_pads_to_a_warmed_shape(
    max_rows: int, window: int, data: st.DataObject
) -> None:
    shapes = query_shapes(max_rows, window)
    rows = data.draw(st.integers(min_value=1, max_value=max_rows))
    longest = data.draw(st.integers(min_value=2, max_value=min(QUERY_TOKENS, window)))
    assert (padded_size(rows), padded_size(longest, window)) in shapes
    assert len(set(shapes)) == len(shapes)  # each shape once
    series = 2 * math.log2(max_rows) + 1  # the series is logarithmic in its bound
    assert len(shapes) <= series * (2 * math.log2(QUERY_TOKENS) + 1)
    areas = [r * t for r, t in shapes]
    assert areas == sorted(areas, reverse=True)  # largest first: working memory grows once
    assert all(t <= window for _, t in shapes)


def test_a_batch_of_no_queries_cannot_be_warmed() -> None:
    with pytest.raises(ValueError):
        query_shapes(0, 256)


def test_torch_is_not_warmed(embedder: DenseEmbedder) -> None:
    assert embedder.backend == "torch"
    assert warm_query_shapes(embedder, 8) == 0


@pytest.fixture(scope="module")
def openvino_embedder(tmp_path_factory: pytest.TempPathFactory) -> DenseEmbedder:
    cache: Path = tmp_path_factory.mktemp("model-cache")
    return DenseEmbedder("bundled", backend="openvino", model_cache=cache)


def _record_shapes(embedder: DenseEmbedder) -> list[tuple[int, ...]]:
    """The shapes of every call the embedder's graph runs from now on, in order."""
    session = embedder._model.session
    shapes: list[tuple[int, ...]] = []
    run = session._run

    def recording(features: dict[str, Any]) -> Any:
        shapes.append(features["input_ids"].shape)
        return run(features)

    session._run = recording
    return shapes


@pytest.mark.slow
def test_after_the_warm_up_no_query_batch_meets_a_new_shape(
    openvino_embedder: DenseEmbedder,
) -> None:
    embedder = openvino_embedder
    assert embedder.backend == "openvino"
    before = embedder.embed_documents(["notice period of the licence"])
    cached = len(embedder.cache)
    shapes = _record_shapes(embedder)
    count = warm_query_shapes(embedder, 12)
    warmed = query_shapes(12, embedder.max_tokens)
    assert count == len(warmed) == len(shapes) and set(shapes) == set(warmed)  # each once
    assert len(embedder.cache) == cached
    words = ["retention", "clause", "notice", "period", "licence", "tenant", "index", "q3"]
    rng = random.Random(11)
    for _ in range(60):  # batches of 1-12 queries, up to ~60 tokens
        size = rng.randint(1, 12)
        batch = [" ".join(rng.choices(words, k=rng.randint(1, 30))) for _ in range(size)]
        embedder.embed_queries(batch)
    assert set(shapes) == set(warmed)  # nothing new reached the graph
    after = embedder.embed_documents(["notice period of the licence"])
    assert float((before * after).sum()) >= 0.999  # warming changes no vector


@pytest.mark.slow
def test_the_server_warms_once_the_models_load_without_starting_the_load(
    openvino_embedder: DenseEmbedder, tmp_path: Path
) -> None:
    store = EdgeStore(tmp_path / "store")
    settings_ = server_settings(store.root, concurrency=ConcurrencySettings(max_batch=4))
    runtime = ServerRuntime(settings_, store=store, embedder=openvino_embedder)
    shapes = _record_shapes(openvino_embedder)
    try:
        thread = warm_when_loaded(runtime, poll_seconds=0.05)
        thread.join(timeout=0.3)
        assert thread.is_alive() and not runtime.model_status().loaded and shapes == []
        runtime.acquire()
        runtime.embedder()  # the models are loaded (handed over)
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert sorted(set(shapes)) == sorted(query_shapes(4, openvino_embedder.max_tokens))
        vectors = openvino_embedder.embed_queries(["retention clause"])
        assert np.isclose(np.linalg.norm(vectors[0]), 1.0)  # serves on as before
    finally:
        runtime.release()
        store.close()
