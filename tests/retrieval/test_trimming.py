"""Output budget: hit texts trimmed around their best-matching sentences (trimming.py).

Invariants, as properties over random texts, queries and budgets:
- the rendered texts of one response add up to at most the budget;
- nothing is invented: a trimmed text is its kept spans, exact substrings of the stored text in
  reading order, joined only by the original text between adjacent spans or a gap marker;
- a text that fits is returned whole and not flagged; a cut one is flagged ``truncated``;
- a hit keeps its best-matching sentence whenever its share can hold it.
Then the same through the real Searcher over a real store, for random budgets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import Retrieval, assemble
from server.retrieval.limits import MIN_OUTPUT_CHARS
from server.retrieval.results import (
    DECLARED_FIELDS,
    MAX_DECLARED_CHARS,
    SearchHit,
    declare_once,
)
from server.retrieval.trimming import (
    CODE_GAP,
    MIN_SHARE,
    OVERLAP_PROBE,
    PROSE_GAP,
    Trimmed,
    shares,
    trim_text,
    trim_texts,
    unit_spans,
)
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Settings

WORDS = ["alpha", "beta", "gamma", "delta", "restore", "backup", "agent", "e.g.", "Art.", "12.3"]
word = st.sampled_from(WORDS)
sentence = st.lists(word, min_size=1, max_size=12).map(lambda ws: " ".join(ws) + ".")
line_break = st.sampled_from([" ", " ", "\n", "\n\n", "\n  "])
prose = st.lists(st.tuples(sentence, line_break), min_size=0, max_size=14).map(
    lambda parts: "".join(s + b for s, b in parts)
)
code_line = st.tuples(st.sampled_from(["", "    ", "        "]), st.lists(word, max_size=6)).map(
    lambda t: t[0] + " ".join(t[1])
)
code = st.lists(code_line, max_size=20).map("\n".join)


def keyword_scorer(terms: set[str]) -> Callable[[str], int]:
    def score(text: str) -> int:
        return len(terms & {w.strip(".").lower() for w in text.split()})

    return score


def check_pieces(original: str, result: Trimmed, *, code: bool) -> None:
    """The trimmed text is exactly its spans (substrings of the original, in order) joined by
    original whitespace or a gap marker, with a marker where the original continues."""
    gap = CODE_GAP if code else PROSE_GAP
    last = 0
    rebuilt = []
    for i, (start, end) in enumerate(result.spans):
        assert 0 <= last <= start < end <= len(original), result.spans
        between = original[last:start]
        if i == 0:
            rebuilt.append(gap[1:] if between.strip() else "")
        elif between.strip():
            rebuilt.append(gap)
        else:
            rebuilt.append(between)
        rebuilt.append(original[start:end])
        last = end
    if result.spans and original[last:].strip():
        rebuilt.append(gap[:-1])
    assert result.text == "".join(rebuilt)


@given(
    texts=st.lists(st.one_of(prose, st.text(max_size=300)), min_size=1, max_size=12),
    budget=st.integers(min_value=0, max_value=4000),
    terms=st.sets(st.sampled_from([w.strip(".").lower() for w in WORDS]), max_size=3),
)
@settings(max_examples=300, deadline=None)
def test_prose_trimming_fits_the_budget_and_invents_nothing(
    texts: list[str], budget: int, terms: set[str]
) -> None:
    score = keyword_scorer(terms)
    results = trim_texts(texts, budget, score, code=False)
    assert sum(len(r.text) for r in results) <= budget
    for text, result in zip(texts, results, strict=True):
        if not result.truncated:
            assert result.text == text
            continue
        check_pieces(text, result, code=False)


def _covered(span: tuple[int, int], spans: tuple[tuple[int, int], ...], shift: int) -> bool:
    return any(a <= span[0] + shift and span[1] + shift <= b for a, b in spans)


one_long_line = st.lists(word, min_size=30, max_size=400).map(" ".join)  # a minified file


@given(
    base=st.one_of(prose, one_long_line),
    cut=st.tuples(st.floats(0.1, 0.9), st.floats(0.05, 0.6)),
    terms=st.sets(st.sampled_from([w.strip(".").lower() for w in WORDS]), max_size=3),
    budget=st.integers(min_value=2 * MIN_SHARE, max_value=1200),
    order=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_overlapping_chunks_of_one_source_do_not_show_the_same_passage(
    base: str, cut: tuple[float, float], terms: set[str], budget: int, order: bool
) -> None:
    """Field report: two windows of one long line, trimmed around the same matching word,
    showed the same text twice. Invariant: a hit whose chunk overlaps a better hit of its
    source shows something that better hit did not, whenever it holds such text."""
    a_end = int(len(base) * cut[0])
    b_start = max(0, a_end - int(len(base) * cut[1]))
    first, second = base[:a_end], base[b_start:]  # consecutive chunks: second starts inside first
    if not first.strip() or not second.strip() or a_end - b_start < OVERLAP_PROBE:
        return  # chunks share sentences or a window's margin; a few characters are chance
    texts = [first, second] if order else [second, first]  # either may rank first
    offsets = [0, b_start] if order else [b_start, 0]  # each text's start in ``base``
    score = keyword_scorer(terms)
    positions = [("f.js", 0), ("f.js", 1)] if order else [("f.js", 1), ("f.js", 0)]
    results = trim_texts(texts, budget, score, code=False, positions=positions)
    assert sum(len(r.text) for r in results) <= budget
    for text, result in zip(texts, results, strict=True):
        if result.truncated:
            check_pieces(text, result, code=False)
    better, worse = results
    if not worse.truncated or not worse.spans:
        return
    shift = offsets[1] - offsets[0]  # worse's offsets as better's
    unseen = [
        w for w in re.finditer(r"\S+", texts[1]) if not _covered(w.span(), better.spans, shift)
    ]
    if unseen:
        assert not all(_covered(span, better.spans, shift) for span in worse.spans), results
        assert worse.text != better.text


@given(
    texts=st.lists(code, min_size=1, max_size=10),
    budget=st.integers(min_value=0, max_value=3000),
    terms=st.sets(st.sampled_from(["alpha", "restore", "agent"]), max_size=2),
)
@settings(max_examples=200, deadline=None)
def test_code_trimming_keeps_lines_and_fits(texts: list[str], budget: int, terms: set[str]) -> None:
    results = trim_texts(texts, budget, keyword_scorer(terms), code=True)
    assert sum(len(r.text) for r in results) <= budget
    for text, result in zip(texts, results, strict=True):
        if result.truncated:
            check_pieces(text, result, code=True)
        else:
            assert result.text == text


@given(text=prose, terms=st.sets(st.sampled_from(["restore", "backup", "agent"]), min_size=1))
@settings(max_examples=300, deadline=None)
def test_the_best_sentence_is_kept_when_the_share_holds_it(text: str, terms: set[str]) -> None:
    score = keyword_scorer(terms)
    units = unit_spans(text, code=False)
    if not units:
        return
    scored = [(score(text[a:b]), -i, (a, b)) for i, (a, b) in enumerate(units)]
    best_score, _, (a, b) = max(scored)
    share = (b - a) + 2 * len(PROSE_GAP)  # the sentence with markers on both sides
    result = trim_text(text, share, score, code=False)
    if not result.truncated:
        assert result.text == text
    elif best_score > 0:
        assert (a, b) in result.spans, (text, result)
    else:  # nothing matches: the text's opening unit stands for it
        assert result.spans[0] == units[0]


@given(
    lengths=st.lists(st.integers(min_value=0, max_value=5000), max_size=60),
    budget=st.integers(min_value=0, max_value=50000),
)
def test_shares_are_fair_and_within_the_budget(lengths: list[int], budget: int) -> None:
    out = shares(lengths, budget)
    assert len(out) == len(lengths)
    assert sum(out) <= budget
    assert all(0 <= s <= n for s, n in zip(out, lengths, strict=True))
    if sum(lengths) <= budget:
        assert out == lengths
    elif all(s >= min(n, MIN_SHARE) for s, n in zip(out, lengths, strict=True)):
        # everyone got a useful share: no capped text has less than another capped one
        capped = [s for s, n in zip(out, lengths, strict=True) if s < n]
        assert not capped or max(capped) - min(capped) <= 1
        assert budget - sum(out) < max(len(capped), 1)  # the budget is used, bar rounding
    else:  # too many hits for the budget: the best ranked get MIN_SHARE first
        given_out = [s > 0 for s, n in zip(out, lengths, strict=True) if n > 0]
        assert given_out == sorted(given_out, reverse=True)


def test_a_sentence_longer_than_its_share_is_windowed_around_the_match() -> None:
    text = "Intro. " + "filler " * 60 + "the restore command reads backups " + "tail " * 40 + "."
    result = trim_text(text, 60, keyword_scorer({"restore"}), code=False)
    assert result.truncated and len(result.text) <= 60
    assert "restore" in result.text
    assert result.text.startswith("… ") and result.text.endswith(" …")


# -- through the Searcher, over a real store --------------------------------------------------

TOPICS = [
    "Backups copy the database to object storage every night.",
    "Restore a backup with agent restore --from latest; it stops the service first.",
    "The agent writes its logs to syslog, rotated weekly by logrotate.",
    "Credentials rotate every quarter; the vault issues short-lived tokens.",
    "Upgrades stop the service, replace the binary and start it again.",
]


def _document(i: int) -> str:
    """A long document of real sentences (several chunks' worth of text in one chunk)."""
    sentences = [TOPICS[(i + k) % len(TOPICS)] for k in range(3 + i % 9)]
    return "\n\n".join(" ".join(sentences[j : j + 2]) for j in range(0, len(sentences), 2))


@pytest.fixture(scope="module")
def retrieval(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder
) -> Iterator[Retrieval]:
    path: Path = tmp_path_factory.mktemp("trimming") / "store"
    store = EdgeStore(path)
    retrieval = assemble(Settings(store_path=path, reranker_model="none"), store, embedder)
    chunks = [
        Chunk(
            tenant="acme",
            doc_id=f"/docs/runbook-{i}.md",
            source=f"/docs/runbook-{i}.md",
            text=_document(i),
            title=f"Runbook {i}",
            metadata={"rel_path": f"runbook-{i}.md", "content_hash": "f" * 64},
        )
        for i in range(24)
    ]
    retrieval.indexer.index("docs", chunks)
    yield retrieval
    store.close()


@given(
    budget=st.integers(min_value=MIN_OUTPUT_CHARS, max_value=6000),
    top_k=st.integers(min_value=1, max_value=24),
    query=st.sampled_from(["how do I restore a backup", "log rotation", "quarterly credentials"]),
)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_search_texts_fit_random_budgets_and_are_pieces_of_the_stored_text(
    retrieval: Retrieval, budget: int, top_k: int, query: str
) -> None:
    whole = retrieval.searcher.search(
        SearchRequest(query=query, domain="docs", tenant="acme", top_k=top_k, mode="hybrid")
    )
    trimmed = retrieval.searcher.search(
        SearchRequest(
            query=query,
            domain="docs",
            tenant="acme",
            top_k=top_k,
            mode="hybrid",
            max_chars=budget,
        )
    )
    assert [h.id for h in trimmed.hits] == [h.id for h in whole.hits]  # ranking unchanged
    assert sum(len(h.text) for h in trimmed.hits) <= budget
    for full, hit in zip(whole.hits, trimmed.hits, strict=True):
        if not hit.truncated:
            assert hit.text == full.text
            continue
        # the stored texts hold no "…": every piece between markers is stored text, in order
        pieces = [p.strip() for p in re.split("…", hit.text) if p.strip()]
        cursor = 0
        for piece in pieces:
            found = full.text.find(piece, cursor)
            assert found >= 0, (piece, full.text)
            cursor = found + len(piece)
        if budget >= top_k * 150:  # a share that holds a sentence of these documents
            assert any(t.lower()[:20] in hit.text.lower() for t in TOPICS), hit.text
    if any(h.truncated for h in trimmed.hits):
        assert any("max_chars" in note for note in trimmed.notes)


def test_search_without_a_budget_returns_whole_texts(retrieval: Retrieval) -> None:
    result = retrieval.searcher.search(
        SearchRequest(query="restore a backup", domain="docs", tenant="acme", top_k=24)
    )
    assert not any(h.truncated for h in result.hits)
    assert sum(len(h.text) for h in result.hits) > 6000  # the budget tests above really cut


def test_a_budget_over_the_limit_is_refused(retrieval: Retrieval) -> None:
    from server.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="max_chars must be between"):
        retrieval.searcher.search(
            SearchRequest(query="backup", domain="docs", tenant="acme", max_chars=10**9)
        )
    with pytest.raises(InvalidRequestError, match="max_chars"):
        retrieval.searcher.search(
            SearchRequest(query="backup", domain="docs", tenant="acme", max_chars=5)
        )


