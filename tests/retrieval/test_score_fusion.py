"""The fusion computed in the process against Qdrant's own, on a real Qdrant Edge shard.

The store used to fuse the stage lists itself; score_fusion.py now does it from the lists the
store reports. Invariant: for any lists and any fusion settings, the fused scores are Qdrant's,
bit for bit, and the ranking is Qdrant's up to the order of equal scores.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge as qe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval import edge_convert
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.score_fusion import Fusion, dbsf_scores, fuse, rrf_scores
from server.retrieval.sparse import SparseVector
from server.retrieval.store import (
    DENSE_VECTOR,
    SPARSE_VECTOR,
    ScoredPoint,
    StoredPoint,
    point_id,
)

DIM = 8
COLLECTION = "fusion"
POINTS = 60


def _vec(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIM)]


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[qe.EdgeShard]:
    """60 points with random vectors, each with 2-4 of 12 terms (so BM25 lists vary in length
    and score ties occur)."""
    rng = random.Random(5)
    store = EdgeStore(Path(tmp_path_factory.mktemp("fusion")) / "store")
    store.ensure_collection(COLLECTION, DIM, BASE_PAYLOAD_INDEXES)
    points = []
    for i in range(POINTS):
        terms = sorted(rng.sample(range(12), rng.randint(2, 4)))
        points.append(
            StoredPoint(
                id=point_id("t", "docs", f"s{i}", 0),
                dense=_vec(rng),
                sparse=SparseVector(terms, [rng.choice([0.5, 1.0, 2.0]) for _ in terms]),
                payload={"tenant": "t", "doc_id": f"d{i}", "source": f"s{i}", "chunk_index": 0},
            )
        )
    store.upsert(COLLECTION, points)
    store.finish_writes(COLLECTION)
    yield store.shard(COLLECTION)
    store.close()


def _searches(seed: int, depth: int) -> tuple[Any, Any]:
    rng = random.Random(seed)
    dense = qe.Prefetch(limit=depth, query=qe.Query.Nearest(_vec(rng), using=DENSE_VECTOR))
    terms = sorted(rng.sample(range(12), rng.randint(1, 3)))
    sparse_query = edge_convert.edge_sparse(SparseVector(terms, [1.0] * len(terms)))
    sparse = qe.Prefetch(limit=depth, query=qe.Query.Nearest(sparse_query, using=SPARSE_VECTOR))
    return dense, sparse


def _alone(shard: qe.EdgeShard, prefetch: Any) -> list[ScoredPoint]:
    [points] = shard.query_batch(
        qe.QueryBatchRequest(
            [qe.QueryRequest(limit=prefetch.limit, query=prefetch.query, with_payload=False)]
        )
    )
    return [ScoredPoint(str(p.id), float(p.score)) for p in points]


def _qdrant_fusion(shard: qe.EdgeShard, spec: Fusion, prefetches: list[Any], limit: int) -> Any:
    fusion = (
        qe.Fusion.Dbsf()
        if spec.method == "dbsf"
        else qe.Fusion.Rrf(k=spec.rrf_k, weights=list(spec.weights))
    )
    [points] = shard.query_batch(
        qe.QueryBatchRequest(
            [qe.QueryRequest(limit=limit, query=fusion, prefetches=prefetches, with_payload=False)]
        )
    )
    return [(str(p.id), float(p.score)) for p in points]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    depth=st.integers(1, 30),
    limit=st.integers(1, 40),
    method=st.sampled_from(["rrf", "dbsf"]),
    rrf_k=st.integers(1, 80),
    weights=st.tuples(st.floats(0.1, 10.0), st.floats(0.1, 10.0)),
)
def test_fused_scores_are_qdrants_bit_for_bit(
    shard: qe.EdgeShard,
    seed: int,
    depth: int,
    limit: int,
    method: str,
    rrf_k: int,
    weights: tuple[float, float],
) -> None:
    spec = Fusion(method, rrf_k, weights)  # type: ignore[arg-type]
    dense, sparse = _searches(seed, depth)
    expected = _qdrant_fusion(shard, spec, [dense, sparse], limit)
    got = [(p.id, p.score) for p in fuse(_alone(shard, dense), _alone(shard, sparse), spec, limit)]
    assert [score for _, score in got] == [score for _, score in expected]  # exact floats
    # the same points, except where equal scores straddle the cut (Qdrant's order among them
    # is a hash map's; ours is by id)
    cut = got[-1][1] if got else None
    assert {i for i, s in got if s != cut} == {i for i, s in expected if s != cut}
    assert got == sorted(got, key=lambda item: (-item[1], item[0]))


def test_an_empty_list_fuses_to_the_other_alone(shard: qe.EdgeShard) -> None:
    """A query whose terms no point has: Qdrant fuses the dense list with nothing, and so do we
    (the response then still carries fused scores, as before)."""
    dense, _ = _searches(1, 10)
    nothing = qe.Prefetch(
        limit=10,
        query=qe.Query.Nearest(qe.SparseVector([99], [1.0]), using=SPARSE_VECTOR),
    )
    for spec in (Fusion("dbsf", 2, (1.0, 1.0)), Fusion("rrf", 60, (2.0, 1.0))):
        expected = _qdrant_fusion(shard, spec, [dense, nothing], 10)
        got = fuse(_alone(shard, dense), [], spec, 10)
        assert [(p.id, p.score) for p in got] == expected


def test_dbsf_degenerate_lists_score_one_half() -> None:
    """As Qdrant: one point, or a list of equal scores (no spread), normalises to 0.5."""
    assert dbsf_scores([]).tolist() == []
    assert dbsf_scores([3.0]).tolist() == [0.5]
    assert dbsf_scores([2.0, 2.0, 2.0]).tolist() == [0.5, 0.5, 0.5]


def test_rrf_weight_stretches_positions() -> None:
    """Weighted RRF: position p of a list of weight w scores 1 / ((p + 1) / w + k - 1)."""
    assert rrf_scores(3, 2.0, 1).tolist() == pytest.approx([2.0, 1.0, 2 / 3])
    assert rrf_scores(2, 1.0, 60).tolist() == pytest.approx([1 / 60, 1 / 61])


# -- dbsf_zero_fill: this project's DBSF for complete BM25 lists ---------------------------------


def _points(prefix: str, scores: list[float]) -> list[ScoredPoint]:
    ranked = sorted(scores, reverse=True)
    return [ScoredPoint(f"{prefix}{i:03d}", s) for i, s in enumerate(ranked)]


FILL = Fusion("dbsf_zero_fill", 60, (1.0, 1.0))
PLAIN = Fusion("dbsf", 60, (1.0, 1.0))


@settings(max_examples=300, deadline=None)
@given(
    dense=st.lists(st.floats(-1.0, 1.0, width=32), min_size=1, max_size=120),
    sparse=st.floats(0.125, 50.0, width=32),
)
def test_the_only_chunk_holding_the_words_ranks_first(dense: list[float], sparse: float) -> None:
    """Invariant (field case: `pickle`, found in one chunk, ranked 15th-46th under DBSF): when
    BM25 lists one chunk only, it ranks above every chunk holding none of the query's words.
    Its BM25 term, normalised over the list and the zeros of every other candidate, equals the
    largest value a normalised dense score can take (Samuelson's bound: no value of n lies more
    than (n - 1) / sqrt(n) deviations above their mean), so no dense score alone outranks it."""
    dense_list = _points("d", dense)
    only = [ScoredPoint("s-only", sparse)]
    fused = fuse(dense_list, only, FILL, len(dense_list) + 1)
    score = {p.id: p.score for p in fused}
    assert score["s-only"] >= max(score[p.id] for p in dense_list) - 1e-5


def test_plain_dbsf_leaves_the_only_match_behind() -> None:
    """The fault the zero fill removes: Qdrant's DBSF gives a one-point list a fixed 0.5."""
    dense_list = _points("d", [0.9 - 0.004 * i for i in range(100)])
    only = [ScoredPoint("s-only", 7.0)]
    plain = [p.id for p in fuse(dense_list, only, PLAIN, 101)]
    filled = [p.id for p in fuse(dense_list, only, FILL, 101)]
    assert plain.index("s-only") > 10 and filled[0] == "s-only"


