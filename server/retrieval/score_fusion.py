"""Qdrant's fusion of the dense and the sparse list, computed here, bit for bit.

The store reports both stage lists anyway; fusing them in the store meant sending the dense
stage (the blend of chunk and part cosines) and the BM25 search a second time inside a fusion
request, because Qdrant can only fuse lists computed within the same request. Fusing the two
reported lists here gives the same scores (Qdrant computes in ``f32``; so does this module, one
rounding per operation, in Qdrant's order) at a fraction of the cost:

* weighted RRF (``lib/segment/src/common/reciprocal_rank_fusion.rs``): a point at 0-based
  position ``p`` of a list with weight ``w`` scores ``1 / ((p + 1) / w + k - 1)``, summed over
  the lists, in list order;
* DBSF (``lib/segment/src/common/score_fusion.rs``): each list's scores normalised by its mean
  +- 3 sample standard deviations (Welford's one-pass mean and variance, in list order; one
  point scores 0.5; equal extremes score 0.5), summed over the lists; the weights are ignored.

One fusion is this project's, not Qdrant's: ``dbsf_zero_fill``, DBSF whose BM25 list, when it is
shorter than the dense list, is normalised as if it went on with zeros to the dense list's
length. A BM25 list shorter than the candidate depth is complete: every other candidate has
none of the query's terms, so its BM25 score is 0, not unknown. Qdrant's DBSF normalises such a
list by its own spread, so a word found in one chunk scores a fixed 0.5 (below most dense
scores: the chunk ranked 15th-46th), and one of a few matches scores like an average hit.
With the zeros counted, the only chunks holding the query's words stand out as they do.

Where Qdrant leaves the order of equal fused scores to a hash map, :func:`fuse` orders them by
point id, so the cut at ``limit`` is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from server.retrieval.store import ScoredPoint

F32 = np.float32
Scores = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Fusion:
    """How the stages are fused: ``rrf`` (weighted, constant ``rrf_k``), ``dbsf`` or
    ``dbsf_zero_fill`` (module docstring).

    ``weights`` are per stage (dense, sparse); DBSF has none and ignores them. From the
    request's ``FusionSettings``.
    """

    method: Literal["rrf", "dbsf", "dbsf_zero_fill"]
    rrf_k: int
    weights: tuple[float, float]


def rrf_scores(length: int, weight: float, k: int) -> Scores:
    """The RRF term of each position ``0 .. length - 1`` of a list of weight ``weight``
    (0 for a weight <= 0, as Qdrant)."""
    if weight <= 0:
        return np.zeros(length, dtype=F32)
    positions = np.arange(1, length + 1, dtype=F32)
    return F32(1.0) / (positions / F32(weight) + F32(k) - F32(1.0))  # type: ignore[no-any-return]


def dbsf_scores(scores: Sequence[float], zeros: int = 0) -> Scores:
    """``scores`` (one list, best first) normalised by their mean +- 3 standard deviations;
    with ``zeros``, the mean and deviation are those of the list followed by that many 0.0
    (only the listed scores are returned)."""
    n = len(scores)
    values = np.asarray(scores, dtype=F32)
    if n == 0:
        return values
    if n + zeros < 2:
        return np.full(n, 0.5, dtype=F32)
    mean, aggregate = F32(0.0), F32(0.0)
    for count, score in enumerate(values, start=1):  # sequential: every rounding as Qdrant's
        old_delta = score - mean
        mean = mean + old_delta / F32(count)
        aggregate = aggregate + old_delta * (score - mean)
    for count in range(n + 1, n + zeros + 1):
        old_delta = -mean
        mean = mean + old_delta / F32(count)
        aggregate = aggregate + old_delta * (F32(0.0) - mean)
    std = np.sqrt(aggregate / (F32(n + zeros) - F32(1.0)))
    low, high = mean - F32(3.0) * std, mean + F32(3.0) * std
    if low == high:
        return np.full(n, 0.5, dtype=F32)
    return (values - low) / (high - low)  # type: ignore[no-any-return]


def fuse(
    dense: Sequence[ScoredPoint], sparse: Sequence[ScoredPoint], fusion: Fusion, limit: int
) -> list[ScoredPoint]:
    """The top ``limit`` of the fusion of ``dense`` and ``sparse`` (each best first, as the
    store returned it, both from searches of one candidate depth), best first, equal scores by
    id; no payloads (fetched for the top)."""
    totals: dict[str, float] = {}
    summed: list[str] = []
    for points, weight in ((dense, fusion.weights[0]), (sparse, fusion.weights[1])):
        if fusion.method == "dbsf":
            terms = dbsf_scores([p.score for p in points])
        elif fusion.method == "dbsf_zero_fill":
            # the dense list is as long as the depth allows, so a shorter BM25 list is complete
            zeros = max(0, len(dense) - len(sparse)) if points is sparse else 0
            terms = dbsf_scores([p.score for p in points], zeros)
        else:
            terms = rrf_scores(len(points), weight, fusion.rrf_k)
        for point, term in zip(points, terms.tolist(), strict=True):
            total = totals.get(point.id)
            if total is None:
                totals[point.id] = term
            else:  # two f32 values: their f64 sum rounds to the f32 sum (below)
                totals[point.id] = total + term
                summed.append(point.id)
    if summed:
        rounded = np.asarray([totals[i] for i in summed], dtype=F32).tolist()
        totals.update(zip(summed, rounded, strict=True))
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [ScoredPoint(point_id, score) for point_id, score in ranked]
