"""Prefix and glob filters: the derived payload fields and the glob matcher."""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.retrieval.filter_fields import (
    _brackets,
    _glob_regex,
    compile_glob,
    derived_filter_fields,
    glob_literal_prefix,
    glob_matches,
    normalize_path,
    normalize_section,
    path_forms,
    path_prefixes,
    section_keys,
    section_prefixes,
    unescape_glob,
)


def test_path_prefixes_cover_absolute_and_relative_paths() -> None:
    fields = derived_filter_fields("/r/docs/a.md", {"rel_path": "docs/a.md"})
    assert fields["path_prefixes"] == ["/r", "/r/docs", "/r/docs/a.md", "docs", "docs/a.md"]
    assert path_prefixes("./a//b/") == ["a", "a/b"]
    assert derived_filter_fields("corpus-id-17", {}) == {}


def test_section_prefixes() -> None:
    assert normalize_section("12>12.3 >(b)") == "12 > 12.3 > (b)"
    assert section_prefixes("12 > 12.3 > (b)", "(b)") == [
        "12",
        "12 > 12.3",
        "12 > 12.3 > (b)",
        "12.3",
        "12.3 > (b)",
        "12.3(b)",
        "(b)",
    ]
    fields = derived_filter_fields("/r/msa.txt", {"section_path": "Art. 14 > (2)"})
    assert {"Art. 14", "14", "Art. 14(2)", "14(2)"} <= set(fields["section_prefixes"])


LABELS = {
    "keyword": st.sampled_from(["Art.", "Section", "§", "Clause", "Schedule"]).flatmap(
        lambda kw: st.integers(1, 30).map(lambda n: f"{kw} {n}")
    ),
    "numbered": st.lists(st.integers(1, 20), min_size=1, max_size=3).map(
        lambda ns: ".".join(map(str, ns))
    ),
    "paren": st.sampled_from(["(a)", "(b)", "(ii)", "(3)", "(C)"]),
    "term": st.sampled_from(["“Personal Data”", "“License”", '"Services"']),
}


def _typed(label: str, draw: st.DrawFn) -> str:
    """``label`` as a reader may type it: another keyword spelling and case, no space after
    §, straight or no quotes."""
    keyword = re.match(r"^(Art\.|Section|§|Clause|Schedule) (.*)$", label)
    if keyword:
        words = {"Art.": ["Article", "ARTICLE", "art.", "Art"], "Section": ["SECTION", "Sec."]}
        spelled = draw(st.sampled_from([keyword[1], *words.get(keyword[1], [])]))
        joiner = draw(st.sampled_from(["", " "])) if keyword[1] == "§" else " "
        return f"{spelled}{joiner}{keyword[2]}"
    if label.startswith(("“", '"')):
        term = label.strip('“”"')
        return draw(st.sampled_from([label, term, f'"{term}"']))
    return label


@given(data=st.data())
def test_a_section_is_found_however_it_is_cited(data: st.DataObject) -> None:
    """Field report: ``section=4.2(a)``, ``4.2 > (a)``, ``Article 4``, ``Section 4.2`` (for a
    clause numbered 4.2), ``§3`` and ``"Personal Data"`` (straight quotes) found nothing; only
    the stored path, as the chunker wrote it, did. Any run of the path's labels, cited in any
    of those forms, finds the chunk (under a schedule, a run from the schedule); a sibling's
    label does not."""
    kinds = data.draw(st.lists(st.sampled_from(sorted(LABELS)), min_size=1, max_size=4))
    path = [data.draw(LABELS[kind]) for kind in kinds]
    stored = set(section_prefixes(" > ".join(path)))
    # a schedule's items are cited with it (test_an_attachments_items_are_cited_with_it)
    start = 0 if path[0].startswith("Schedule") else data.draw(st.integers(0, len(path) - 1))
    end = data.draw(st.integers(start + 1, len(path)))
    run = [_typed(label, data.draw) for label in path[start:end]]
    compact = len(run) > 1 and all(label.startswith("(") for label in run[1:])
    typed = data.draw(st.sampled_from(["".join(run)] if compact else [" > ".join(run)]))
    assert set(section_keys(typed)) & stored, (path, typed)
    for other in ("99", "4.99", "Art. 99", "(zz)", '"Other Term"'):  # labels no path has
        assert not set(section_keys(other)) & stored, (path, other)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.py", "src/a.py", True),
        ("*.py", "a.py", True),
        ("*.py", "src/a.pyc", False),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/x/a.py", False),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/x/y/a.py", True),
        ("src/**", "src/x/y/a.py", True),
        ("test_?.py", "tests/test_1.py", True),
        ("[ab]*.md", "b.md", True),
        ("[!ab]*.md", "b.md", False),
        ("docs/a.md", "docs/a.md", True),
        ("docs/a.md", "x/docs/a.md", False),
    ],
)
def test_relative_globs_match_the_path_under_the_ingest_root(
    pattern: str, path: str, expected: bool
) -> None:
    assert glob_matches(pattern, "/root/" + path, path) is expected


