"""A section filter finds every section's text, also where it was packed into its parent's chunk.

Field report: ``section=2.1`` found nothing in a contract whose section 2 (with 2.1 and 2.2)
fit one chunk: the chunk's section prefixes came from its own path (``2``) only. Invariant, as
a property over generated contracts: for every clause of the tree, a chunk whose derived
``section_prefixes`` hold the clause's path (and its label) holds the clause's first line.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.html import html_to_text
from server.ingest.chunkers.legal import Clause, chunk_legal, parse_clauses
from server.retrieval.chunk_record import to_payload
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.filter_fields import SECTION_PREFIXES_FIELD, derived_filter_fields
from server.retrieval.types import Chunk

SENTENCES = [
    "Either party may terminate this Agreement on thirty days written notice.",
    "The Customer shall pay each invoice within forty five days of receipt.",
    "Each party keeps the other party's information confidential for five years after the "
    "end of this Agreement, except information that is public or independently developed.",
]
item = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=3).map(" ".join)
clause = st.tuples(item, st.lists(item, max_size=3))
contract = st.lists(st.lists(clause, max_size=4), min_size=1, max_size=4)


def render(sections: list[list[tuple[str, list[str]]]]) -> str:
    lines = ["Services Agreement", ""]
    for n, clauses in enumerate(sections, start=1):
        lines += [f"{n}. Terms of Part {n}", ""]
        for k, (text, items) in enumerate(clauses, start=1):
            lines += [f"{n}.{k} {text}", ""]
            lines += [f"    ({chr(97 + i)}) {t}" for i, t in enumerate(items)] + [""]
    return "\n".join(lines)


def clause_paths(node: Clause, path: list[str]) -> list[tuple[list[str], str]]:
    out = []
    for child in node.children:
        first = next((line.strip() for line in child.lines if line.strip()), "")
        out.append(([*path, child.label], first))
        out += clause_paths(child, [*path, child.label])
    return out


@pytest.fixture(scope="module")
def budget(embedder: DenseEmbedder) -> TokenBudget:
    return TokenBudget(embedder.count_tokens, 160)


@given(sections=contract)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_section_filter_finds_every_section(
    sections: list[list[tuple[str, list[str]]]], budget: TokenBudget
) -> None:
    text = render(sections)
    pieces = chunk_legal(text, budget, "Services Agreement")
    prefixes = [
        derived_filter_fields("/c/agreement.txt", p.metadata).get(SECTION_PREFIXES_FIELD, [])
        for p in pieces
    ]
    for path, first in clause_paths(parse_clauses(text, "Services Agreement"), []):
        for wanted in (" > ".join(path), path[-1]):
            found = [p for p, pre in zip(pieces, prefixes, strict=True) if wanted in pre]
            assert any(first[:40] in " ".join(p.text.split()) for p in found), (wanted, first)


def test_sections_within_is_filter_plumbing_not_payload(budget: TokenBudget) -> None:
    """The packed sub-clauses' paths reach the section filter, not the stored metadata."""
    text = render([[("Either party may terminate.", ["It pays.", "It keeps."])]])
    [piece] = [p for p in chunk_legal(text, budget, "A") if p.metadata["section_path"] == "1"]
    chunk = Chunk(
        tenant="t", doc_id="d", source="/c/a.txt", text=piece.text, metadata=piece.metadata
    )
    payload = to_payload(chunk, 10)
    assert {"1.1", "1 > 1.1 > (b)", "(b)"} <= set(payload[SECTION_PREFIXES_FIELD])
    assert "sections_within" not in payload


long_section = st.tuples(
    st.sampled_from(["Delivery and Acceptance", "Fees", "Term"]),
    st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=14).map(" ".join),
    st.integers(min_value=0, max_value=2),  # 0: plain text, 1: "## 2. Fees", 2: "## Fees"
)


