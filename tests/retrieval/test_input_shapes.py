"""Bounded input shapes for the exported graphs (server/retrieval/input_shapes.py).

Invariants: however many batches of whatever sizes and lengths a process embeds, the shapes
that reach the runtime come from a fixed, small set (the runtime keeps memory per shape it has
run, so unbounded shapes meant memory growing for minutes under load), and padding to them
changes no vector; however many threads embed, OpenVINO holds no more infer requests (each
with its working memory) than calls ran at once.
"""

from __future__ import annotations

import math
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.retrieval.embedder import DenseEmbedder
from server.retrieval.input_shapes import GEOMETRIC_UP_TO, STEP, padded_size


@given(st.integers(min_value=1, max_value=5_000))
def test_padded_size_is_the_next_member_of_the_series(size: int) -> None:
    padded = padded_size(size)
    assert size <= padded < 1.5 * size or padded == size
    assert padded_size(padded) == padded  # the series is closed: padding twice is padding once
    power = 1 << (padded.bit_length() - 1)
    if padded <= GEOMETRIC_UP_TO:
        assert padded in (power, 3 * power // 2)  # a power of two or 1.5 times one
    else:
        assert padded % STEP == 0 and padded - size < STEP
    assert all(padded_size(m) != m for m in range(size, padded))  # none smaller would do


@given(st.integers(min_value=1, max_value=512), st.integers(min_value=1, max_value=512))
def test_padded_size_never_passes_the_window(size: int, window: int) -> None:
    if size > window:
        with pytest.raises(ValueError):
            padded_size(size, window)
        return
    assert size <= padded_size(size, window) <= window


def test_sizes_share_few_shapes() -> None:
    for n in (16, 64):  # query batches and query lengths: a logarithmic number
        assert len({padded_size(s) for s in range(1, n + 1)}) <= 2 * math.log2(n) + 1
    for window in (256, 512):  # passages: one per 16 tokens beyond 64
        sizes = {padded_size(s, window) for s in range(1, window + 1)}
        assert len(sizes) <= 12 + (window - GEOMETRIC_UP_TO) // STEP
    with pytest.raises(ValueError):
        padded_size(0)


@pytest.fixture(scope="module")
def openvino_embedder(tmp_path_factory: pytest.TempPathFactory) -> DenseEmbedder:
    cache: Path = tmp_path_factory.mktemp("model-cache")
    return DenseEmbedder("bundled", backend="openvino", model_cache=cache)


@pytest.mark.slow
def test_many_distinct_batches_reach_the_graph_in_few_shapes(
    openvino_embedder: DenseEmbedder,
) -> None:
    exported = openvino_embedder
    assert exported.backend == "openvino"
    session = exported._model.session
    shapes: set[tuple[int, ...]] = set()
    run = session._run

    def recording(features: dict[str, Any]) -> Any:
        shapes.add(features["input_ids"].shape)
        return run(features)

    session._run = recording
    words = [
        "retention",
        "clause",
        "notice",
        "period",
        "licence",
        "warranty",
        "search",
        "index",
        "tenant",
    ]
    rng = random.Random(7)
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 60))) for _ in range(1200)]
    exported.batch_size = 16
    start = 0
    batches: list[list[str]] = []
    while start < len(texts):  # batches of every size 1-16, texts of 3 to ~100 tokens
        size = rng.randint(1, 16)
        batches.append(texts[start : start + size])
        start += size
    batched = np.vstack([exported.embed_documents(batch) for batch in batches])
    encode = exported._model._graph_tokenizer.encode
    unpadded = {(len(b), max(len(e.ids) for e in encode(b))) for b in batches}
    rows = {padded_size(n) for n in range(1, 17)}
    tokens = {padded_size(n) for n in range(1, 129)}
    assert {r for r, _ in shapes} <= rows and {t for _, t in shapes} <= tokens
    # Batches cut by padded work (length_batches) split some batches of 1-16, so more of the
    # bounded set is met than with fixed cuts; still well under the distinct batches.
    assert len(shapes) * 2 < len(unpadded)
    one_by_one = np.vstack([exported.embed_documents([text]) for text in texts[:40]])
    cosine = (batched[:40] * one_by_one).sum(axis=1)
    assert cosine.min() >= 0.999  # padding (tokens and rows) changes no vector


@pytest.mark.slow
def test_threads_that_come_and_go_share_one_infer_request(
    openvino_embedder: DenseEmbedder,
) -> None:
    pool = openvino_embedder._model.session.requests
    assert pool is not None
    openvino_embedder.embed_documents(["warm"])
    made = pool.created
    for i in range(20):  # worker threads one after another, as a server's pool turns over
        worker = threading.Thread(target=openvino_embedder.embed_documents, args=([f"t {i}"],))
        worker.start()
        worker.join()
    assert pool.created == made == 1
    vectors = openvino_embedder.embed_documents(["retention clause", "notice period"])
    assert vectors.shape == (2, openvino_embedder.dimension)
