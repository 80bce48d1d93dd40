"""Metric functions against values computed by hand."""

import math

import pytest

from retrieval_eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k


def test_ndcg_hand_computed() -> None:
    qrels = {"a": 1, "b": 1}
    # relevant at ranks 1 and 3: DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b"], qrels, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], qrels, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], qrels, 10) == 0.0


def test_ndcg_graded_and_cutoff() -> None:
    qrels = {"a": 2, "b": 1}
    # k=1 with b first: DCG = 1, IDCG = 2
    assert ndcg_at_k(["b", "a"], qrels, 1) == pytest.approx(0.5)
    assert ndcg_at_k(["a"], {}, 10) == 0.0


def test_recall_and_mrr() -> None:
    qrels = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["x", "a", "c"], qrels, 100) == pytest.approx(0.5)
    assert recall_at_k(["x", "a"], qrels, 1) == 0.0
    assert mrr_at_k(["x", "y", "b"], qrels, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "b"], qrels, 2) == 0.0
    assert mrr_at_k(["c"], qrels, 10) == 0.0


def test_percentile_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == 4.0
    assert percentile([], 50) == 0.0
