"""Scores as a client sees them follow the order of the hits.

Hits are ranked by score to ``SCORE_TIE`` decimals, ties going nearest the root first
(searcher._by_score): copies of one passage embedded in different batches differ in the last
float bits. Invariant: down a response, the score shown (as serialised) never increases, and
neither does a stage's score down that stage's ranks. Before, a copy ranked first by the tie
rule could show 0.9999998 above a 1.0.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from server.retrieval import chunk_record
from server.retrieval.results import SearchResponse
from server.retrieval.searcher import SCORE_TIE, Searcher, _by_score, _place
from server.retrieval.store import QueryResponse, ScoredPoint, point_id
from server.retrieval.types import Chunk
from server.settings import Domain

FOLDERS = ["", "team/", "archive/2025/", "vendor/a/b/"]

# a base score and a jitter of a few float32 ulps (the noise between batches), or a real gap
_scored = st.tuples(
    st.sampled_from(FOLDERS),
    st.floats(min_value=0.0, max_value=30.0),
    st.sampled_from([0.0, 1e-7, -1e-7, 3e-7, -4e-8, 0.01]),
)


def _point(i: int, folder: str, score: float) -> ScoredPoint:
    chunk = Chunk(tenant="acme", doc_id=f"d{i}", source=f"{folder}f{i}.md", text=f"passage {i}")
    return ScoredPoint(
        id=point_id("acme", "docs", chunk.source, 0),
        score=score,
        payload=chunk_record.to_payload(chunk, bm25_len=3),
    )


def _non_increasing(values: list[float]) -> bool:
    return all(a >= b for a, b in pairwise(values))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_scored, min_size=1, max_size=12),
    st.sampled_from(["hybrid", "dense", "bm25"]),
)
def test_shown_scores_never_increase_down_the_list(
    scored: list[tuple[str, float, float]], mode: str
) -> None:
    base = scored[0][1]
    # near-ties around one score, as copies give, and the rest anywhere
    points = [
        _point(i, folder, (base if i % 2 else score) + jitter)
        for i, (folder, score, jitter) in enumerate(scored)
    ]
    stage = [ScoredPoint(p.id, p.score) for p in points]  # stage lists carry no payload
    stored = QueryResponse(final=points, dense=stage, sparse=list(reversed(stage)))
    response = SearchResponse(
        query="q", domain=Domain.DOCS, mode=mode, hits=[], fusion="dbsf", rerank_applied=False
    )
    hits = Searcher._hits(stored, response)
    shown = [h.model_dump(mode="json") for h in hits]
    assert _non_increasing([h["score"] for h in shown]), [h["score"] for h in shown]
    for name in ("dense", "sparse"):
        by_rank = sorted(
            (h["stages"][f"{name}_rank"], h["stages"][name])
            for h in shown
            if h["stages"].get(f"{name}_rank") is not None
        )
        assert _non_increasing([score for _, score in by_rank]), by_rank


@settings(max_examples=200, deadline=None)
@given(st.lists(_scored, min_size=0, max_size=12), st.booleans())
def test_score_order_keeps_the_store_order_only_where_nothing_ties(
    scored: list[tuple[str, float, float]], sort_first: bool
) -> None:
    """Invariant: a list already best first without ties (to SCORE_TIE decimals) stays in the
    store's order; any other list is ranked by score, ties nearest the root first: the same
    order as ranking every list (the shortcut changes no order)."""
    points = [_point(i, folder, score + jitter) for i, (folder, score, jitter) in enumerate(scored)]
    if sort_first:
        points.sort(key=lambda p: -p.score)
    sources = {p.id: str(p.payload[chunk_record.SOURCE]) for p in points}
    stage = [ScoredPoint(p.id, p.score) for p in points]
    full = sorted(stage, key=lambda p: (-round(p.score, SCORE_TIE), *_place(p, sources)))
    assert _by_score(stage, sources) == full
