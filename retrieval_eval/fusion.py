"""Qdrant's two fusions, replayed over the stage lists one store query returned.

A sweep scores dozens of fusion settings per query; asking the store for each would repeat the
same neighbour searches. The store reports the dense and sparse lists it fused
(``QueryResponse.dense`` / ``.sparse``, and ``final`` is exactly Qdrant's fusion of them, a
store contract test checks it), so the sweep fetches the lists once per query and candidate
depth and fuses them here for every setting. The sweep compares this replay with the store's
own ``final`` list on every query (``FusionCheck``) and reports any disagreement.

Both follow Qdrant (``lib/segment/src/common/score_fusion.rs`` and its RRF):

* weighted RRF: a point at 0-based position ``p`` of a stage with weight ``w`` scores
  ``1 / ((p + 1) / w + k - 1)``, summed over the stages that list it;
* DBSF: each stage's scores are mapped by ``(s - (m - 3 sd)) / (6 sd)`` with the mean ``m``
  and the sample standard deviation ``sd`` of that stage's list (a one-point list scores 0.5,
  a constant list 0.5 each), then summed; a point missing from a stage gets nothing from it.

and the project's ``dbsf_zero_fill`` (``server/retrieval/score_fusion.py``): DBSF with a BM25
list shorter than the dense list normalised as if it went on with zeros to the dense length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from server.settings import FusionSettings

Stage = Sequence[tuple[str, float]]
"""(point id, score) pairs of one stage, best first, as the store returned them."""


def rrf_scores(
    dense: Stage, sparse: Stage, k: int, weights: tuple[float, float]
) -> dict[str, float]:
    """Qdrant's weighted RRF score of every point in either stage."""
    scores: dict[str, float] = {}
    for stage, weight in ((dense, weights[0]), (sparse, weights[1])):
        for position, (point, _) in enumerate(stage):
            scores[point] = scores.get(point, 0.0) + 1.0 / ((position + 1) / weight + k - 1)
    return scores


def distribution_normalised(stage: Stage, zeros: int = 0) -> list[float]:
    """A stage's scores mapped so that mean -/+ 3 sample standard deviations become 0 and 1
    (mean and deviation of the scores followed by ``zeros`` zeros)."""
    values = [score for _, score in stage]
    if not values:
        return []
    padded = values + [0.0] * zeros
    if len(padded) < 2:
        return [0.5] * len(values)
    mean = sum(padded) / len(padded)
    sd = math.sqrt(sum((v - mean) ** 2 for v in padded) / (len(padded) - 1))
    low, high = mean - 3 * sd, mean + 3 * sd
    if high == low:
        return [0.5] * len(values)
    return [(v - low) / (high - low) for v in values]


def dbsf_scores(dense: Stage, sparse: Stage, zero_fill: bool = False) -> dict[str, float]:
    """Qdrant's DBSF score of every point in either stage (``zero_fill``: ``dbsf_zero_fill``)."""
    scores: dict[str, float] = {}
    fill = max(0, len(dense) - len(sparse)) if zero_fill else 0
    for stage, zeros in ((dense, 0), (sparse, fill)):
        for (point, _), value in zip(stage, distribution_normalised(stage, zeros), strict=True):
            scores[point] = scores.get(point, 0.0) + value
    return scores


def fuse(dense: Stage, sparse: Stage, fusion: FusionSettings) -> list[str]:
    """Point ids of both stages, best fused score first (ties: smaller id first)."""
    if fusion.method != "rrf":
        scores = dbsf_scores(dense, sparse, zero_fill=fusion.method == "dbsf_zero_fill")
    else:
        weights = (fusion.dense_weight, fusion.sparse_weight)
        scores = rrf_scores(dense, sparse, fusion.rrf_k, weights)
    return sorted(scores, key=lambda point: (-scores[point], point))


@dataclass
class FusionCheck:
    """How closely the replayed fusion matched the store's own, over the checked queries.

    Differences come from ties: two points with equal fused scores, or equal stage scores
    (identical texts have identical vectors) that the store's second round trip lists in
    another order than its first, which shifts their RRF positions. ``ndcg_*`` are nDCG@10 of
    the documents of each top-``depth`` point list, so the effect on the metric is visible.
    """

    depth: int = 10
    queries: int = 0
    same_order: int = 0
    same_set: int = 0
    ndcg_replayed: float = 0.0
    ndcg_stored: float = 0.0
    ndcg_abs_diff: float = 0.0

    def add(
        self,
        replayed: Sequence[str],
        stored: Sequence[str],
        ndcg_replayed: float = 0.0,
        ndcg_stored: float = 0.0,
    ) -> None:
        """Record one query's replayed and stored final point lists (and their nDCG@10)."""
        top, theirs = list(replayed[: self.depth]), list(stored[: self.depth])
        self.queries += 1
        self.same_order += top == theirs
        self.same_set += set(top) == set(theirs)
        self.ndcg_replayed += ndcg_replayed
        self.ndcg_stored += ndcg_stored
        self.ndcg_abs_diff += abs(ndcg_replayed - ndcg_stored)

    def as_json(self) -> dict[str, float | int]:
        """Counts and mean nDCG@10 for the report."""
        n = max(1, self.queries)
        return {
            "depth": self.depth,
            "queries": self.queries,
            "same_order": self.same_order,
            "same_set": self.same_set,
            "mean_ndcg@10_replayed": round(self.ndcg_replayed / n, 4),
            "mean_ndcg@10_stored": round(self.ndcg_stored / n, 4),
            "mean_abs_ndcg@10_diff": round(self.ndcg_abs_diff / n, 4),
        }
