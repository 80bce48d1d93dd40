"""An empty result says which filter matched nothing.

``doc_type: "md"`` (the stored value is ``markdown``), an unknown tag or language returned no
hits and no note, while ``path_prefix`` said "no indexed file is under ...". The invariant:
whenever a filtered search comes back empty because its filters select no chunk of the tenant,
a note names the first filter that matches nothing on its own, or says they match nothing
together; a search that finds hits, or finds none for another reason, gets no filter note.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import InvalidRequestError
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.request_filters import filter_names, resolve_filters
from server.retrieval.searcher import FILTERED
from server.retrieval.types import Chunk, SearchRequest
from server.settings import Domain, Settings

TENANT, OTHER = "acme", "globex"
FILES = [  # (path in the ingested folder, doc_type, tags)
    ("guides/vpn.md", "markdown", ["ops"]),
    ("guides/leave.md", "markdown", ["hr"]),
    ("notes/rota.txt", "text", ["ops"]),
]
TEXT = "Connect to the office VPN before the on-call rota starts."


@pytest.fixture
def searcher(edge_store: EdgeStore, embedder: DenseEmbedder) -> Any:
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    chunks = [  # as ingestion stores a file: its absolute source and its path in the root
        Chunk(
            tenant=TENANT,
            doc_id=rel,
            source=f"/w/{rel}",
            text=TEXT,
            metadata={"doc_type": doc_type, "tags": tags, "rel_path": rel},
        )
        for rel, doc_type, tags in FILES
    ]
    # another tenant holds the values this one lacks: a note must not count its chunks
    chunks.append(
        Chunk(
            tenant=OTHER,
            doc_id="x.pdf",
            source="x.pdf",
            text=TEXT,
            metadata={"doc_type": "pdf", "tags": ["legal"]},
        )
    )
    retrieval.indexer.index("docs", chunks)
    return retrieval.searcher


FILTER_NOTES = (
    "no indexed passage has ",
    "no indexed file is under ",
    "no indexed passage matches all",
)


def _filter_notes(notes: list[str]) -> list[str]:
    return [n for n in notes if n.startswith(FILTER_NOTES)]


def _matches(source: str, doc_type: str, tags: list[str], name: str, value: Any) -> bool:
    values = [value] if isinstance(value, str) else value
    if name == "doc_type":
        return doc_type in values
    if name == "tags":
        return bool(set(tags) & set(values))
    return any(source == v or source.startswith(v.rstrip("/") + "/") for v in values)


_doc_type = st.sampled_from(["markdown", "text", "md", "pdf"])
_tags = st.sampled_from(["ops", "hr", "legal", "nope"])
_filters = st.fixed_dictionaries(
    {},
    optional={
        "doc_type": st.one_of(_doc_type, st.lists(_doc_type, min_size=1, max_size=2)),
        "tags": st.one_of(_tags, st.lists(_tags, min_size=1, max_size=2)),
        "path_prefix": st.sampled_from(["guides", "notes", "archive"]),
    },
)


@pytest.mark.slow
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filters=_filters, mode=st.sampled_from(["hybrid", "dense", "bm25"]))
def test_an_empty_result_names_the_filter_that_matched_nothing(
    searcher: Any, filters: dict[str, Any], mode: str
) -> None:
    request = SearchRequest("office vpn rota", domain="docs", tenant=TENANT, filters=filters)
    response = searcher.search(replace(request, mode=mode))
    selected = [f for f in FILES if all(_matches(*f, n, v) for n, v in filters.items())]
    filter_notes = _filter_notes(response.notes)
    if selected:  # every chunk holds the query's words: each stage finds them
        assert response.hits and not filter_notes, (filters, response.notes)
        return
    assert not response.hits
    alone = [n for n, v in filters.items() if not any(_matches(*f, n, v) for f in FILES)]
    if alone:
        (note,) = filter_notes
        assert alone[0] in note and (
            note.startswith("no indexed file is under path_prefix")
            if alone[0] == "path_prefix"
            else note.startswith(f"no indexed passage has {alone[0]} ")
        ), (filters, note)
    else:
        assert filter_notes == [
            "no indexed passage matches all the filters together: " + ", ".join(filters)
        ]


def test_a_mistaken_doc_type_names_the_values_it_takes(searcher: Any) -> None:
    request = SearchRequest("vpn", domain="docs", tenant=TENANT, filters={"doc_type": "md"})
    notes = searcher.search(request).notes
    assert (
        "no indexed passage has doc_type 'md' (it is the file type: 'markdown', 'rst', 'html', "
        "'pdf' or 'text')"
    ) in notes


def test_a_windows_style_glob_that_matches_nothing_says_how_backslashes_read(
    searcher: Any,
) -> None:
    """path_prefix reads a backslash as a folder separator; path_glob reads one before a
    wildcard as an escape, so ``guides\\*.md`` (a Windows habit) matches nothing: the note
    says why. The same glob written with / finds the files."""

    def notes(glob: str) -> list[str]:
        request = SearchRequest("vpn", domain="docs", tenant=TENANT, filters={"path_glob": glob})
        return searcher.search(request).notes

    assert any("separate folders with /" in n for n in notes("guides\\*.md"))
    assert not any("path_glob" in n for n in notes("guides/*.md"))
    assert not any("separate folders" in n for n in notes("nothing/*.md"))  # no backslash


def test_a_bm25_search_without_matching_terms_gets_no_filter_note(searcher: Any) -> None:
    request = SearchRequest(
        "zebra", domain="docs", tenant=TENANT, filters={"doc_type": "markdown"}, mode="bm25"
    )
    response = searcher.search(request)
    assert not response.hits
    assert not _filter_notes(response.notes), response.notes


BLANKS: list[Any] = ["", "  ", [], ["", " "]]


def test_every_blank_filter_value_is_one_line_naming_its_filter(edge_store: EdgeStore) -> None:
    """Whatever the domain, filter and blank value: one line that names the filter (it said
    "a filter value is empty", which of three given it did not say)."""
    settings = Settings(reranker_model="none")
    for domain in Domain:
        for name in filter_names(domain):
            for blank in BLANKS:
                with pytest.raises(InvalidRequestError) as raised:
                    resolve_filters(edge_store, settings, TENANT, domain, {name: blank})
                message = str(raised.value)
                assert f"'{name}'" in message and "\n" not in message, (domain, name, blank)


def test_doc_type_filters_match_in_any_case(edge_store: EdgeStore) -> None:
    """doc_type values are stored lower-case (a file format, a legal type): `doc_type=Contract`
    or `Markdown` found nothing before."""
    settings = Settings(reranker_model="none")
    for domain, typed in ((Domain.LEGAL, "Contract"), (Domain.DOCS, ["Markdown", "PDF"])):
        resolved = resolve_filters(edge_store, settings, TENANT, domain, {"doc_type": typed})
        expected = typed.lower() if isinstance(typed, str) else [v.lower() for v in typed]
        assert resolved.conditions["doc_type"] == expected


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_a_filter_that_selects_nothing_is_not_blamed_on_the_keywords(
    searcher: Any, mode: str
) -> None:
    """A BM25 search whose filter excluded every passage also said "no indexed passage
    contains any of the query's keywords", which was false (they do, outside the filter): a
    keyword note of a filtered search says it speaks of the passages the filters select."""
    request = SearchRequest("office vpn rota", domain="docs", tenant=TENANT, mode=mode,
                            filters={"doc_type": "pdf"})  # fmt: skip
    notes = searcher.search(request).notes
    assert "no indexed passage has doc_type 'pdf'" in " ".join(notes), notes
    keyword_notes = [n for n in notes if "query's keywords" in n]
    assert all(FILTERED in n for n in keyword_notes), notes
    if mode == "bm25":  # BM25 found nothing: its note is there, and says where it looked
        assert keyword_notes, notes


def test_recorded_fields_match_in_any_case(edge_store: EdgeStore, embedder: DenseEmbedder) -> None:
    """Tags, jurisdictions and symbol kinds are stored as written or detected (``EU``,
    ``US-CA``, a front-matter tag ``Ops``): a filter matches them in any case, through the
    tenant's own recorded spellings only (``jurisdiction=eu`` found nothing before)."""
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    contracts = [
        ("eu.txt", "EU", ["Vendor"]),
        ("ca.txt", "US-CA", ["vendor", "Ops"]),
        ("de.txt", "DE", []),
    ]
    retrieval.indexer.index(
        "legal",
        [
            Chunk(tenant=TENANT, doc_id=name, source=f"/w/{name}", text=f"{TEXT} ({name})",
                  metadata={"doc_type": "contract", "jurisdiction": j, "tags": tags})
            for name, j, tags in contracts
        ]
        + [Chunk(tenant=OTHER, doc_id="x.txt", source="/x.txt", text=TEXT,
                 metadata={"doc_type": "contract", "jurisdiction": "Eu", "tags": ["VENDOR"]})],
    )  # fmt: skip

    def found(filters: dict[str, Any]) -> list[str]:
        request = SearchRequest("VPN", domain="legal", tenant=TENANT, filters=filters)
        return sorted(h.doc_id for h in retrieval.searcher.search(request).hits)

    assert found({"jurisdiction": "eu"}) == ["eu.txt"]
    assert found({"jurisdiction": ["us-ca", "de"]}) == ["ca.txt", "de.txt"]
    assert found({"tags": "VENDOR"}) == ["ca.txt", "eu.txt"]
    assert found({"tags": "ops", "jurisdiction": "US-CA"}) == ["ca.txt"]
    assert found({"jurisdiction": "fr"}) == []
    settings = retrieval.settings
    resolved = resolve_filters(edge_store, settings, TENANT, Domain.LEGAL, {"jurisdiction": "eu"})
    assert resolved.conditions["jurisdiction"] == ["eu", "EU"]  # not the other tenant's "Eu"