@settings(max_examples=200, deadline=None)
@given(
    dense=st.lists(st.floats(-1.0, 1.0, width=32), min_size=0, max_size=40),
    sparse=st.lists(st.floats(0.0, 30.0, width=32), min_size=0, max_size=40),
    overlap=st.integers(0, 40),
)
def test_a_bm25_list_as_long_as_the_dense_one_fuses_as_dbsf(
    dense: list[float], sparse: list[float], overlap: int
) -> None:
    """Only a BM25 list shorter than the dense list is filled: otherwise the scores are DBSF's
    bit for bit (so Qdrant's, test above)."""
    dense_list = _points("p", dense)
    sparse_list = [
        ScoredPoint(f"p{i:03d}" if i < overlap else f"s{i:03d}", p.score)
        for i, p in enumerate(_points("s", sparse))
    ]
    filled = fuse(dense_list, sparse_list, FILL, 100)
    plain = fuse(dense_list, sparse_list, PLAIN, 100)
    if len(sparse_list) >= len(dense_list):
        assert filled == plain
        return
    assert {p.id for p in filled} == {p.id for p in plain}
    in_sparse = {p.id for p in sparse_list}
    was = {p.id: p.score for p in plain}
    for point in filled:  # the dense terms never change
        if point.id not in in_sparse:
            assert point.score == was[point.id]
    # a point BM25 alone lists keeps its BM25 order: higher BM25, higher fused score
    bm25 = {p.id: p.score for p in sparse_list if p.id not in {d.id for d in dense_list}}
    fused = {p.id: p.score for p in filled if p.id in bm25}
    ranked = sorted(bm25, key=lambda i: bm25[i])
    assert all(fused[a] <= fused[b] + 1e-6 for a, b in itertools.pairwise(ranked))


def test_zero_fill_statistics_are_those_of_the_padded_list() -> None:
    """The one-pass mean and deviation over the list and its zeros are the two-pass ones."""
    listed = [9.0, 4.0, 1.5]
    padded = np.asarray(listed + [0.0] * 7, dtype=np.float64)
    low = padded.mean() - 3 * padded.std(ddof=1)
    high = padded.mean() + 3 * padded.std(ddof=1)
    expected = [(v - low) / (high - low) for v in listed]
    assert dbsf_scores(listed, 7).tolist() == pytest.approx(expected, rel=1e-5)
    assert dbsf_scores([], 5).tolist() == []
    assert dbsf_scores([2.0], 0).tolist() == [0.5]
