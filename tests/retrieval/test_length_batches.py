"""Batches cut by padded work (server/retrieval/length_batches.py).

Invariants: the batches hold every input exactly once, each a run of the inputs sorted longest
first, none above the batch size; no other cutting of that order costs less (checked against
every cutting of small inputs, and against the fixed cuts used before); and how the inputs are
cut changes no score (the graph masks padding): a depth-20 rerank on the exported
cross-encoder gives the scores of each pair run alone.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.retrieval.inference import GraphSession, GraphTokenizer, run_batched
from server.retrieval.length_batches import batch_cost, length_batches
from server.retrieval.model_export import exported_model

lengths_strategy = st.lists(st.integers(min_value=1, max_value=512), min_size=0, max_size=40)


def total_cost(lengths: list[int], batches: list[list[int]], limit: int) -> float:
    return sum(batch_cost(len(b), max(lengths[i] for i in b), limit) for b in batches)


def sorted_order(lengths: list[int]) -> list[int]:
    return sorted(range(len(lengths)), key=lambda index: -lengths[index])


@given(lengths_strategy, st.integers(min_value=1, max_value=32))
def test_batches_are_runs_of_the_sorted_order_holding_each_input_once(
    lengths: list[int], batch_size: int
) -> None:
    batches = length_batches(lengths, batch_size, 512)
    assert [index for batch in batches for index in batch] == sorted_order(lengths)
    assert all(1 <= len(batch) <= batch_size for batch in batches)


@given(lengths_strategy, st.integers(min_value=1, max_value=32))
def test_no_fixed_size_cutting_costs_less(lengths: list[int], batch_size: int) -> None:
    order = sorted_order(lengths)
    cost = total_cost(lengths, length_batches(lengths, batch_size, 512), 512)
    for size in range(1, batch_size + 1):
        fixed = [order[s : s + size] for s in range(0, len(order), size)]
        assert cost <= total_cost(lengths, fixed, 512) + 1e-6


@given(
    st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=9),
    st.integers(min_value=1, max_value=9),
)
def test_no_cutting_at_all_costs_less(lengths: list[int], batch_size: int) -> None:
    order = sorted_order(lengths)
    best = float("inf")
    for cuts in itertools.product((False, True), repeat=len(order) - 1):
        bounds = [0, *(i + 1 for i, cut in enumerate(cuts) if cut), len(order)]
        batches = [order[a:b] for a, b in itertools.pairwise(bounds)]
        if all(len(batch) <= batch_size for batch in batches):
            best = min(best, total_cost(lengths, batches, 512))
    assert total_cost(lengths, length_batches(lengths, batch_size, 512), 512) <= best + 1e-6


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch size of 0"):
        length_batches([3, 4], 0)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_a_depth_20_rerank_cut_by_cost_scores_each_pair_as_alone(
    backend: str, tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    export = exported_model(tiny_cross_encoder, "cross", tmp_path / "cache")
    session = GraphSession(export, backend, threads=1)  # type: ignore[arg-type]
    tokenizer = GraphTokenizer(export)
    words = [
        "the",
        "retention",
        "clause",
        "requires",
        "records",
        "to",
        "be",
        "kept",
        "for",
        "seven",
        "years",
    ]
    passages = [" ".join(words[: 1 + (7 * i) % len(words)] * (1 + i % 5)) for i in range(20)]
    pairs = [("how long are records kept", passage) for passage in passages]
    lengths = [len(encoding.ids) for encoding in tokenizer.encode(pairs)]
    batches = length_batches(lengths, 8, export.max_length)
    assert len(set(lengths)) > 5 and any(len(batch) not in (8, 4) for batch in batches)
    alone = run_batched(session, tokenizer, pairs, batch_size=1)
    cut = run_batched(session, tokenizer, pairs, batch_size=8)
    assert np.abs(cut - alone).max() < 1e-3
