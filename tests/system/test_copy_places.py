"""The text views' "same text also in" line names each copy so it can be told apart.

Copies ingested from different folders share a relative path and so a citation: the line read
"p.txt > p, p.txt > p, p.txt > p" (found by a fresh user). The invariant: every place named
differs from the others and from the hit's own citation, and a copy whose citation is unique
is named by it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.hit_preview import copy_places
from server.retrieval.results import Copy, SearchHit, SearchResponse
from server.settings import Domain
from server.tools.common import render_search

CITATIONS = st.sampled_from(["p.txt > Policy", "q.txt > Keys", "/srv/a/p.txt"])
SOURCES = st.sampled_from(["/srv/a/p.txt", "/srv/b/p.txt", "/home/u/p.txt", "p.txt > Policy"])


def _hit(citation: str, copies: list[tuple[str, str]]) -> SearchHit:
    return SearchHit(
        id="hit",
        source="/srv/root/p.txt",
        citation=citation,
        text="Rotate keys.",
        score=1.0,
        chunk_index=0,
        doc_id="p",
        also_in=[
            Copy(id=f"copy-{i}", source=source, citation=cited)
            for i, (cited, source) in enumerate(copies)
        ],
    )


@given(CITATIONS, st.lists(st.tuples(CITATIONS, SOURCES), min_size=1, max_size=6))
def test_every_copy_is_named_apart(citation: str, copies: list[tuple[str, str]]) -> None:
    hit = _hit(citation, copies)
    places = copy_places(hit).split(", ")
    assert len(places) == len(copies)
    assert len(set(places)) == len(places)
    assert citation not in places
    everyone = [citation, *(cited for cited, _ in copies)]
    for (cited, _), place in zip(copies, places, strict=True):
        if everyone.count(cited) == 1 and place != cited:
            # a unique citation is shown as itself unless that text is another copy's label
            assert place.endswith(")") and "(id copy-" in place


def test_the_mcp_text_names_copies_from_different_folders_by_path() -> None:
    hit = _hit(
        "p.txt > Policy", [("p.txt > Policy", "/srv/b/p.txt"), ("p.txt > Policy", "/x/p.txt")]
    )
    response = SearchResponse(
        query="keys", domain=Domain.DOCS, hits=[hit], fusion="dbsf", rerank_applied=False
    )
    text = render_search(response)
    assert "(same text also in: /srv/b/p.txt, /x/p.txt)" in text
    assert "[1] p.txt > Policy (/srv/root/p.txt)  score=" in text  # the hit's own place too
