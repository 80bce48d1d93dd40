"""Sweep arithmetic: part means, the worst-set rule, adaptive pairs and paired differences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from retrieval_eval.sweep_table import (
    SetRun,
    adaptive_row,
    best_adaptive,
    format_markdown,
    paired_difference,
    rank_rows,
    static_rows,
)


def _run(name: str, splits: list[str], ndcg: dict[str, list[float]], keyword: list[bool]) -> SetRun:
    run = SetRun(name, [f"{name}{i}" for i in range(len(splits))], splits)  # type: ignore[arg-type]
    for label, values in ndcg.items():
        run.ndcg[label] = np.array(values)
        run.recall[label] = np.array([min(1.0, v + 0.5) for v in values])
    run.keyword["any"] = np.array(keyword)
    return run


SPLITS = ["tune", "tune", "heldout", "heldout"]
A = _run(
    "a",
    SPLITS,
    {"x": [1.0, 0.0, 0.5, 0.5], "y": [0.6, 0.6, 0.0, 1.0], "z": [0.0, 1.0, 1.0, 1.0]},
    [True, False, True, False],
)
B = _run(
    "b",
    SPLITS,
    {"x": [0.8, 0.8, 0.0, 0.0], "y": [0.2, 0.2, 1.0, 1.0], "z": [1.0, 0.0, 0.0, 0.0]},
    [False, True, True, True],
)
CONFIGS = {label: {"fusion": label} for label in ("x", "y", "z")}


def test_part_means_and_worst_set() -> None:
    rows = {r.label: r for r in static_rows([A, B], CONFIGS)}
    x = rows["x"]
    assert x.scores["a"]["tune"].ndcg == pytest.approx(0.5)
    assert x.scores["a"]["heldout"].ndcg == pytest.approx(0.5)
    assert x.scores["a"]["all"].ndcg == pytest.approx(0.5)
    assert x.scores["b"]["tune"].ndcg == pytest.approx(0.8)
    assert x.scores["b"]["heldout"].recall == pytest.approx(0.5)
    assert x.scores["a"]["tune"].queries == 2
    assert x.worst_tune == pytest.approx(0.5)
    assert x.mean_tune == pytest.approx(0.65)
    assert x.worst_heldout == pytest.approx(0.0)
    assert rows["y"].worst_tune == pytest.approx(0.2)
    assert rows["z"].worst_tune == pytest.approx(0.5)


def test_rank_by_worst_tune_then_mean() -> None:
    ranked = rank_rows(static_rows([A, B], CONFIGS))
    # x and z tie on the worst tune set (0.5); x has the better mean tune score (0.65 > 0.5)
    assert [r.label for r in ranked] == ["x", "z", "y"]


def test_best_adaptive_matches_brute_force() -> None:
    choice = best_adaptive([A, B], ["x", "y", "z"], "any")
    assert choice is not None
    best = None
    for kw, nat in itertools.permutations(["x", "y", "z"], 2):
        tune_means = []
        for run in (A, B):
            route = run.keyword["any"]
            per_query = np.where(route, run.ndcg[kw], run.ndcg[nat])
            tune_means.append(per_query[run.mask("tune")].mean())
        key = (min(tune_means), float(np.mean(tune_means)))
        if best is None or key > best[0]:
            best = (key, kw, nat)
    assert best is not None
    assert (choice.keyword, choice.natural) == (best[1], best[2])
    assert choice.worst_tune == pytest.approx(best[0][0])
    row = adaptive_row(choice, [A, B], CONFIGS)
    assert row.worst_tune == pytest.approx(choice.worst_tune)
    assert row.config["keyword"] == CONFIGS[choice.keyword]


def test_best_adaptive_here() -> None:
    # by hand: keyword x / natural z gives a tune (1.0 + 1.0) / 2 = 1.0 and b (1.0 + 0.8) / 2
    choice = best_adaptive([A, B], ["x", "y", "z"], "any")
    assert choice is not None
    assert (choice.keyword, choice.natural) == ("x", "z")
    assert choice.worst_tune == pytest.approx(0.9)


def test_best_adaptive_needs_two_labels() -> None:
    assert best_adaptive([A, B], ["x"], "any") is None


def test_paired_difference() -> None:
    a, b = np.array([1.0, 0.5, 0.0, 1.0]), np.array([0.5, 0.5, 0.5, 0.0])
    mean, se = paired_difference(a, b, np.array([True, True, True, True]))
    diffs = np.array([0.5, 0.0, -0.5, 1.0])
    assert mean == pytest.approx(0.25)
    assert se == pytest.approx(diffs.std(ddof=1) / 2)
    one_mean, one_se = paired_difference(a, b, np.array([True, False, False, False]))
    assert one_mean == pytest.approx(0.5) and math.isnan(one_se)


def test_markdown_table_lists_rows_and_marks() -> None:
    rows = rank_rows(static_rows([A, B], CONFIGS))
    table = format_markdown(rows, ["a", "b"], {"x": "winner"}).splitlines()
    assert table[0].startswith("| config | a tune / held-out | b tune / held-out |")
    assert table[2].startswith("| `x` (winner) | 0.500 / 0.500")
    assert "**0.500**" in table[2]
    assert len(table) == 2 + 3