def test_absolute_globs_and_literal_prefix() -> None:
    assert glob_matches("/root/src/*.py", "/root/src/a.py", "src/a.py")
    assert not glob_matches("/root/src/*.py", "/other/src/a.py", "src/a.py")
    assert glob_literal_prefix("/root/src/**/*.py") == "/root/src"
    assert glob_literal_prefix("/root/*/x.py") == "/root"
    assert glob_literal_prefix("*.py") == ""
    # relative globs are matched against rel_path only
    assert not glob_matches("src/*.py", "/root/src/a.py", None)
    assert glob_literal_prefix("src/**/*.py") == "src"


def test_malformed_glob() -> None:
    with pytest.raises(ValueError, match="empty"):
        compile_glob("")
    # an unclosed bracket is no class: it matches itself
    assert glob_matches("src/[a", "/r/src/[a", "src/[a")
    assert not glob_matches("src/[a", "/r/src/a", "src/a")


def _backtracking_reading(pattern: str, path: str) -> bool:
    """The same readings of the glob run by Python's backtracking ``re`` (the reference)."""
    norm = normalize_path(unescape_glob(pattern))
    if not norm:
        raise ValueError("empty")
    norm = norm if "/" in norm else "**/" + norm
    groups = [start for start, _ in _brackets(norm)]
    readings = []
    picked = itertools.product((False, True), repeat=len(groups)) if len(groups) <= 6 else []
    choices = [frozenset(g for g, on in zip(groups, p, strict=True) if on) for p in picked]
    for classes in choices or [frozenset(), frozenset(groups)]:
        with contextlib.suppress(re.error):
            readings.append(re.compile(_glob_regex(norm, classes)))
    return any(r.fullmatch(normalize_path(path)) for r in readings)


@settings(max_examples=400, deadline=None)
@given(
    pattern=st.lists(
        st.sampled_from(
            ["a", "b", "/", "*", "**", "**/", "?", "[ab]", "[!a]", "[^b]", "[", "]", "-", "."]
        ),
        min_size=1,
        max_size=8,
    ).map("".join),
    path=st.text("ab/.-[]", min_size=1, max_size=14),
)
def test_globs_match_as_before_in_linear_time(pattern: str, path: str) -> None:
    """Invariant: RE2 matches every glob exactly as Python's backtracking ``re`` matches the
    same readings (on globs and paths small enough for ``re`` to finish)."""
    absolute = normalize_path(unescape_glob(pattern)).startswith("/")
    try:
        expected = _backtracking_reading(pattern, "/r/" + path if absolute else path)
    except ValueError:
        with pytest.raises(ValueError):
            compile_glob(pattern)
        return
    assert glob_matches(pattern, "/r/" + path, path) is expected


def test_a_glob_of_many_wildcards_against_a_long_name_returns() -> None:
    """Fresh user: ``**/*a*a*a*a*a*a*a*a*a*b`` against a 100-character name of ``a`` took
    minutes in ``re`` (exponential backtracking; 48 s for six ``*a``) and held the server for
    every tenant. RE2 answers at once. Run in a child process: ``re`` holds the interpreter
    lock while it backtracks, so only a process deadline turns a regression into a failure
    instead of a hung suite."""
    script = (
        "from server.retrieval.filter_fields import glob_matches\n"
        "name = 'x/' * 8 + 'a' * 100\n"
        "print([glob_matches('**/' + '*a' * n + '*b', '/r/' + name, name) for n in (9, 20, 60)])"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a glob of many wildcards did not return within 60 s")
    assert done.stdout.strip() == "[False, False, False]", done.stderr


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("br[ack]et/[ik]*.py", "br[ack]et/inner.py", True),  # one group as written, one a class
        ("br[ack]et/[k].py", "br[ack]et/k.py", True),
        ("app/api/product/[id]/[a-z]*.ts", "app/api/product/[id]/route.ts", True),
        ("[^s]*.py", "star.py", False),  # negated, as bash and git read it
        ("[^s]*.py", "tar.py", True),
        ("[!s]*.py", "tar.py", True),
    ],
)
def test_each_bracket_group_reads_as_a_class_or_as_written(
    pattern: str, path: str, expected: bool
) -> None:
    """Second trial: a literal bracket folder and a class in one glob matched nothing (the
    brackets were read all as written or all as classes), and ``[^s]`` was '^ or s'."""
    assert glob_matches(pattern, "/r/" + path, path) is expected


