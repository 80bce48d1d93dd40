"""A legal text's clauses do not depend on where its paragraphs' lines wrap.

Field report: in plain-text GPL-3, the wrapped lines ``(1) assert copyright on the software,
and (2) offer ...`` and ``7.  This requirement modifies the requirement in section 4`` (the
line before ends ``... under section``) were read as clause headings, so the preamble became
clause ``(1)`` and section 5's text a second section ``7``; MPL-1.1's ``including without
limitation`` / ``Section 2.2. The Source Code ...`` made every section after 3.1 a child of
"Section 2.2"; ``1. Redistributions of source code must retain the copyright`` (a sentence
wrapped after ``copyright``) became a heading title. Invariant, as a property over generated
contracts whose running text cites sections, clauses and numerals after a word (``section
7.``, ``six (6) months``): wrapping every paragraph at any width from 50 to 100 columns gives
the clause tree (labels, headings, nesting) of the unwrapped text.
"""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from server.ingest.chunkers.legal import Clause, parse_clauses

TITLES = ["Term", "Termination", "Fees", "Confidentiality", "Liability", "Notices"]
SENTENCES = [
    "Either party may terminate this Agreement on thirty days written notice.",
    "This requirement modifies the requirement in section 7. It applies to each copy.",
    "The licence is governed by this Agreement including without limitation Section 2.2. "
    "The Source Code version may be distributed only under its terms.",
    "The code must remain available for at least six (6) months after a later version.",
    "Developers protect your rights with two steps, namely (1) assert copyright on the "
    "software, and (2) offer you this License.",
    "The rights in Article 4 and those set out in clause 9.2 of the order form survive.",
    "Any notice under paragraph (b) is given in writing to the address in Schedule 2.",
    'In this clause "Services" means the services described in the order form.',
    "The Customer shall pay each invoice within forty five days of receipt.",
]

paragraph = st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=4).map(" ".join)
clause = st.tuples(st.none() | st.sampled_from(TITLES), paragraph, st.lists(paragraph, max_size=2))
section = st.tuples(st.sampled_from(TITLES), st.lists(clause, max_size=3))
contract = st.lists(section, min_size=1, max_size=4)


def render(sections: list[tuple[str, list[tuple[str | None, str, list[str]]]]], width: int) -> str:
    def para(text: str, indent: str = "") -> list[str]:
        if not width:
            return [indent + text, ""]
        return [*textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent), ""]

    out = ["Master Services Agreement", ""]
    for n, (heading, clauses) in enumerate(sections, start=1):
        out += [f"{n}. {heading}", ""]
        for k, (run_in, text, items) in enumerate(clauses, start=1):
            out += para(f"{n}.{k} {'' if run_in is None else run_in + '. '}{text}")
            for letter, item in zip("abc", items, strict=False):
                out += para(f"({letter}) {item}", "    ")
    return "\n".join(out)


def shape(node: Clause) -> tuple[str, str, list[object]]:
    return (node.label, node.heading, [shape(child) for child in node.children])


@given(sections=contract, width=st.integers(min_value=50, max_value=100))
@settings(max_examples=300, deadline=None)
def test_where_lines_wrap_does_not_change_the_clauses(
    sections: list[tuple[str, list[tuple[str | None, str, list[str]]]]], width: int
) -> None:
    unwrapped = parse_clauses(render(sections, 0))
    assert shape(parse_clauses(render(sections, width))) == shape(unwrapped)
    # the unwrapped text's clauses are the ones written: no label from running text
    labels = [c.label for s in unwrapped.children for c in [s, *s.children]]
    written = [f"{n}" for n in range(1, len(sections) + 1)]
    assert [x for x in labels if "." not in x] == written


def test_gpl3_wrapped_lines_are_not_clauses() -> None:
    """The two GPL-3 lines of the report, as the licence wraps them."""
    text = "\n".join(
        [
            "  Developers that use the GNU GPL protect your rights with two steps:",
            "(1) assert copyright on the software, and (2) offer you this License",
            "giving you legal permission to copy, distribute and/or modify it.",
            "",
            "  5. Conveying Modified Source Versions.",
            "",
            "    b) The work must carry prominent notices stating that it is",
            "    released under this License and any conditions added under section",
            "    7.  This requirement modifies the requirement in section 4 to",
            '    "keep intact all notices".',
            "",
            "  6. Conveying Non-Source Forms.",
        ]
    )
    assert [c.label for c in parse_clauses(text).children] == ["5", "6"]


def test_a_number_in_words_takes_the_figure_after_it() -> None:
    """Field report: ``not less than`` / ``sixty`` / ``(60) days' written notice`` made a
    clause ``(60)``."""
    text = "3.4 The Supplier may amend it by giving not less than\nsixty\n(60) days' notice.\n"
    for words in ("sixty", "twenty-one", "one hundred"):
        tree = parse_clauses(text.replace("sixty", words))
        assert [c.label for c in tree.children[0].children] == [], words
