"""Tune / held-out split: deterministic, about half each, and the recorded qrels follow it."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval_eval.eval_sets import EVAL_SETS, TUNING_SETS
from retrieval_eval.splits import select_split, split_of
from server.errors import InvalidRequestError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import beir_sets  # the standalone build scripts keep their own copy of the rule


def test_known_assignments() -> None:
    # SHA-256("1") starts with 0x6b (odd), SHA-256("2") with 0xd4 (even)
    assert split_of("1") == "heldout"
    assert split_of("2") == "tune"


@given(st.text(min_size=1, max_size=40))
def test_assignment_depends_on_the_id_alone(query_id: str) -> None:
    assert split_of(query_id) == split_of(str(query_id))
    assert split_of(query_id) in ("tune", "heldout")
    assert beir_sets.split_of(query_id) == split_of(query_id)


def test_about_half_in_each_part() -> None:
    ids = [f"q{i}" for i in range(10_000)]
    tune = sum(split_of(q) == "tune" for q in ids)
    # a fair coin per id: 10,000 draws stay within 3 standard deviations (150) of 5,000
    assert 4850 <= tune <= 5150


def test_select_split_partitions() -> None:
    items = {f"q{i}": i for i in range(200)}
    tune, heldout = select_split(items, "tune"), select_split(items, "heldout")
    assert tune.keys() | heldout.keys() == items.keys()
    assert not tune.keys() & heldout.keys()
    assert select_split(items, "all") == items
    assert 70 <= len(tune) <= 130
    with pytest.raises(InvalidRequestError, match="unknown split"):
        select_split(items, "test")


def _qrels(path: Path) -> set[tuple[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["query-id", "corpus-id", "score"]
    return {(r[0], r[1]) for r in rows[1:]}


QRELS_DIRS = sorted(p.parent for p in EVAL_SETS.glob("**/qrels/test.tsv"))


def test_every_committed_set_is_split() -> None:
    in_repo = [  # derived sets read their corpus's directory and record no parts of their own
        s for s in TUNING_SETS if s.directory.is_relative_to(EVAL_SETS) and s.derive is None
    ]
    assert len(QRELS_DIRS) == len(in_repo) >= 6
    assert {s.domain for s in in_repo} == {s.domain for s in TUNING_SETS}


@pytest.mark.parametrize("qrels_dir", QRELS_DIRS, ids=lambda p: str(p.relative_to(EVAL_SETS)))
def test_recorded_parts_follow_the_rule(qrels_dir: Path) -> None:
    everything = _qrels(qrels_dir / "test.tsv")
    tune, heldout = _qrels(qrels_dir / "tune.tsv"), _qrels(qrels_dir / "heldout.tsv")
    assert tune | heldout == everything
    assert not tune & heldout
    assert all(split_of(q) == "tune" for q, _ in tune)
    assert all(split_of(q) == "heldout" for q, _ in heldout)
    queries = {q for q, _ in everything}
    share = len({q for q, _ in tune}) / len(queries)
    assert 0.38 <= share <= 0.62, share  # ~50/50 (>= 123 queries: within ~3 sd)
