"""A legal document's metadata does not depend on its layout.

Field reports: ``governed by the laws of the State of New`` / ``York`` (a wrapped line) was
recorded as jurisdiction "State of New", ``England and`` / ``Wales`` as "England", and
``governed by the`` / ``laws of England and Wales`` as none, so ``jurisdiction=New York``
found nothing; "SUPPLY AGREEMENT" (whose parties are "the Supplier" and "the Buyer", never
"party") and "COMMERCIAL LEASE" were typed ``other``, and "SOFTWARE LICENSE AGREEMENT" (a
contract between two parties) ``licence``, so ``doc_type=contract`` missed them.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.ingest.chunkers.legal import detect_doc_type, detect_jurisdiction

SENTENCES = [
    ("This Agreement is governed by the laws of the State of New York.", "State of New York"),
    ("This Lease shall be governed by the laws of England and Wales.", "England and Wales"),
    (
        "This Agreement is governed by, and construed in accordance with, the laws of the "
        "Federal Republic of Germany.",
        "Federal Republic of Germany",
    ),
]


@given(
    sentence=st.sampled_from(SENTENCES),
    breaks=st.lists(st.sampled_from([" ", "\n", "\n    ", "  "]), min_size=30, max_size=30),
)
def test_the_jurisdiction_does_not_depend_on_where_lines_break(
    sentence: tuple[str, str], breaks: list[str]
) -> None:
    text, place = sentence
    words = text.split(" ")
    laid_out = words[0] + "".join(b + w for b, w in zip(breaks, words[1:], strict=False))
    assert detect_jurisdiction(f"1. Law\n\n{laid_out}\n") == place


def test_a_title_that_names_a_contract_types_it_a_contract() -> None:
    body = "\n\n1. Supply\n\nThe Supplier sells the Products to the Buyer.\n"
    for title in ("SUPPLY AGREEMENT", "COMMERCIAL LEASE", "# Software License Agreement"):
        assert detect_doc_type(title + body) == "contract", title
    licence = "Apache License\nVersion 2.0, January 2004\n\nTERMS AND CONDITIONS FOR USE\n"
    assert detect_doc_type(licence + '1. Definitions. "License" shall mean the terms.') == (
        "licence"
    )
    # a clause's first sentence that mentions an agreement is no title
    clause = "5. Unless You state otherwise, this License Agreement applies to the Work.\n"
    assert detect_doc_type(clause + "The licensor grants permission to redistribute.") == (
        "licence"
    )