@given(
    sections=st.lists(long_section, min_size=1, max_size=3),
    preamble=st.sampled_from(["none", "sentence", "titles"]),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_chunk_holds_a_heading_alone(
    sections: list[tuple[str, str, int]], preamble: str, budget: TokenBudget
) -> None:
    """Field report: a long section opened with a chunk holding only ``## 2. Delivery``, and
    the title line ``Supply Agreement`` (and Apache's title block, ``Apache License`` /
    ``Version 2.0, January 2004`` / ``TERMS AND CONDITIONS ...``) was a chunk of its own; they
    match their words and hold nothing. Every chunk holds text beyond headings."""
    lines = ["# Supply Agreement" if any(md for *_, md in sections) else "Supply Agreement", ""]
    if preamble == "sentence":
        lines += ["This Agreement is made between the Supplier and the Customer.", ""]
    if preamble == "titles":
        lines += ["Version 2.0, January 2024", "https://example.org/terms/", ""]
        lines += ["TERMS AND CONDITIONS FOR SUPPLY", ""]
    for n, (heading, body, md) in enumerate(sections, start=1):
        lines += [{0: f"{n}. {heading}", 1: f"## {n}. {heading}", 2: f"## {heading}"}[md], ""]
        lines += [body, ""]
    pieces = chunk_legal("\n".join(lines), budget, "Supply Agreement")
    for piece in pieces:
        assert any(s[:30] in piece.text for s in [*SENTENCES, "This Agreement is made"]), piece


ANNEXES = [
    ("SCHEDULE {n}\nTHE PRODUCTS", "Schedule {n}", "Schedule {n} THE PRODUCTS"),
    ("Schedule {n} - Prices", "Schedule {n}", "Schedule {n} Prices"),
    ("EXHIBIT {a}\nSERVICE LEVELS", "Exhibit {a}", "Exhibit {a} SERVICE LEVELS"),
    ("APPENDIX: How to apply these terms", "Appendix", "Appendix How to apply these terms"),
    ("Annex {n}", "Annex {n}", "Annex {n}"),
]


@given(
    clauses=st.integers(min_value=1, max_value=4),
    annexes=st.lists(st.sampled_from(ANNEXES), min_size=1, max_size=3),
    articles=st.booleans(),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_schedules_and_appendices_are_parts_of_their_own(
    clauses: int, annexes: list[tuple[str, str, str]], articles: bool, budget: TokenBudget
) -> None:
    """Field report: ``SCHEDULE 1`` / ``THE PRODUCTS`` and ``SCHEDULE 2`` / ``PRICES`` were
    text of clause 5 (the governing law), so a price list was cited as ``5``; Apache's
    ``APPENDIX: How to apply ...`` was cited as section 9; ``ARTICLE 1`` / ``DEFINITIONS`` lost
    its title. Each annex is a part of its own after the clauses, titled as written."""
    lines = ["Supply Agreement", ""]
    expected = []
    for n in range(1, clauses + 1):
        heading = f"ARTICLE {n}\nDEFINITIONS" if articles else f"{n}. Definitions"
        lines += [heading, "", f"{SENTENCES[1]}", ""]
        label = f"Art. {n}" if articles else f"{n}"
        expected.append((label, f"{label} DEFINITIONS" if articles else f"{n} Definitions"))
    for k, (written, label, title) in enumerate(annexes, start=1):
        values = {"n": k, "a": "ABCD"[k - 1]}
        lines += [written.format(**values), "", "Grade A: GBP 1.20 per unit.", ""]
        expected.append((label.format(**values), title.format(**values)))
    text = "\n".join(lines)
    tree = parse_clauses(text, "Supply Agreement")
    assert [(c.label, c.heading) for c in tree.children] == expected
    cited = {
        p.metadata["section_path"]
        for p in chunk_legal(text, budget, "Supply Agreement")
        if "GBP 1.20" in p.text
    }
    assert cited == {label for label, _ in expected[clauses:]}


@settings(max_examples=40, deadline=None)
@given(
    items=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=5),
    start=st.integers(min_value=1, max_value=9),
    inner=st.sampled_from(["a", "i", "A", "1"]),
)
def test_html_ordered_lists_number_their_clauses(items: list[int], start: int, inner: str) -> None:
    """Fresh user: a contract numbering its clauses with nested <ol> lost every number with the
    markup, so it was one unsectioned chunk and section=2(a) found nothing. Invariant: an
    ordered list's items carry the numbers a browser shows them with (``start``, ``type``;
    letters and roman numerals as ``(a)``, ``(iv)``; a numbered list in a numbered item as
    ``4.1``), and the legal chunker reads them as clauses and sub-clauses."""
    letters = {"a": "abcdefghij", "A": "ABCDEFGHIJ", "i": ["i", "ii", "iii", "iv", "v"]}.get(inner)
    body, expected = [], []
    for n, subs in enumerate(items, start=start):
        inner_items = "".join(f"<li>The party shall do thing {k}.</li>" for k in range(subs))
        nested = f'<ol type="{inner}">{inner_items}</ol>' if subs else ""
        body.append(f"<li><strong>Heading {n}.</strong> Clause {n} text.{nested}</li>")
        # a numbered list in a numbered item: its items are n.1, n.2 (third trial: read
        # alone, they were clauses 1 and 2 of the document)
        labels = [f"({letters[k]})" if letters else f"{n}.{k + 1}" for k in range(subs)]
        expected.append((str(n), [(label, []) for label in labels]))
    page = f'<html><body><h1>Agreement</h1><ol start="{start}">{"".join(body)}</ol></body></html>'
    text = html_to_text(page)
    tree = parse_clauses(text, "Agreement", titles=["Agreement"])

    def shape(clause: Any) -> list[Any]:
        return [(c.label, shape(c)) for c in clause.children]

    assert shape(tree) == expected, text
