"""Collapsing copies: the head-only collapse equals collapsing every hit and cutting the list;
after collapsing, the final ranks run 1..n and the stage ranks still count the copies."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.chunk_record import copy_of, point_copy, search_hit
from server.retrieval.duplicates import collapse_duplicates, collapsed_head, passage_key
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.reranker import CrossEncoderReranker
from server.retrieval.results import SearchHit, SearchResponse, StageScores
from server.retrieval.store import ScoredPoint
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Domain, Settings
from server.tools.common import render_search

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


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(TEXTS), st.integers(0, 4)), max_size=30),
    st.integers(min_value=0, max_value=12),
)
def test_each_passage_shows_its_copy_nearest_the_root_at_that_copys_rank(
    items: list[tuple[str, int]], depth: int
) -> None:
    """Copies need not score alike (identical text embedded in different batches; code
    embedded with its path), so rank order cannot pick the copy shown. Whatever the ranks:
    each passage once, shown by its copy with the smallest place, at that copy's rank (so
    scores never rise down the list), with every other copy in also_in in rank order; the
    head-only collapse equals the full one, cut."""
    ranked = [(i, text, depth_of) for i, (text, depth_of) in enumerate(items)]

    def place(item: tuple[int, str, int]) -> tuple[int, int]:
        return (item[2], item[0])

    head = collapsed_head(
        ranked, lambda item: item[1], lambda item: _hit(*item[:2]), depth, place=place
    )
    groups: dict[str, list[tuple[int, str, int]]] = {}
    for item in ranked:
        groups.setdefault(passage_key(item[1]), []).append(item)
    expected = sorted((min(g, key=place), g) for g in groups.values())[:depth]
    assert [h.id for h in head] == [f"p{shown[0]}" for shown, _ in expected]
    for hit, (shown, group) in zip(head, expected, strict=True):
        assert [c.id for c in hit.also_in] == [f"p{i}" for i, _, _ in group if i != shown[0]]
    assert [h.score for h in head] == sorted((h.score for h in head), reverse=True)
    full = collapse_duplicates(
        [_hit(i, text) for i, text, _ in ranked],
        place=lambda hit: (items[int(hit.id[1:])][1], int(hit.id[1:])),
    )[:depth]
    assert [h.model_dump() for h in head] == [h.model_dump() for h in full]


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


PASSAGES = [
    "Green tea contains catechins, antioxidants studied for heart health.",
    "The borrow checker in Rust enforces ownership rules at compile time.",
    "Honey bees communicate the location of flowers with a waggle dance.",
    "Ocean tides are caused by the gravitational pull of the moon and sun.",
    "Vaccines train the immune system to recognise a pathogen's antigens.",
    "Rotate credentials every 90 days and never share security keys.",
]
QUERIES = ["heart health antioxidants", "rust ownership", "moon tides", "security keys rotation"]
_tenants = itertools.count()


def _corpus(tenant: str, copies: list[int]) -> list[Chunk]:
    """Each passage once at the root and ``copies[i]`` more times in folders below it."""
    chunks = []
    for i, (text, extra) in enumerate(zip(PASSAGES, copies, strict=True)):
        for source in [f"p{i}.txt", *(f"copy{c}/p{i}.txt" for c in range(extra))]:
            chunks.append(Chunk(tenant=tenant, doc_id=source, source=source, text=text))
    return chunks


def _assert_final_ranks_run_1_to_n(result: SearchResponse) -> None:
    labels = re.findall(r"^\[(\d+)\] ", render_search(result), flags=re.MULTILINE)
    assert labels == [str(rank) for rank in range(1, len(result.hits) + 1)]


@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    copies=st.lists(st.integers(0, 3), min_size=len(PASSAGES), max_size=len(PASSAGES)),
    query=st.sampled_from(QUERIES),
    top_k=st.integers(1, 8),
)
def test_final_ranks_run_1_to_n_and_stage_ranks_count_the_copies(
    edge_store: EdgeStore,
    embedder: DenseEmbedder,
    tiny_cross_encoder: Path,
    copies: list[int],
    query: str,
    top_k: int,
) -> None:
    """Collapse on or off, reranked or not: a hit's final rank (its place in ``hits``, as the
    text view numbers it) runs 1..n, and so does ``rerank_rank``. ``fused_rank`` stays the
    position in the fused list, copies included: each hit comes right after the hits before
    it and their collapsed copies (copies tie on score, so they sit next to the copy shown)."""
    tenant = f"t{next(_tenants)}"  # one store, a fresh tenant per example
    chunks = _corpus(tenant, copies)
    reranker = CrossEncoderReranker(str(tiny_cross_encoder))
    for collapse in (True, False):
        fused_only = assemble(
            Settings(reranker_model="none", collapse_duplicates=collapse), edge_store, embedder
        )
        if collapse:
            fused_only.indexer.index("docs", chunks)
        request = SearchRequest(query, domain="docs", tenant=tenant, top_k=top_k, mode="hybrid")
        result = fused_only.searcher.search(request)
        shown = len(PASSAGES) if collapse else len(chunks)
        assert len(result.hits) == min(top_k, shown)  # copies never shorten the list
        _assert_final_ranks_run_1_to_n(result)
        before = 0  # places in the fused list taken by the hits above and their copies
        for hit in result.hits:
            assert hit.stages.fused_rank == before + 1, hit
            before += 1 + len(hit.also_in)
        reranked = assemble(
            Settings(collapse_duplicates=collapse), edge_store, embedder, reranker
        ).searcher.search(SearchRequest(query, domain="docs", tenant=tenant, top_k=top_k))
        assert reranked.rerank_applied
        _assert_final_ranks_run_1_to_n(reranked)
        assert [h.stages.rerank_rank for h in reranked.hits] == list(range(1, top_k + 1))[
            : len(reranked.hits)
        ]


def test_the_copy_shown_ranks_first_among_copies_the_fused_list_cut_off(
    edge_store: EdgeStore, embedder: DenseEmbedder
) -> None:
    """top_k 1 asks the store for a fused list of 2, so 5 of 7 copies of the best passage are
    not in it and their sources are unknown. They tie with the copy shown in each stage; they
    used to be ordered before it (an unknown source sorted as ''), so the top hit, first in
    both stages by score, showed dense and sparse rank 6."""
    policy = "Rotate credentials every 90 days and never share security keys."
    sources = ["a/p.txt", *(f"z{i}/deep/p.txt" for i in range(6))]
    chunks = [Chunk(tenant="t", doc_id=s, source=s, text=policy) for s in sources]
    chunks += [
        Chunk(tenant="t", doc_id=f"o{i}.txt", source=f"o{i}.txt", text=text)
        for i, text in enumerate(PASSAGES[:3])
    ]
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    retrieval.indexer.index("docs", chunks)
    request = SearchRequest("rotate security keys", domain="docs", tenant="t", top_k=1)
    [top] = retrieval.searcher.search(replace(request, mode="hybrid")).hits
    assert top.text == policy
    assert (top.stages.dense_rank, top.stages.sparse_rank, top.stages.fused_rank) == (1, 1, 1)


_folders = st.text("abz", min_size=1, max_size=3)


def _copy_paths(name: str, max_size: int) -> st.SearchStrategy[list[str]]:
    """2 to ``max_size`` distinct paths of one file name, up to three folders deep."""
    paths = st.lists(_folders, max_size=3).map(lambda parts: "/".join([*parts, name]))
    return st.lists(paths, min_size=2, max_size=max_size, unique=True)


def _nearest_shown(top: SearchHit, text: str, sources: list[str]) -> list[str]:
    """Assert ``top`` is ``text`` shown by its copy nearest the root, every other copy in its
    also_in; the sources nearest the root first."""
    nearest = sorted(sources, key=lambda s: (s.count("/"), s))
    assert top.text == text
    assert top.source == nearest[0]
    assert sorted(c.source for c in top.also_in) == sorted(nearest[1:])
    return nearest


def _copies_of(name: str, *, max_size: int, examples: int) -> Callable[[Any], Any]:
    """A slow store property over copy paths of file ``name``, insertion orders and top_k."""

    def decorate(test: Any) -> Any:
        test = given(
            sources=_copy_paths(name, max_size=max_size),
            order=st.randoms(use_true_random=False),
            top_k=st.integers(1, 3),
        )(test)
        health = [HealthCheck.function_scoped_fixture]
        test = settings(max_examples=examples, deadline=None, suppress_health_check=health)(test)
        return pytest.mark.slow(test)

    return decorate


@_copies_of("p.txt", max_size=9, examples=15)
def test_the_copy_shown_is_the_one_nearest_the_root_whatever_the_cut(
    edge_store: EdgeStore,
    embedder: DenseEmbedder,
    sources: list[str],
    order: Any,
    top_k: int,
) -> None:
    """Copies of the best passage tie in every stage; the fused list the store returns is cut
    at twice top_k, often through the group of ties, and which copies make it depends on the
    store's order. Whatever the cut, the hit shows the copy nearest the root (then by path) and
    its also_in names every other copy."""
    tenant = f"t{next(_tenants)}"
    policy = "Rotate credentials every 90 days and never share security keys."
    order.shuffle(sources)  # the insertion order, and so the store's order among ties
    chunks = [Chunk(tenant=tenant, doc_id=s, source=s, text=policy) for s in sources]
    chunks += [
        Chunk(tenant=tenant, doc_id=f"o{i}.txt", source=f"o{i}.txt", text=text)
        for i, text in enumerate(PASSAGES[:3])
    ]
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    retrieval.indexer.index("docs", chunks)
    request = SearchRequest("rotate security keys", domain="docs", tenant=tenant, top_k=top_k)
    top = retrieval.searcher.search(replace(request, mode="hybrid")).hits[0]
    nearest = _nearest_shown(top, policy, sources)
    # copies not collapsed: each is a hit, and the top_k shown are the nearest the root
    separate = assemble(
        Settings(reranker_model="none", collapse_duplicates=False), edge_store, embedder
    )
    hits = separate.searcher.search(replace(request, mode="hybrid")).hits
    assert [h.source for h in hits][: len(sources)] == nearest[:top_k]


@_copies_of("keys.py", max_size=6, examples=10)
def test_copies_that_score_apart_still_show_the_one_nearest_the_root(
    edge_store: EdgeStore,
    embedder: DenseEmbedder,
    sources: list[str],
    order: Any,
    top_k: int,
) -> None:
    """Copies need not tie: the code domain embeds a chunk with its title, which names the
    file's path, and identical text embedded in different batches gets vectors a few float
    bits apart. Each copy here is indexed in its own batch, in a shuffled order, under a title
    naming its path (as the code chunker writes it). The hit still shows the copy nearest the
    root (it showed whichever copy's path scored best: an archived one, for a fresh user) and
    its also_in names every other copy."""
    tenant = f"t{next(_tenants)}"
    code = "def rotate(key):\n    return vault.rotate(key, days=90)\n"
    order.shuffle(sources)
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    others = [
        Chunk(tenant=tenant, doc_id=f"o{i}.py", source=f"o{i}.py", text=f"# {text}\n")
        for i, text in enumerate(PASSAGES[:3])
    ]
    for i, source in enumerate(sources):
        copy = Chunk(
            tenant=tenant, doc_id=source, source=source, text=code, title=f"{source} > rotate"
        )
        retrieval.indexer.index("code", [copy, *others[: i % 4]])
    request = SearchRequest("rotate the vault key", domain="code", tenant=tenant, top_k=top_k)
    _nearest_shown(
        retrieval.searcher.search(replace(request, mode="hybrid")).hits[0], code, sources
    )


TOOLS = ["BitLocker", "FileVault", "LUKS", "VeraCrypt", "dm-crypt", "eCryptfs", "TPM keys"]


@pytest.mark.parametrize("copies", [150, 400])
def test_copies_filling_the_stages_do_not_starve_the_other_passages(
    edge_store: EdgeStore, embedder: DenseEmbedder, copies: int
) -> None:
    """Fresh user: 300 copies of one laptop policy and 12 other notes on laptop encryption:
    top_k 8 returned 1 hit, its also_in listing 99 copies (the stages' lists held nothing
    else). Invariant: a search returns top_k distinct passages while the tenant holds that
    many, whatever the copies, and a hit names every copy found (at most 20 in also_in, the
    rest counted in more_copies)."""
    policy = "Laptops must use full disk encryption; IT checks encryption every quarter."
    notes = [
        f"Note {i}: laptop disk encryption with {tool} keeps data safe if a laptop is lost."
        for i, tool in enumerate(TOOLS)
    ]
    chunks = [
        Chunk(tenant="t", doc_id=f"svc{i}/laptop.md", source=f"svc{i}/laptop.md", text=policy)
        for i in range(copies)
    ]
    chunks += [
        Chunk(tenant="t", doc_id=f"note{i}.md", source=f"note{i}.md", text=text)
        for i, text in enumerate(notes)
    ]
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    retrieval.indexer.index("docs", chunks)
    request = SearchRequest(
        "laptop disk encryption", domain="docs", tenant="t", top_k=8, mode="hybrid"
    )
    result = retrieval.searcher.search(replace(request, max_chars=12_000))
    assert len({h.text for h in result.hits}) == 8
    [shown] = [h for h in result.hits if h.text == policy]
    assert len(shown.also_in) <= 20
    assert len(shown.also_in) + shown.more_copies + 1 <= copies
    assert len(shown.also_in) + shown.more_copies + 1 >= min(copies, 500)  # the stages' depth
    assert f"and {shown.more_copies} more" in render_search(result)
