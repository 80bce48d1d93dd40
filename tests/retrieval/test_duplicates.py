"""Collapsing copies: the head-only collapse equals collapsing every hit and cutting the list."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.retrieval.chunk_record import copy_of, point_copy, search_hit
from server.retrieval.duplicates import collapse_duplicates, collapsed_head
from server.retrieval.results import SearchHit, StageScores
from server.retrieval.store import ScoredPoint
from server.settings import Domain

TEXTS = ["alpha beta", "Alpha  beta", "gamma", "delta\nepsilon", "delta epsilon", "zeta"]
"""Texts with copies after normalisation (whitespace runs fold; case does not)."""


def _hit(index: int, text: str) -> SearchHit:
    return SearchHit(
        id=f"p{index}",
        source=f"/s/{index}.txt",
        citation=f"s{index}",
        text=text,
        score=1.0 / (index + 1),
        stages=StageScores(),
        chunk_index=0,
        doc_id=f"/s/{index}.txt",
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TEXTS), max_size=30), st.integers(min_value=0, max_value=12))
def test_head_collapse_is_the_full_collapse_cut(texts: list[str], depth: int) -> None:
    """Same hits, same order, same ``also_in`` lists, and no hit decoded past the head unless
    it is a copy of a kept one."""
    items = list(enumerate(texts))
    decoded: list[int] = []

    def to_hit(item: tuple[int, str]) -> SearchHit:
        decoded.append(item[0])
        return _hit(*item)

    head = collapsed_head(items, lambda item: item[1], to_hit, depth)
    full = collapse_duplicates([_hit(i, t) for i, t in items])[:depth]
    assert [h.model_dump() for h in head] == [h.model_dump() for h in full]
    listed = {h.id for h in full} | {c.id for h in full for c in h.also_in}
    assert {f"p{i}" for i in decoded} == listed
    decoded.clear()
    cheap = collapsed_head(
        items, lambda item: item[1], to_hit, depth, lambda item: copy_of(_hit(*item))
    )
    assert [h.model_dump() for h in cheap] == [h.model_dump() for h in full]
    assert {f"p{i}" for i in decoded} == {h.id for h in full}  # copies never decoded as hits


def test_a_point_copy_is_the_copy_of_its_hit() -> None:
    payload = {
        "tenant": "t",
        "doc_id": "/d/a.md",
        "source": "/d/a.md",
        "chunk_index": 2,
        "title": "A > Intro",
        "text": "some text",
        "rel_path": "a.md",
        "heading_path": ["A", "Intro"],
    }
    point = ScoredPoint("3f1c1d7e-0000-4000-8000-000000000001", 0.5, payload)
    for domain in Domain:
        hit = search_hit(domain, point, StageScores())
        assert point_copy(domain, point) == copy_of(hit)
