"""Cut inputs sorted by token length into the batches that cost the graph least to run.

A batch runs at one padded shape (:func:`~server.retrieval.input_shapes.padded_size` of its
row count and of its longest member), so every shorter member is computed at the longest
length, and rows past the batch are computed too. Cutting the sorted list every
``batch_size`` inputs (as before) left a rerank at depth 20 computing 15% more tokens than it
had (SciFact passages packed to the window, ms-marco-MiniLM-L-6 shape): a batch of 8 whose
lengths run from 267 down to 210 tokens runs all eight at 272. Here the cuts are chosen by
dynamic programming over the sorted lengths to minimise an estimate of the work: padded
tokens, weighted by the attention's share (which grows with the length), plus a fixed cost
per call. The batches are still contiguous runs of the sorted order, at most ``batch_size``
rows each, and still padded to the bounded shape series, so no new shape appears.
"""

from __future__ import annotations

from collections.abc import Sequence

from server.retrieval.input_shapes import padded_size

ATTENTION_TOKENS = 480
"""The length at which attention costs as much per token as the rest of a layer. Per token,
a BERT layer's dense work is constant and its attention grows with the length; measured with
OpenVINO on the ms-marco-MiniLM-L-6 shape (hidden 384, one thread), attention took 39% of a
batch of 8 x 304 tokens, so the two are equal near 480."""

CALL_TOKENS = 160
"""The fixed cost of one graph call, in token-equivalents at short lengths: measured with
OpenVINO on the same shape, one row of 304 tokens took 25 ms alone against 20 ms per row in a
batch of 4 (call overhead and the smaller matrices' lower efficiency)."""


def batch_cost(rows: int, longest: int, limit: int | None = None) -> float:
    """Estimated work of one call: the padded rows and tokens of a batch of ``rows`` inputs
    whose longest has ``longest`` tokens (within ``limit``), in token-equivalents."""
    tokens = padded_size(longest, limit)
    return padded_size(rows) * tokens * (1 + tokens / ATTENTION_TOKENS) + CALL_TOKENS


def length_batches(
    lengths: Sequence[int], batch_size: int, limit: int | None = None
) -> list[list[int]]:
    """Indices into ``lengths`` grouped into batches, longest inputs first.

    Each batch is a run of the inputs sorted by length (longest first, ties in input order)
    of at most ``batch_size`` inputs; together the batches hold every index once, and their
    total :func:`batch_cost` is the least any such cutting gives. ``lengths`` are token counts
    (at least 1, at most ``limit`` when given). Raises ValueError for a ``batch_size`` below 1.
    """
    if batch_size < 1:
        raise ValueError(f"a batch size of {batch_size} cannot hold an input")
    order = sorted(range(len(lengths)), key=lambda index: -lengths[index])
    count = len(order)
    # best[i]: least cost of the inputs order[i:]; cut[i]: where the first batch of it ends.
    best = [0.0] * (count + 1)
    cut = [count] * (count + 1)
    for start in range(count - 1, -1, -1):
        longest = lengths[order[start]]  # sorted: the batch's first member is its longest
        best[start] = float("inf")
        for end in range(start + 1, min(start + batch_size, count) + 1):
            cost = batch_cost(end - start, longest, limit) + best[end]
            if cost < best[start]:
                best[start], cut[start] = cost, end
    batches: list[list[int]] = []
    start = 0
    while start < count:
        batches.append(order[start : cut[start]])
        start = cut[start]
    return batches
