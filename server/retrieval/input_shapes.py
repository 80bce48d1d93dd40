"""A bounded set of input shapes for the exported graphs.

OpenVINO's CPU plugin keeps the kernels it prepared and their working memory per input shape
it has run (a runtime cache of thousands of entries), and memory allocated per shape is not
given back. A server that micro-batches queries runs a new (rows, tokens) shape for almost
every batch, so its memory climbed for minutes as that cache filled (a 5-minute soak at 16
clients grew by 100 MB, levelling off only in minutes 4-5). Padding each batch up to the next
size of a short series bounds the shapes to a few dozen, met within the first seconds of
load; it costs less than half as many rows or tokens again (15% on average over sizes 1-64,
6% over 65-256), and does not change an output (padded tokens are masked; padded rows are
dropped).
"""

from __future__ import annotations

GEOMETRIC_UP_TO = 64
"""Sizes up to this follow the geometric series; above it, every multiple of :data:`STEP`."""
STEP = 16
"""Above :data:`GEOMETRIC_UP_TO` (passages at ingest, near the model window), padding to a
multiple of 16 costs at most a quarter more tokens (6% on average over 65-256), where the
geometric series would cost up to half; the shapes stay bounded by the window."""


def padded_size(size: int, limit: int | None = None) -> int:
    """The smallest of 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64 (powers of two and 1.5 times
    them), then 80, 96, 112, ... (multiples of :data:`STEP`), that is at least ``size``, capped
    at ``limit`` (a model's token window) when given.

    Raises ValueError for a size below 1 or above ``limit``.
    """
    if size < 1:
        raise ValueError(f"a batch dimension of {size} cannot be padded")
    if limit is not None and size > limit:
        raise ValueError(f"{size} is beyond the limit {limit}")
    if size > GEOMETRIC_UP_TO:
        padded = -(-size // STEP) * STEP
    else:
        power = 1 << (size - 1).bit_length()  # the power of two at or above size
        three_halves = 3 * power // 4  # the series member between power / 2 and power
        padded = three_halves if size <= three_halves and power >= 4 else power
    return padded if limit is None else min(padded, limit)