def test_brackets_match_as_written_and_as_classes() -> None:
    route = "app/api/product/[id]/route.ts"
    assert glob_matches("app/api/product/[id]/*", "/w/" + route, route)
    assert glob_matches("app/blog/[...slug]/page.tsx", "/w/x", "app/blog/[...slug]/page.tsx")
    assert glob_matches("/w/app/api/product/[id]/*.ts", "/w/" + route, route)
    assert glob_matches("[ab].md", "/w/a.md", "a.md")
    assert not glob_matches("[ab].md", "/w/c.md", "c.md")
    assert not glob_matches("app/api/product/[id]/*", "/w/app/api/product/i/route.ts", "app/x")


_SEGMENT = st.text(
    alphabet=st.sampled_from(list("abcXYZ019_-.()[]{}+@!$& ")), min_size=1, max_size=12
).filter(lambda s: s.strip(" ./") == s and s not in {".", ".."} and "**" not in s)


@given(segments=st.lists(_SEGMENT, min_size=1, max_size=5))
def test_a_path_written_as_a_glob_matches_itself(segments: list[str]) -> None:
    """Invariant: a folder or file name used verbatim in a glob matches that name, whatever
    brackets, parentheses or other punctuation it has (wildcards aside)."""
    if any(set("*?") & set(s) for s in segments):
        return
    rel = "/".join(segments)
    assert glob_matches(rel, "/root/" + rel, rel)
    assert glob_matches("/root/" + rel, "/root/" + rel, rel)
    if len(segments) > 1:
        folder = "/".join(segments[:-1])
        assert glob_matches(folder + "/*", "/root/" + rel, rel)
        assert glob_matches(folder + "/**", "/root/" + rel, rel)


def test_paths_match_in_any_unicode_form() -> None:
    """macOS and zip archives store names decomposed; users type them composed."""
    decomposed = unicodedata.normalize("NFD", "Bürozeiten/Öffnungszeiten.md")
    composed = unicodedata.normalize("NFC", decomposed)
    for glob in ("**/Öffnungszeiten.md", "Bürozeiten/*", unicodedata.normalize("NFD", "Bü*/**")):
        assert glob_matches(glob, "/r/" + decomposed, decomposed)
        assert glob_matches(glob, "/r/" + composed, composed)
    # stored prefixes are NFC; a prefix filter also matches NFD prefixes stored earlier
    assert "Bürozeiten" in path_prefixes(decomposed)
    assert path_forms(unicodedata.normalize("NFD", "Bürozeiten")) == [
        "Bürozeiten",
        unicodedata.normalize("NFD", "Bürozeiten"),
    ]
    assert path_forms("plain/ascii") == "plain/ascii"


def test_backslash_escapes_in_globs() -> None:
    route = "app/api/product/[id]/route.ts"
    assert glob_matches(r"app/api/product/\[id\]/*", "/w/" + route, route)
    assert glob_literal_prefix(r"app/api/product/\[id\]/*") == "app/api/product"
    assert glob_matches(r"notes/a\*b.md", "/w/notes/a*b.md", "notes/a*b.md")
    assert not glob_matches(r"notes/a\*b.md", "/w/notes/axb.md", "notes/axb.md")
    assert not glob_matches(r"x/\[ab\]/*", "/w/x/a/g.ts", "x/a/g.ts")  # escaped: literal only


