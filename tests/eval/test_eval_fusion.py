"""The sweep's fusion replay: hand-computed values, and the store's own fusion reproduced."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from retrieval_eval.fusion import (
    FusionCheck,
    dbsf_scores,
    distribution_normalised,
    fuse,
    rrf_scores,
)
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.sparse import SparseVector
from server.retrieval.store import HybridQuery, StoredPoint, point_id
from server.settings import FusionSettings

DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.5)]
SPARSE = [("c", 12.0), ("d", 3.0)]


def test_weighted_rrf_by_hand() -> None:
    # k=1, dense weight 1, sparse weight 5: position p scores w / (p + 1)
    scores = rrf_scores(DENSE, SPARSE, 1, (1.0, 5.0))
    assert scores["a"] == pytest.approx(1.0)
    assert scores["b"] == pytest.approx(0.5)
    assert scores["c"] == pytest.approx(1 / 3 + 5.0)
    assert scores["d"] == pytest.approx(2.5)
    # k=60, equal weights: 1 / (p + 60)
    assert rrf_scores(DENSE, SPARSE, 60, (1.0, 1.0))["c"] == pytest.approx(1 / 62 + 1 / 60)
    assert fuse(DENSE, SPARSE, FusionSettings(method="rrf", rrf_k=1, sparse_weight=5.0)) == [
        "c",
        "d",
        "a",
        "b",
    ]


def test_dbsf_by_hand() -> None:
    # dense: mean 0.7333, sample sd 0.2082 -> (s - (m - 3 sd)) / (6 sd)
    mean = (0.9 + 0.8 + 0.5) / 3
    sd = math.sqrt(((0.9 - mean) ** 2 + (0.8 - mean) ** 2 + (0.5 - mean) ** 2) / 2)
    expected = [(s - (mean - 3 * sd)) / (6 * sd) for s in (0.9, 0.8, 0.5)]
    assert distribution_normalised(DENSE) == pytest.approx(expected)
    assert distribution_normalised([("x", 2.0)]) == [0.5]
    assert distribution_normalised([("x", 2.0), ("y", 2.0)]) == [0.5, 0.5]
    scores = dbsf_scores(DENSE, SPARSE)
    sparse_norm = distribution_normalised(SPARSE)
    assert scores["c"] == pytest.approx(expected[2] + sparse_norm[0])
    assert scores["d"] == pytest.approx(sparse_norm[1])


def test_fusion_check_counts() -> None:
    check = FusionCheck(depth=2)
    check.add(["a", "b", "c"], ["a", "b", "x"], 1.0, 1.0)
    check.add(["a", "b"], ["b", "a"], 0.5, 0.25)
    check.add(["a", "c"], ["a", "b"], 0.0, 1.0)
    data = check.as_json()
    assert (data["queries"], data["same_order"], data["same_set"]) == (3, 1, 2)
    assert data["mean_abs_ndcg@10_diff"] == pytest.approx((0 + 0.25 + 1.0) / 3, abs=1e-4)


def _store(tmp_path: Path) -> EdgeStore:
    rng = random.Random(7)
    store = EdgeStore(tmp_path / "edge")
    store.ensure_collection("fusion", 16, BASE_PAYLOAD_INDEXES)
    points = []
    for i in range(120):
        payload = {"tenant": "t", "doc_id": f"d{i}", "source": f"s{i}", "chunk_index": 0}
        terms = sorted(rng.sample(range(40), 4))
        points.append(
            StoredPoint(
                id=point_id("t", "docs", f"s{i}", 0),
                dense=[rng.gauss(0, 1) for _ in range(16)],
                sparse=SparseVector(terms, [rng.uniform(0.2, 2.0) for _ in terms]),
                payload=payload,
            )
        )
    store.upsert("fusion", points)
    store.finish_writes("fusion")
    return store


def _tie_groups(ids: list[str], scores: dict[str, float]) -> list[frozenset[str]]:
    """The ranking as groups of equal score: Qdrant orders exact RRF ties arbitrarily."""
    groups: list[tuple[float, set[str]]] = []
    for point in ids:
        if groups and math.isclose(groups[-1][0], scores[point], rel_tol=1e-6):
            groups[-1][1].add(point)
        else:
            groups.append((scores[point], {point}))
    return [frozenset(g) for _, g in groups[:-1]]  # the cut may split the last group


@pytest.mark.parametrize(
    "fusion",
    [
        FusionSettings(method="dbsf"),
        FusionSettings(method="dbsf_zero_fill"),
        FusionSettings(method="rrf", rrf_k=1, dense_weight=1.0, sparse_weight=5.0),
        FusionSettings(method="rrf", rrf_k=10, dense_weight=3.0, sparse_weight=1.0),
    ],
    ids=["dbsf", "dbsf-zero-fill", "rrf-k1-1:5", "rrf-k10-3:1"],
)
def test_replay_reproduces_the_store(tmp_path: Path, fusion: FusionSettings) -> None:
    """The replay gives the store's own final ranking and scores (exact RRF ties aside)."""
    store = _store(tmp_path)
    rng = random.Random(11)
    short = 0
    try:
        for i in range(10):
            terms = sorted(rng.sample(range(40), 3 if i % 2 else 1))  # 1 term: ~12 matches
            request = HybridQuery(
                tenant="t",
                limit=20,
                candidates=30,
                dense=[rng.gauss(0, 1) for _ in range(16)],
                sparse=SparseVector(terms, [1.0] * len(terms)),
                fusion=fusion,
            )
            response = store.query("fusion", request)
            dense = [(p.id, p.score) for p in response.dense]
            sparse = [(p.id, p.score) for p in response.sparse]
            assert len(dense) == 30 and sparse
            short += len(sparse) < len(dense)
            replayed = fuse(dense, sparse, fusion)[:20]
            scores = (
                dbsf_scores(dense, sparse, zero_fill=fusion.method == "dbsf_zero_fill")
                if fusion.method != "rrf"
                else rrf_scores(
                    dense, sparse, fusion.rrf_k, (fusion.dense_weight, fusion.sparse_weight)
                )
            )
            stored = [p.id for p in response.final]
            assert [p.score for p in response.final] == pytest.approx(
                [scores[i] for i in replayed], rel=1e-5
            )
            assert _tie_groups(replayed, scores) == _tie_groups(stored, scores)
        assert short >= 3  # BM25 lists shorter than the dense list: what zero fill changes
    finally:
        store.close()