# -- declared metadata ---------------------------------------------------------------------------

_scalar = st.one_of(st.integers(), st.booleans(), st.text(max_size=400))
_front_matter = st.dictionaries(
    st.text("abcdefghij_", min_size=1, max_size=12),
    st.one_of(_scalar, st.lists(st.text(max_size=30), max_size=40)),
    max_size=60,
)


def _hit(source: str, index: int, declared: dict[str, Any]) -> SearchHit:
    return SearchHit(
        id=f"{source}#{index}",
        source=source,
        citation=source,
        text="text",
        score=1.0,
        chunk_index=index,
        metadata={"heading_path": ["A"], **declared},
    )


@given(
    declared=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "tags": st.lists(st.text(max_size=20), max_size=60),
                "front_matter": _front_matter,
            },
        ),
        min_size=1,
        max_size=4,
    ),
    order=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=30),
)
def test_what_a_document_declares_comes_once_and_bounded(
    declared: list[dict[str, Any]], order: list[int]
) -> None:
    """Fresh user: a file with 7.5 KB of front matter and 60 sections put it on every hit
    (440 KB of structured content for 50 hits, the texts within 12,000 characters).
    Invariant: a source's declared metadata comes with its first hit only, as stored when it
    fits 1,000 characters of JSON, else within them (a long value named by its length, the
    keys that do not fit counted); the rest of every hit's metadata is untouched."""
    sources = [f"/docs/{i}.md" for i in range(len(declared))]
    hits = [
        _hit(sources[i % len(sources)], n, declared[i % len(sources)]) for n, i in enumerate(order)
    ]
    declare_once(hits)
    seen: set[str] = set()
    for hit in hits:
        assert hit.metadata["heading_path"] == ["A"]
        shown = {k: hit.metadata[k] for k in DECLARED_FIELDS if k in hit.metadata}
        stored = declared[sources.index(hit.source)]
        if hit.source in seen:
            assert shown == {}
            continue
        seen.add(hit.source)
        assert len(json.dumps(shown, ensure_ascii=False)) <= MAX_DECLARED_CHARS
        if len(json.dumps(stored, ensure_ascii=False)) <= MAX_DECLARED_CHARS:
            assert shown == stored
        else:
            assert shown  # something of it, and a pointer to the rest
            for key, value in shown.get("front_matter", {}).items():
                if key != "…" and value != stored["front_matter"][key]:
                    assert "characters: get_chunk shows it" in value