@given(text=st.text(max_size=12))
def test_a_closed_set_filter_takes_what_ingestion_records_and_nothing_else(text: str) -> None:
    """The CLI took ``--filter doc_type=bogus`` (0 hits and a note) where the MCP tool's schema
    refuses it: a field whose values form a closed set refuses any other value, in any case,
    and takes every value ingestion records."""
    from typing import get_args

    from server.errors import InvalidRequestError
    from server.ingest.chunkers.legal import LEGAL_DOC_TYPE_NAMES
    from server.retrieval.chunk_record import FILTER_FIELDS, LegalDocType
    from server.retrieval.request_filters import check_filters

    assert set(LEGAL_DOC_TYPE_NAMES.values()) == set(get_args(LegalDocType))
    for domain, specs in FILTER_FIELDS.items():
        for spec in (s for s in specs if s.choices):
            for value in spec.choices:
                assert check_filters(domain, {spec.name: [value.upper(), value]})
            if text.strip() and text.strip().casefold() not in spec.choices:
                with pytest.raises(InvalidRequestError, match="has no value"):
                    check_filters(domain, {spec.name: text})


def test_terms_quoted_in_some_labels_and_not_others_still_match() -> None:
    """Found by the property above (CI-5, CI-6): a path with a term under a term, cited with
    the first quoted and the second not, or a term's sub-clause written compact and unquoted,
    found nothing (stored: all quoted or all bare, label by label)."""
    stored = set(section_prefixes("1 > “Personal Data” > “Personal Data”"))
    for typed in (
        '1 > "Personal Data" > Personal Data',
        "1 > Personal Data > “Personal Data”",
        '"Personal Data" > Personal Data',
    ):
        assert set(section_keys(typed)) & stored, typed
    stored = set(section_prefixes("“Personal Data” > (a)"))  # CI-6: compact, term unquoted
    for typed in ("Personal Data(a)", '"Personal Data"(a)', "Personal Data > (a)"):
        assert set(section_keys(typed)) & stored, typed
    keyword_path = set(section_prefixes("Art. 4 > “License”"))
    assert set(section_keys("4 > License")) & keyword_path  # no keyword, no quotes


@given(
    word=st.sampled_from(
        [
            "Schedule",
            "schedule",
            "Annex",
            "Appendix",
            "Exhibit",
            "EXHIBIT",
            "Attachment",
            "Part",
            "Chapter",
            "Title",
        ]
    ),
    clause=st.sampled_from(["Section", "section", "Art.", "Article", "ARTICLE", "Clause", "§"]),
    number=st.sampled_from(["1", "2", "4.2", "IV", "B"]),
    below=st.sampled_from(["", " > (a)", " > 4.2.1"]),
)
def test_an_attachment_is_no_clause_of_its_number(
    word: str, clause: str, number: str, below: str
) -> None:
    """Fresh user: section=Exhibit 2 returned the body's clause 2 (there was no Exhibit 2), and
    section=Schedule 1 clause 1 beside the schedule. Invariant: a filter naming a division by
    its keyword (schedule, annex, appendix, exhibit, attachment, part, chapter, title) never
    matches a clause of the bare number, nor the reverse; one naming a clause (section,
    article, clause, §) still finds the clause of that number."""
    bare = section_prefixes(number + below)
    attached = section_prefixes(f"{word} {number}{below}")
    assert not set(section_keys(f"{word} {number}")) & set(bare)
    assert not set(section_keys(number)) & set(attached) - set(bare)
    assert set(section_keys(f"{clause} {number}")) & set(bare)
    assert set(section_keys(f"{word} {number}")) & set(attached)


@given(
    word=st.sampled_from(["Schedule", "ANNEX", "Appendix", "Exhibit", "Attachment"]),
    number=st.sampled_from(["1", "2", "B"]),
    item=st.sampled_from(["1", "2", "4.2"]),
    below=st.sampled_from(["", " > (a)"]),
)
def test_an_attachments_items_are_cited_with_it(
    word: str, number: str, item: str, below: str
) -> None:
    """Second trial: section=2 (or Section 2) also returned item 2 of Schedule 1 and of
    Exhibit 2, ranking them above the body's clause 2. Invariant: an attachment's items are
    found under it (``Schedule 1 > 2``) and never by the bare number; a statute's Part keeps
    its sections found by theirs (they are numbered through the whole act)."""
    attached = section_prefixes(f"{word} {number} > {item}{below}", item)
    for cited in (item, f"Section {item}", f"{item}{below.replace(' > ', '')}"):
        assert not set(section_keys(cited)) & set(attached), cited
    assert set(section_keys(f"{word} {number} > {item}")) & set(attached)
    in_part = section_prefixes(f"Part {number} > Section {item}{below}", f"Section {item}")
    assert set(section_keys(f"Section {item}")) & set(in_part)
