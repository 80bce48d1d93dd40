"""Legal texts written in Markdown chunk as the same texts without their Markdown.

Field report: a contract kept as ``contract.md`` got titles with the heading marks in them
(``# Master Services Agreement > 2.1``), its ``## 2. Term`` headings were read as text (so
sections were not sections), and ``2.2 **Termination for cause.**`` was no clause (emphasis
hid the capital a heading needs). Invariant, as a property over generated contracts: the
clause tree (labels, headings) and the chunks' titles and section paths of the Markdown text
are those of the plain text it renders.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.legal import Clause, chunk_legal, parse_clauses
from server.retrieval.embedder import DenseEmbedder

TITLE_WORDS = ["Term", "Termination", "Fees", "Confidentiality", "Liability", "Notices"]
SENTENCES = [
    "Either party may terminate this Agreement on thirty days written notice.",
    "The Customer shall pay each invoice within forty five days of receipt.",
    "Each party keeps the other party's information confidential.",
]

clause = st.tuples(
    st.none() | st.lists(st.sampled_from(TITLE_WORDS), min_size=1, max_size=3).map(" ".join),
    st.sampled_from(SENTENCES),
)
section = st.tuples(
    st.lists(st.sampled_from(TITLE_WORDS), min_size=1, max_size=2).map(" ".join),
    st.lists(clause, max_size=3),
    st.integers(min_value=2, max_value=3),  # the Markdown heading level
)
contract = st.lists(section, min_size=1, max_size=4)


def render(sections: list[tuple[str, list[tuple[str | None, str]], int]], *, md: bool) -> str:
    lines = ["# Master Services Agreement" if md else "Master Services Agreement", ""]
    for n, (heading, clauses, level) in enumerate(sections, start=1):
        lines += [f"{'#' * level} {n}. {heading}" if md else f"{n}. {heading}", ""]
        for k, (run_in, sentence) in enumerate(clauses, start=1):
            title = "" if run_in is None else (f"**{run_in}.** " if md else f"{run_in}. ")
            lines += [f"{n}.{k} {title}{sentence}", ""]
    return "\n".join(lines)


def shape(node: Clause) -> tuple[str, str, list[object]]:
    return (node.label, node.heading, [shape(child) for child in node.children])


@pytest.fixture(scope="module")
def big_budget(embedder: DenseEmbedder) -> TokenBudget:
    return TokenBudget(embedder.count_tokens, 256)


@given(sections=contract)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_markdown_contract_chunks_as_its_plain_text(
    sections: list[tuple[str, list[tuple[str | None, str]], int]], big_budget: TokenBudget
) -> None:
    plain, md = render(sections, md=False), render(sections, md=True)
    assert shape(parse_clauses(md, "Master Services Agreement")) == shape(
        parse_clauses(plain, "Master Services Agreement")
    )
    pieces = {
        name: [
            (p.title, p.metadata.get("section_path")) for p in chunk_legal(text, big_budget, "c")
        ]
        for name, text in (("plain", plain), ("md", md))
    }
    assert pieces["md"] == pieces["plain"]
    assert not any("#" in title or "*" in title for title, _ in pieces["md"])


def test_unnumbered_markdown_headings_are_sections(big_budget: TokenBudget) -> None:
    text = (
        "# Data Processing Addendum\n\n## Definitions\n\nTerms have the meaning in the "
        "Agreement.\n\n## Security\n\n### Encryption\n\nData is encrypted at rest.\n"
    )
    root = parse_clauses(text, "Data Processing Addendum")
    assert shape(root) == (
        "",
        "",
        [
            ("Definitions", "Definitions", []),
            ("Security", "Security", [("Encryption", "Encryption", [])]),
        ],
    )
    titles = [p.title for p in chunk_legal(text, big_budget, "dpa")]
    assert all(t.startswith("Data Processing Addendum") for t in titles), titles


@given(
    sections=contract,
    unnumbered=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(TITLE_WORDS)), max_size=3),
    front_matter=st.booleans(),
    setext=st.booleans(),
    article=st.booleans(),
)
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_numbered_sections_stay_sections_beside_unnumbered_headings(
    sections: list[tuple[str, list[tuple[str | None, str]], int]],
    unnumbered: list[tuple[int, str]],
    front_matter: bool,
    setext: bool,
    article: bool,
    big_budget: TokenBudget,
) -> None:
    """Field reports: ``## Confidentiality`` took the numbered ``## 4.`` and ``## 5.`` after it
    as its sub-clauses (so did an underlined ``Subprocessors``, and ``## ARTICLE V`` at the same
    level), and under a title from front matter the text's own ``# Agreement`` took every
    section. Invariant: a numbered clause's section path is its number (and its sub-clauses'
    under it) whatever other headings of its layout stand around it."""

    def heading(text: str) -> list[str]:
        return [text, "-" * len(text), ""] if setext else [f"## {text}", ""]

    lines = ["# Master Services Agreement", ""]
    for n, (title, clauses, _) in enumerate(sections, start=1):
        for at, word in unnumbered:
            if at == n - 1:
                lines += [*heading(word), "Some words.", ""]
        lines += heading(f"{n}. {title}")
        lines += [f"{n}.{k} {sentence}\n" for k, (_, sentence) in enumerate(clauses, start=1)]
    if article:
        lines += [*heading("ARTICLE IX General"), "Other terms.", ""]
    text = "\n".join(lines)
    if front_matter:  # the title comes from front matter, the text keeps its own title line
        pieces = chunk_legal(text, big_budget, "MSA", title_given=True)
    else:
        pieces = chunk_legal(text, big_budget, "c")
    paths = {str(p.metadata.get("section_path")) for p in pieces}
    numbered = {p for p in paths if p[:1].isdigit()}
    assert {p.split(" > ")[0] for p in numbered} == {str(n) for n in range(1, len(sections) + 1)}
    tops = {p.split(" > ")[0] for p in paths}
    assert tops <= {*(str(n) for n in range(1, 9)), *(w for _, w in unnumbered), "Art. IX", ""}


def test_links_and_code_spans_in_a_heading_read_as_their_text(big_budget: TokenBudget) -> None:
    text = (
        "# Terms\n\n## 3. [Fees](https://example.com/fees) and `Payment`\n\nFees are due monthly.\n"
    )
    pieces = chunk_legal(text, big_budget, "terms")
    assert [(p.title, p.metadata["section_path"]) for p in pieces][-1] == (
        "Terms > 3 Fees and Payment",
        "3",
    )
    # a CommonMark backslash escape ("5\." keeps a list from starting) is its character
    escaped = chunk_legal("# Terms\n\n## 5\\. Escaped\n\nText.\n", big_budget, "terms")
    assert escaped[-1].metadata["section_path"] == "5" and "\\" not in escaped[-1].title


ROMAN = ["I", "II", "III", "IV", "V", "VI"]


def _label(kind: str, n: int, k: int | None) -> str:
    """A heading of ``kind`` for section n (k: its k-th sub-heading)."""
    number = str(n) if k is None else f"{n}.{k}"
    return {
        "numbered": f"{number}. Terms",
        "article": f"ARTICLE {ROMAN[n - 1]} Terms" if k is None else f"Article {number} Terms",
        "section": f"Section {number} Terms" if k is not None else f"Section {n} Terms",
        "plain": f"Terms {number}",
    }[kind]


@given(
    outline=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=4),
    top=st.sampled_from(["numbered", "article", "section", "plain"]),
    sub=st.sampled_from(["numbered", "article", "section", "plain"]),
)
@settings(max_examples=80, deadline=None)
def test_markdown_levels_decide_the_nesting(outline: list[int], top: str, sub: str) -> None:
    """Field report: ``## 1. General`` then ``### Section 1.1``: the keyword ranked above the
    number, so ``## 2. Rent`` became a sub-clause of Section 1.2, and ``### Section 2.01``
    was no child of ``## ARTICLE II``. Invariant: every ``###`` heading is a child of the
    ``##`` heading before it, whatever kinds of numbering the two levels use."""
    lines = ["# Agreement", ""]
    for n, subs in enumerate(outline, start=1):
        lines += [f"## {_label(top, n, None)}", "", "Body text.", ""]
        for k in range(1, subs + 1):
            lines += [f"### {_label(sub, n, k)}", "", "Sub text.", ""]
    root = parse_clauses("\n".join(lines), "Agreement")
    assert [len(section.children) for section in root.children] == outline