def test_a_search_shows_front_matter_on_the_first_hit_of_its_source(
    tmp_path: Path, embedder: DenseEmbedder
) -> None:
    """The search path end to end: 60 sections of one file with 7.5 KB of front matter, top 50
    in 12,000 characters: the structured content stays near the budget."""
    store = EdgeStore(tmp_path / "store")
    retrieval = assemble(
        Settings(store_path=tmp_path / "store", reranker_model="none"), store, embedder
    )
    front = {f"key_{k}": "value " * 25 for k in range(50)}
    chunks = [
        Chunk(
            tenant="acme",
            doc_id="/docs/big.md",
            source="/docs/big.md",
            chunk_index=i,
            text=f"{_document(i)}\n\nSection {i} of the big runbook.",
            title=f"Big > Section {i}",
            metadata={"rel_path": "big.md", "front_matter": front, "tags": ["ops"]},
        )
        for i in range(60)
    ]
    retrieval.indexer.index("docs", chunks)
    response = retrieval.searcher.search(
        SearchRequest(
            query="restore a backup", domain="docs", tenant="acme", top_k=50, max_chars=12_000
        )
    )
    store.close()
    assert len(response.hits) == 50
    assert [("front_matter" in h.metadata) for h in response.hits] == [True] + [False] * 49
    assert response.hits[0].metadata["tags"] == ["ops"]
    size = len(response.model_dump_json())
    assert size < 12_000 + 50 * 700, size  # was 12,000 + 50 x 7.5 KB