PLACES = ["State of Delaware", "the State of New York", "England and Wales", "Ontario"]


@given(
    place=st.sampled_from(PLACES),
    spelling=st.sampled_from(["own", "as written", "upper", "part"]),
)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_place_is_found_by_its_own_name(
    edge_store: EdgeStore, embedder: DenseEmbedder, place: str, spelling: str
) -> None:
    """Fresh user: jurisdictions are recorded as the contract names them (``State of
    Delaware``, ``England and Wales``), and jurisdiction=Delaware (or New York, or england)
    found nothing, with a note saying no passage had it. Invariant: a place is found by its
    own name in any case, without the polity words, and by each of a pair; another place's
    name finds nothing of it."""
    retrieval = assemble(Settings(reranker_model="none"), edge_store, embedder)
    chunks = [
        Chunk(tenant=TENANT, doc_id=p, source=f"/w/{i}.txt", text=f"{TEXT} ({p})",
              metadata={"doc_type": "contract", "jurisdiction": p})
        for i, p in enumerate(PLACES)
    ]  # fmt: skip
    retrieval.indexer.index("legal", chunks)
    own = place.removeprefix("the ").removeprefix("State of ").split(" and ")[0]
    value = {
        "own": own,
        "as written": place,
        "upper": own.upper(),
        "part": place.split(" and ")[-1],
    }[spelling]
    request = SearchRequest("VPN", domain="legal", tenant=TENANT, filters={"jurisdiction": value})
    assert [h.doc_id for h in retrieval.searcher.search(request).hits] == [place]
