"""The field cases as tests with exact values: long lines, front matter, UTF-16/UTF-32 text,
heading-only clauses, brace-only lines, CJK sentences and over-long words."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import pytest
from chunk_inputs import CJK, EMOJI, FIELD, MINIFIED_JS, PROSE, THAI, URL, words
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from test_chunking_invariant import missing_from

from server.ingest.budget import TokenBudget, split_sentences
from server.ingest.chunkers.base import SkipFile, decode_text
from server.ingest.chunkers.code_treesitter import chunk_treesitter
from server.ingest.chunkers.front_matter import MAX_FRONT_MATTER_CHARS, read_front_matter
from server.ingest.chunkers.legal import chunk_legal
from server.ingest.chunkers.markdown import chunk_markdown
from server.ingest.chunking import DECLARABLE, chunk_file, is_binary
from server.ingest.runner import make_budget
from server.ingest.walker import SourceFile
from server.retrieval.chunk_record import FILTER_FIELDS, citation
from server.retrieval.embedder import DenseEmbedder
from server.settings import Domain, IngestSettings

VPN_TEXT = (
    "VPN how-to\n\nConnect to the office VPN with the WireGuard profile from the IT portal.\n"
    "If the tunnel drops, restart the client and check the split-tunnel setting.\n"
)
LONG_LINES = MINIFIED_JS.parent
FRONT_MATTER = FIELD / "front-matter"
ENCODINGS = FIELD / "encodings"


@pytest.fixture(scope="module")
def budget(embedder: DenseEmbedder) -> TokenBudget:
    return make_budget(embedder, IngestSettings())


def source(tmp: Path, name: str, fmt: str, language: str | None = None) -> SourceFile:
    return SourceFile(tmp / name, tmp, name, fmt, language)


# -- long lines --------------------------------------------------------------------------------


def test_minified_bundle_is_windowed_not_cut(budget: TokenBudget, embedder: DenseEmbedder) -> None:
    data = MINIFIED_JS.read_bytes()
    text = data.decode()
    pieces = chunk_file(
        source(LONG_LINES, MINIFIED_JS.name, "code", "javascript"), data, Domain.CODE, budget, 2
    )
    names = re.findall(r"function (\w+)\(", text)
    assert len(names) == 600 and "computeGiftWrapInsuranceSurcharge" in names
    words = {w for p in pieces for w in re.findall(r"\w+", p.text)}
    assert [n for n in names if n not in words] == []  # every name appears whole in a chunk
    # Windows of the line, in order; a cut at a space drops only that space.
    assert "".join("".join(p.text for p in pieces).split()) == "".join(text.split())
    total = embedder.count_tokens(text)
    assert total // budget.max_tokens < len(pieces) <= 2 * (total // budget.max_tokens) + 2
    assert [p.metadata["part"] for p in pieces] == list(range(1, len(pieces) + 1))
    assert {(p.metadata["start_line"], p.metadata["end_line"]) for p in pieces} == {(1, 1)}
    assert {p.metadata["parts"] for p in pieces} == {len(pieces)}
    # Cut at soft boundaries: after ; , { } ) ( = or at whitespace, never inside an identifier.
    at = 0
    for piece in pieces:
        at = text.index(piece.text, at) + len(piece.text)
        assert text[at - 1] in ";,{})(=" or text[at : at + 1] in (" ", ""), text[at - 20 : at + 20]
    assert all(budget.fits(p.title, p.text) for p in pieces)


def test_long_line_in_prose_and_legal_keeps_all_words(budget: TokenBudget) -> None:
    text = MINIFIED_JS.read_text()
    for domain in (Domain.DOCS, Domain.LEGAL):
        pieces = chunk_file(source(LONG_LINES, "b.txt", "text"), text.encode(), domain, budget, 0)
        assert "".join("".join(p.text for p in pieces).split()) == "".join(text.split())
        assert all(budget.fits(p.title, p.text) for p in pieces)


def test_cjk_prose_splits_at_sentence_ends(embedder: DenseEmbedder) -> None:
    assert split_sentences("数据检索。混合检索很好！他说：「好。」然后呢？") == [
        "数据检索。",
        "混合检索很好！",
        "他说：「好。」",
        "然后呢？",
    ]
    sentence = "混合检索结合了稠密向量和关键词匹配的优点。"
    budget = TokenBudget(embedder.count_tokens, 48)
    pieces = budget.pack([sentence * 12])
    assert len(pieces) > 1
    assert all(p.endswith("。") for p in pieces)  # no sentence is cut
    assert "".join(pieces) == sentence * 12  # and no space is added between CJK sentences


# -- front matter ------------------------------------------------------------------------------


def test_front_matter_is_metadata_not_text(budget: TokenBudget) -> None:
    data = (FRONT_MATTER / "release-notes.md").read_bytes()
    md = source(FRONT_MATTER, "release-notes.md", "markdown")
    pieces = chunk_file(md, data, Domain.DOCS, budget, 0)
    assert [(p.title, p.text) for p in pieces] == [
        ("Release checklist", "Follow these steps before tagging a release."),
        (
            "Release checklist > Before the release",
            "# Before the release\n\nRun the full test suite and update the changelog.",
        ),
    ]
    for piece in pieces:
        assert piece.metadata["tags"] == ["release", "ops"]
        assert piece.metadata["front_matter"] == {"date": "2026-03-01", "owner": "platform-team"}
        assert "date:" not in piece.text and "tags:" not in piece.text
    legal = chunk_file(md, data, Domain.LEGAL, budget, 0)
    assert legal[0].title.startswith("Release checklist")
    assert all("tags:" not in p.text and p.metadata["tags"] == ["release", "ops"] for p in legal)


@settings(max_examples=30, deadline=None)
@given(
    title=st.one_of(st.none(), words.map(lambda w: " ".join(w.split())).filter(str.strip)),
    described=st.dictionaries(
        st.sampled_from(["description", "summary", "Abstract"]),
        words.map(lambda w: " ".join(w.split())).filter(str.strip),
        max_size=2,
    ),
    # a body of markup alone says nothing either (second trial: `<!--more-->`, a bare `#`)
    body=st.sampled_from(["", "\n", "\n\n  \n", "<!--more-->\n", "#\n", "# \n\n---\n"]),
    fmt=st.sampled_from(["markdown", "text"]),
    domain=st.sampled_from([Domain.DOCS, Domain.LEGAL]),
)
def test_a_page_of_front_matter_only_is_its_title_and_description(
    budget: TokenBudget,
    title: str | None,
    described: dict[str, str],
    body: str,
    fmt: str,
    domain: Domain,
) -> None:
    """A page that is front matter only (Hugo's ``_index.md``: a title and a description) was
    skipped with 'no text to index', so nothing found it. Invariant: its title and each
    descriptive field are its text, one chunk, under its title, with its metadata; a page
    with neither is still skipped (no pieces)."""
    fields = {"weight": 3, **described}
    if title is not None:
        fields["title"] = title
    block = "---\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in fields.items()) + "---\n"
    pieces = chunk_file(
        source(Path("/r"), "_index.md", fmt), (block + body).encode(), domain, budget, 0
    )
    words_in = [title] if title else []
    words_in += list(described.values())
    if not words_in:
        assert pieces == []
        return
    assert missing_from("\n\n".join(words_in), [p.text for p in pieces]) is None
    prose = ("A paragraph too long to be read as a title line. " * 3).encode()
    with_body = chunk_file(source(Path("/r"), "_index.md", fmt), prose, domain, budget, 0)
    assert {p.title.split(" > ")[0] for p in pieces} == {title or with_body[0].title}
    assert all(p.metadata["front_matter"] == {"weight": 3, **described} for p in pieces)


_ESCAPES = ["\\ud83d\\ude00", "\\ud83d", "\\ude00", "\\udc80"]
"""A surrogate pair and unpaired surrogates, as YAML and JSON strings escape them."""
_escaped = st.lists(
    st.one_of(st.sampled_from(_ESCAPES), st.sampled_from(["Smile", "guide", "cut here", " "])),
    min_size=1,
    max_size=6,
).map("".join)


def _all_strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [*_all_strings(k), *_all_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _all_strings(v)]
    return []


@settings(max_examples=40, deadline=None)
@given(
    escaped=_escaped,
    where=st.sampled_from(["title", "description", "tags", "key", "notebook", "code notebook"]),
    domain=st.sampled_from([Domain.DOCS, Domain.LEGAL]),
)
def test_escaped_surrogates_are_characters(
    budget: TokenBudget, escaped: str, where: str, domain: Domain
) -> None:
    """Front matter's YAML reads "\\ud83d\\ude00" as two unpaired surrogates and a notebook's
    JSON keeps an unpaired "\\ud83d"; the tokenizer refused them and the file was skipped
    ('cannot chunk: TypeError'). Invariant: every string a chunk carries is valid Unicode (a
    pair joined, an unpaired one U+FFFD), and the words around the escapes are kept."""
    quoted = f'"{escaped}"'
    if where.endswith("notebook"):
        if domain is Domain.LEGAL:
            domain = Domain.DOCS  # the walk gives legal no notebooks
        cell = {"cell_type": "markdown", "metadata": {}, "source": [f"# Notes {escaped}"]}
        if where == "code notebook":
            cell = {"cell_type": "code", "metadata": {}, "source": [f"x = {quoted}"]}
            domain = Domain.CODE
        document = json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
        data = document.replace(json.dumps(escaped)[1:-1], escaped).encode()
        file = source(Path("/r"), "n.ipynb", "notebook", "python")
    else:
        line = {
            "title": f"title: {quoted}",
            "description": f"description: {quoted}",
            "tags": f"tags: [{quoted}]",
            "key": f"{quoted}: value",
        }[where]
        data = f"---\n{line}\n---\nBody text about smiles.\n".encode()
        file = source(Path("/r"), "page.md", "markdown")
    pieces = chunk_file(file, data, domain, budget, 0)
    assert pieces
    for piece in pieces:
        for text in [piece.title, piece.text, *_all_strings(piece.metadata)]:
            text.encode("utf-8")  # strict: no surrogate left
    words_kept = re.sub(r"\\u[0-9a-f]{4}", " ", escaped).split()
    if where in ("title", "notebook", "code notebook") and words_kept:
        held = " ".join(p.title + " " + p.text for p in pieces)
        assert all(word in held for word in words_kept), (words_kept, held)


LEGAL_BODY = (
    "MASTER SERVICES AGREEMENT\n\nThis Agreement is made between the parties, hereinafter the "
    "Customer and the Supplier.\n\n1. Governing law\n\nThis Agreement is governed by the laws of "
    "the State of New York.\n"
)


@pytest.mark.parametrize("fmt", ["markdown", "text"])
def test_legal_front_matter_declares_filterable_fields(
    tmp_path: Path, budget: TokenBudget, fmt: str
) -> None:
    """A contract's front matter naming its jurisdiction or type was kept only under
    ``front_matter``, where no filter reaches: the declared values are the chunk's fields
    (over what the text's wording suggests), the rest stays under ``front_matter``."""
    front = "---\njurisdiction: Delaware\ndoc_type: statute\nowner: legal-ops\n---\n"
    data = (front + LEGAL_BODY).encode()
    pieces = chunk_file(source(tmp_path, "msa.md", fmt), data, Domain.LEGAL, budget, 0)
    assert pieces and all(
        (p.metadata["jurisdiction"], p.metadata["doc_type"], p.metadata["front_matter"])
        == ("Delaware", "statute", {"owner": "legal-ops"})
        for p in pieces
    )
    detected = chunk_file(source(tmp_path, "msa.md", fmt), LEGAL_BODY.encode(), Domain.LEGAL,
                          budget, 0)  # fmt: skip
    assert {(p.metadata["jurisdiction"], p.metadata["doc_type"]) for p in detected} == {
        ("State of New York", "contract")
    }
    # docs: doc_type is the file format, whatever the front matter says
    docs = chunk_file(source(tmp_path, "msa.md", fmt), data, Domain.DOCS, budget, 0)
    assert all(p.metadata["doc_type"] == fmt for p in docs)
    assert all(p.metadata["front_matter"]["jurisdiction"] == "Delaware" for p in docs)


@pytest.mark.parametrize(
    ("block", "title", "fields"),
    [
        ("title: Runbook: failover\nowner: ops", "Runbook: failover", {"owner": "ops"}),
        ("title: Release\nauthor: @alice", "Release", {"author": "@alice"}),
        ("title: 'Quoted: yes'\ntags:\n\t- infra\n\t- oncall", "Quoted: yes", {}),
        ("title: `code` notes\n# a comment\n\nstatus: draft", "`code` notes", {"status": "draft"}),
    ],
)
def test_front_matter_strict_yaml_refuses_is_still_metadata(
    block: str, title: str, fields: dict[str, str]
) -> None:
    """Field case front-matter, other inputs of its kind: an unquoted colon, a value opening
    with '@' or a backquote, tab-indented lists. Strict YAML refuses them; the block was kept
    as text, and Markdown read 'title: ...' over '---' as a heading."""
    text = f"---\n{block}\n---\n\n# Body\n\nPromote the replica.\n"
    front, rest = read_front_matter(text)
    assert front is not None and front.title == title
    assert rest == "\n# Body\n\nPromote the replica.\n"
    assert fields.items() <= front.fields.items()
    if "tags" in block:
        assert front.tags == ["infra", "oncall"]


def test_front_matter_that_is_no_mapping_at_all_stays_text() -> None:
    text = "---\njust a sentence: with a colon\nand another line\n---\nbody\n"
    assert read_front_matter(text) == (None, text)


def test_toml_front_matter_and_comma_tags() -> None:
    front, rest = read_front_matter(
        '+++\ntitle = "Runbook"\ntags = "db, backup ,"\nowner = { team = "ops" }\n+++\nBody.\n'
    )
    assert front is not None and rest == "Body.\n"
    assert (front.title, front.tags, front.fields) == (
        "Runbook",
        ["db", "backup"],
        {"owner": {"team": "ops"}},
    )


def _alias_bomb(levels: int) -> str:
    lines = ["---", "title: Bomb", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join([*lines, "---", "", "Body about the yaml bomb.", ""])


@pytest.mark.parametrize("levels", [2, 6])
def test_front_matter_with_aliases_stays_text(levels: int) -> None:
    """A 341-byte block of nested aliases took 4 s and 850 MB, 9 levels hung ingest, and the
    expanded value went onto every chunk: aliases are not read (the first one stops the
    parse), the block stays text, so nothing is lost."""
    text = _alias_bomb(levels)
    assert read_front_matter(text) == (None, text)


def test_front_matter_too_large_for_metadata_stays_text() -> None:
    """Metadata goes onto every chunk and comes back with every hit: a block beyond the cap
    is kept as text, searchable, not copied onto each chunk."""
    small = "---\ntitle: Notes\nsummary: " + "word " * 100 + "\n---\nBody.\n"
    front, _ = read_front_matter(small)
    assert front is not None and front.title == "Notes"
    big = "---\ntitle: Notes\nsummary: " + "word " * (MAX_FRONT_MATTER_CHARS // 5) + "\n---\nB.\n"
    assert read_front_matter(big) == (None, big)


def test_front_matter_values_are_json_safe() -> None:
    front, _ = read_front_matter(
        "---\nupdated: 2026-03-01 10:30:00\nweights: [1, .nan]\nraw: !!binary aGk=\n"
        "nested: {when: 2026-01-02, n: 3}\n---\ntext"
    )
    assert front is not None
    assert front.fields == {
        "updated": "2026-03-01T10:30:00",
        "nested": {"when": "2026-01-02", "n": 3},
    }


@pytest.mark.parametrize(
    "block",
    [
        "---\ntitle: [unclosed\n---\n",  # invalid YAML
        "---\njust a sentence, not a mapping\n---\n",
        '+++\ntitle = "no closing quote\n+++\n',
    ],
)
def test_malformed_front_matter_stays_text(budget: TokenBudget, block: str) -> None:
    text = f"{block}\nBody text."
    assert read_front_matter(text) == (None, text)
    pieces = chunk_markdown(text, budget, "doc")
    joined = "".join(p.text for p in pieces)
    assert "".join(block.split()).replace("#", "") in "".join(joined.split()).replace("#", "")


_KEY = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
_VALUE = st.one_of(
    words.map(lambda w: " ".join(w.split())),
    st.sampled_from([URL[:80], CJK[:30]]),
    st.sampled_from(["0", "ok", "a"]),  # `- 0` over the closing `---` read as a title
)
_BREAKS = [
    "\tauthor: {v}",  # a tab-indented key
    "tags: [{v}",  # an unclosed collection
    "a: &a [x]\nb: *a",  # an alias
    "just a sentence: {v}\nand another line",  # no mapping
    "summary: " + "word " * (MAX_FRONT_MATTER_CHARS // 5),  # over the metadata cap
]
_REST = [
    "# Failover\n\nSwitch the primary to the replica.\n\n## Checks\n\nWatch the lag.\n",
    "Intro paragraph.\n\n1. Definitions\n\nWords mean things.\n\n2. Term\n\nOne year.\n",
    "Runbook\n=======\n\nPlain text under an underlined title.\n",
    "",
]


@st.composite
def unread_blocks(draw: st.DrawFn) -> str:
    """Front matter as hand-written: ``key: value`` lines, the first a key (what says the block
    was meant as front matter), then one broken line so the block is not read as such."""
    if draw(st.integers(0, 4)) == 0:  # a YAML list, not a mapping (fresh user)
        items = draw(st.lists(_VALUE.filter(str.strip), min_size=1, max_size=4))
        return "---\n" + "\n".join(f"- {item}" for item in items) + "\n---\n"
    lines = [f"{draw(_KEY)}: {draw(_VALUE)}" for _ in range(draw(st.integers(1, 6)))]
    lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(_BREAKS)).format(v="x y"))
    if draw(st.booleans()):  # a tool's YAML comment first (fresh user: it became a heading)
        lines.insert(0, "# generated by tool")
    return "---\n" + "\n".join(lines) + "\n---\n"


@settings(max_examples=40, deadline=None)
@example(block="---\n- 0\n---\n", rest=_REST[0], fmt="markdown", domain=Domain.DOCS)
@given(
    block=unread_blocks(),
    rest=st.sampled_from(_REST),
    fmt=st.sampled_from(["markdown", "text"]),
    domain=st.sampled_from([Domain.DOCS, Domain.LEGAL]),
)
def test_front_matter_not_read_is_plain_text_ahead_of_the_document(
    budget: TokenBudget, block: str, rest: str, fmt: str, domain: Domain
) -> None:
    """Field case front-matter, the kind: a block meant as front matter but not read (a tab-
    indented key, an unclosed '[', an alias, over the metadata cap) stayed text, and Markdown
    read its last lines over the closing '---' as a heading every chunk after it carried, while
    the legal chunker took '---' for the document's title and a YAML line for a citation.
    Invariant: such a block is chunks of its own, in no section, under the document's title,
    with every character kept; the document after it is chunked exactly as without it."""
    # a slip elsewhere can make the lenient reader take the block (aliases then read as text)
    assume(read_front_matter(block + rest)[0] is None)
    tmp = Path("/nonexistent")
    pieces = chunk_file(source(tmp, "run.md", fmt), (block + rest).encode(), domain, budget, 0)
    alone = chunk_file(source(tmp, "run.md", fmt), rest.encode(), domain, budget, 0)
    lead = pieces[: len(pieces) - len(alone)]
    assert lead and pieces[len(lead) :] == alone
    body = block if domain is Domain.DOCS else block.replace("---", "")
    assert missing_from(body, [p.text for p in lead]) is None  # every character, in order
    title = alone[0].title.split(" > ")[0] if alone else "run"  # the title listings show
    for piece in lead:
        assert piece.title == title
        paths = ("heading_path",) if domain is Domain.DOCS else ("section_path", "section")
        assert all(not piece.metadata[key] for key in paths)
        if domain is Domain.LEGAL and alone:
            assert piece.metadata["doc_type"] == alone[0].metadata["doc_type"]


RULED_DOCUMENTS = [
    (
        "markdown",
        Domain.LEGAL,
        "# Hosting Agreement\n\n## 1. Services\n\nHost it.\n\n## 2. Fees\n\nPay.\n",
    ),
    (
        "text",
        Domain.LEGAL,
        "SERVICES AGREEMENT\n\n1. Definitions\n\nTerms apply.\n\n2. Term\n\nA year.\n",
    ),
    (
        "text",
        Domain.DOCS,
        "Incident runbook\n================\n\nPage on-call.\n\n"
        "Escalation\n----------\n\nAfter 30 minutes.\n",
    ),
    ("markdown", Domain.DOCS, "# Runbook\n\nPage on-call.\n\n## Escalation\n\nAfter 30 minutes.\n"),
]


@settings(max_examples=30, deadline=None)
@given(
    case=st.sampled_from(RULED_DOCUMENTS),
    rule=st.sampled_from(["---", "***", "___", "- - -", "* * *", "=====", "-----------"]),
    gap=st.sampled_from(["\n", "\n\n"]),
)
def test_a_rule_opening_a_document_changes_no_title_or_section(
    budget: TokenBudget, case: tuple[str, Domain, str], rule: str, gap: str
) -> None:
    """Fresh user: a legal file opening with '---' was titled '---' (and in Markdown lost its
    clauses to one chunk); a plain-text manual with '---' straight above its underlined title
    lost the title. A rule above a document is layout: titles and sections are as without it."""
    fmt, domain, text = case
    tmp = Path("/nonexistent")

    def outline(data: str) -> list[tuple[str, object]]:
        pieces = chunk_file(source(tmp, "doc.md", fmt), data.encode(), domain, budget, 0)
        key = "heading_path" if domain is Domain.DOCS else "section_path"
        return [(p.title, p.metadata[key]) for p in pieces]

    assert outline(rule + gap + text) == outline(text)


def test_a_title_written_over_two_lines_is_one_line(budget: TokenBudget) -> None:
    """Fresh user: a setext title over two lines kept its line break in every chunk's title
    and in list_sources (heading_path joined it with a space)."""
    text = "Release notes\nfor version 2\n=============\n\nWhat changed.\n\n## Fixes\n\nMany.\n"
    pieces = chunk_file(
        source(Path("/x"), "r.md", "markdown"), text.encode(), Domain.DOCS, budget, 0
    )
    assert [p.title for p in pieces] == [
        "Release notes for version 2",
        "Release notes for version 2 > Fixes",
    ]


def test_a_document_opening_with_a_rule_is_not_front_matter(budget: TokenBudget) -> None:
    """'---' then Markdown is a rule, not front matter meant and broken: headings stay."""
    text = "---\n# Guide\n\nIntro.\n\n---\n\n## Install\n\nRun it.\n"
    pieces = chunk_file(
        source(Path("/x"), "g.md", "markdown"), text.encode(), Domain.DOCS, budget, 0
    )
    assert ["Guide", "Install"] in [p.metadata["heading_path"] for p in pieces]


def test_headings_without_body_open_the_next_chunk(budget: TokenBudget) -> None:
    pieces = chunk_markdown("# Guide\n\n## Install\n\nRun it.\n\n## Empty end\n", budget, "g")
    assert [(p.metadata["heading_path"], p.text) for p in pieces] == [
        (["Guide", "Install"], "# Guide\n\n## Install\n\nRun it.\n\n## Empty end"),
    ]


# -- encodings ---------------------------------------------------------------------------------


def test_utf16_field_case_decodes_like_utf8(budget: TokenBudget) -> None:
    data = (ENCODINGS / "vpn-howto-utf16le.txt").read_bytes()
    assert data[:2] == codecs.BOM_UTF16_LE and not is_binary(data)
    assert decode_text(data) == decode_text(VPN_TEXT.encode()) == VPN_TEXT
    vpn = source(ENCODINGS, "vpn-howto-utf16le.txt", "text")
    pieces = chunk_file(vpn, data, Domain.DOCS, budget, 0)
    assert [p.text for p in pieces] == [VPN_TEXT.strip()]


@pytest.mark.parametrize(
    "codec", ["utf-32", "utf-32-be-bom", "utf-16-be-bom", "utf-8-sig", "utf-16-le", "utf-16-be"]
)
def test_unicode_encodings_decode(tmp_path: Path, budget: TokenBudget, codec: str) -> None:
    text = "Größe — 混合检索 🚀\r\nzweite Zeile\n"
    if codec == "utf-32-be-bom":
        data = codecs.BOM_UTF32_BE + text.encode("utf-32-be")
    elif codec == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        data = text.encode(codec)  # utf-16-le / utf-16-be: no BOM
    assert not is_binary(data)
    assert decode_text(data) == "Größe — 混合检索 🚀\nzweite Zeile\n"
    pieces = chunk_file(source(tmp_path, "a.md", "markdown"), data, Domain.DOCS, budget, 0)
    assert [p.text for p in pieces] == ["Größe — 混合检索 🚀\nzweite Zeile"]


def test_undecodable_bytes_name_the_problem(tmp_path: Path, budget: TokenBudget) -> None:
    file = source(tmp_path, "a.txt", "text")
    with pytest.raises(SkipFile, match=r"invalid UTF-8 at byte 3 \(0xe9\).*cp1252"):
        chunk_file(file, "café".encode("cp1252"), Domain.DOCS, budget, 0)
    with pytest.raises(SkipFile, match="invalid UTF-16 at byte 2"):
        chunk_file(file, codecs.BOM_UTF16_LE + b"\x00\xd8a\x00", Domain.DOCS, budget, 0)
    with pytest.raises(SkipFile, match="binary file"):
        chunk_file(file, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01", Domain.DOCS, budget, 0)


@pytest.mark.parametrize(
    ("declaration", "codec"),
    [
        ('<meta charset="windows-1252">', "cp1252"),
        ("<meta http-equiv='Content-Type' content='text/html; charset=ISO-8859-15'>", "iso8859-15"),
        ('<?xml version="1.0" encoding="iso-8859-1"?>', "latin-1"),
    ],
)
@pytest.mark.parametrize("domain", [Domain.DOCS, Domain.LEGAL])
def test_html_in_the_encoding_it_declares_is_read(
    tmp_path: Path, budget: TokenBudget, declaration: str, codec: str, domain: Domain
) -> None:
    """An HTML page declaring its legacy encoding was skipped as "legacy encodings are not
    guessed": a declaration is not a guess. UTF-8 still comes first (a wrong declaration on a
    UTF-8 page is common), and a page that is not in its declared encoding either is skipped
    with a reason naming it."""
    body = "<body><p>Déjà vu, café, naïve.</p></body>"
    page = f"<html><head>{declaration}<title>Café</title></head>{body}</html>"
    html = source(tmp_path, "a.html", "html")
    pieces = chunk_file(html, page.encode(codec), domain, budget, 0)
    assert "Déjà vu, café, naïve." in " ".join(p.text for p in pieces)
    assert "Déjà vu" in " ".join(p.text for p in chunk_file(html, page.encode(), domain, budget, 0))
    if codec == "cp1252":
        with pytest.raises(SkipFile, match=r"invalid cp1252 at byte .*declares cp1252"):
            chunk_file(html, page.encode(codec) + b"\x81\x8d", domain, budget, 0)
    # the same bytes in a Markdown file: no declaration is read there
    with pytest.raises(SkipFile, match="invalid UTF-8"):
        chunk_file(source(tmp_path, "a.md", "markdown"), page.encode(codec), domain, budget, 0)


def test_utf16_cjk_without_a_bom_says_how_to_make_it_readable(
    tmp_path: Path, budget: TokenBudget
) -> None:
    """BOM-less UTF-16 that is mostly CJK has too few NUL bytes to be told from binary data:
    it was skipped as "binary file", which sent the user looking for a binary."""
    data = "# 会议\n\n混合检索的会议记录。\n".encode("utf-16-le")
    with pytest.raises(SkipFile, match=r"UTF-16 text without a byte-order mark.*save it as UTF-8"):
        chunk_file(source(tmp_path, "zh.md", "markdown"), data, Domain.DOCS, budget, 0)
    # no ASCII at all, so no NUL byte: the UTF-8 reason says it may be UTF-16 (CJK punctuation
    # is the sign); Western 8-bit text read as UTF-16 has none, and gets no such hint
    only_cjk = "我们下个月去杭州旅行，请提前预订酒店。".encode("utf-16-le")
    with pytest.raises(SkipFile, match=r"invalid UTF-8.*may be UTF-16 without a byte-order mark"):
        chunk_file(source(tmp_path, "zh.txt", "text"), only_cjk, Domain.DOCS, budget, 0)
    for western in ("café", "Déjà vu, naïve café. Über straße.", "Ça coûte 5 €, señor"):
        with pytest.raises(SkipFile) as raised:
            chunk_file(source(tmp_path, "w.txt", "text"), western.encode("cp1252"), Domain.DOCS,
                       budget, 0)  # fmt: skip
        assert "UTF-16" not in str(raised.value), western
    with pytest.raises(SkipFile, match=r"^binary file$"):  # NULs at both parities: binary
        chunk_file(
            source(tmp_path, "x.md", "markdown"), b"\x00\x00ab\x00\x01", Domain.DOCS, budget, 0
        )


# -- legal and code structure ------------------------------------------------------------------


def test_heading_only_clause_text_survives(embedder: DenseEmbedder) -> None:
    text = (
        "12. Termination\n\n"
        "12.1 Either party may terminate this Agreement on thirty days' written notice to the "
        "other party, given in writing and delivered by hand or by registered post.\n\n"
        "12.2 Either party may terminate this Agreement at once if the other party commits a "
        "material breach of it and does not remedy that breach within fourteen days.\n"
    )
    budget = TokenBudget(embedder.count_tokens, 64)
    pieces = chunk_legal(text, budget, "msa")
    assert [(p.metadata["section_path"], p.text[:30]) for p in pieces] == [
        ("12 > 12.1", "12. Termination\n\n12.1 Either p"),
        ("12 > 12.2", "12.2 Either party may terminat"),
    ]


def test_closing_brace_joins_the_chunk_before_it(budget: TokenBudget) -> None:
    source_text = "class A {\n  int m() {\n    return 1;\n  }\n\n}\n"
    pieces = chunk_treesitter(
        source_text, language="java", rel_path="A.java", budget=budget, overlap_lines=0
    )
    assert [
        (p.metadata["symbol"], p.metadata["start_line"], p.metadata["end_line"]) for p in pieces
    ] == [
        ("A", 1, 1),
        ("A.m", 2, 6),
    ]
    assert pieces[1].text == "  int m() {\n    return 1;\n  }\n\n}"


def test_brace_only_file_is_one_chunk(tmp_path: Path, budget: TokenBudget) -> None:
    pieces = chunk_file(
        source(tmp_path, "x.json", "code", "json"), b"{\n}\n", Domain.CODE, budget, 0
    )
    assert [(p.text, p.metadata["start_line"], p.metadata["end_line"]) for p in pieces] == [
        ("{\n}", 1, 2)
    ]


def test_window_offsets_come_from_the_lazy_tokenizer_alone(embedder: DenseEmbedder) -> None:
    from server.retrieval.factory import load_embedder
    from server.retrieval.lazy_embedder import LazyEmbedder
    from server.settings import Settings

    lazy = load_embedder(Settings(reranker_model="none"), lazy=True)
    assert isinstance(lazy, LazyEmbedder)
    budget = make_budget(lazy, IngestSettings())
    data = MINIFIED_JS.read_bytes()
    pieces = chunk_file(
        source(LONG_LINES, MINIFIED_JS.name, "code", "javascript"), data, Domain.CODE, budget, 2
    )
    eager = make_budget(embedder, IngestSettings())
    assert budget.offsets is not None and eager.offsets is not None
    assert len(pieces) > 50 and not lazy.model_loaded  # chunking never loads the weights


@pytest.mark.parametrize("data", [b"", b"   \n\t\n  ", "\u3000\n\n".encode(), b"\xef\xbb\xbf\n"])
@pytest.mark.parametrize(
    ("name", "fmt", "language", "domain"),
    [
        ("a.md", "markdown", None, Domain.DOCS),
        ("a.txt", "text", None, Domain.DOCS),
        ("a.rst", "rst", None, Domain.DOCS),
        ("a.html", "html", None, Domain.DOCS),
        ("a.txt", "text", None, Domain.LEGAL),
        ("a.py", "code", "python", Domain.CODE),
        ("a.ts", "code", "typescript", Domain.CODE),
        ("a.sql", "code", "sql", Domain.CODE),
    ],
)
def test_empty_and_whitespace_files_have_no_chunks(
    tmp_path: Path,
    budget: TokenBudget,
    data: bytes,
    name: str,
    fmt: str,
    language: str | None,
    domain: Domain,
) -> None:
    # No text, nothing to index: the runner reports the file as "no text to index".
    assert chunk_file(source(tmp_path, name, fmt, language), data, domain, budget, 1) == []


def test_the_budget_charges_a_piece_by_its_length_with_or_without_offsets(
    embedder: DenseEmbedder,
) -> None:
    """A word MiniLM's tokenizer cannot split (any word over 100 characters, a Thai phrase) is
    one [UNK]; the budget charges every word-piece one token per 18 characters it covers, the
    longest piece of the vocabulary, so ordinary text counts exactly as the model counts it.
    The two ways of counting agree on any text: the tokenizer's offsets, and (for counters
    without them) the words split as BERT splits them."""
    with_offsets = TokenBudget(embedder.count_tokens, 256)
    without = TokenBudget(lambda t: embedder.count_tokens(t), 256)
    assert with_offsets.piece_chars == without.piece_chars == 18
    assert with_offsets.offsets is not None and without.offsets is None
    opaque = st.text(alphabet="0123456789abcdefghij", min_size=19, max_size=400)

    @settings(max_examples=150, deadline=None)
    @given(
        parts=st.lists(
            st.one_of(words, opaque, st.sampled_from([THAI, CJK, PROSE, URL[:300], EMOJI])),
            max_size=6,
        ),
        glue=st.sampled_from(["", " ", "=", "\n", "壱", "、"]),
    )
    def run(parts: list[str], glue: str) -> None:
        text = glue.join(parts)
        counted = with_offsets.count(text)
        assert counted == without.count(text)
        spans = embedder._tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        assert counted == sum(max(1, -(-(b - a) // 18)) for a, b in spans)
        if all(b - a <= 18 for a, b in spans):
            assert counted == embedder.count_tokens(text)  # no piece charged by length

    run()
    run_40k = "f" * 40_000
    assert embedder.count_tokens(run_40k) == 1
    assert with_offsets.count(run_40k) == without.count(run_40k) == 40_000 // 18 + 1
    windows = with_offsets.windows(run_40k, 250)
    assert "".join(run_40k[w.start : w.end] for w in windows) == run_40k
    assert all(w.end - w.start <= 250 * 18 and w.tokens <= 250 for w in windows)


@pytest.mark.parametrize("offsets", [True, False])
def test_windows_cut_inside_words_only_when_a_word_exceeds_the_room(
    embedder: DenseEmbedder, offsets: bool
) -> None:
    # 90 characters without a break are ~45 word-pieces: more than one window's room.
    word = "qzx7vbn3mkl9" * 7 + "qwerty0ui"
    text = f"alpha beta {word} gamma delta"
    count = embedder.count_tokens if offsets else (lambda t: embedder.count_tokens(t))
    budget = TokenBudget(count, 16)
    assert (budget.offsets is not None) is offsets
    found = budget.windows(text, 8)
    pieces = [text[w.start : w.end] for w in found]
    assert "".join("".join(pieces).split()) == "".join(text.split())
    assert all(embedder.count_tokens(p) <= 8 for p in pieces)
    assert [w.tokens for w in found] == [embedder.count_tokens(p) for p in pieces]
    assert pieces[0] == "alpha beta"  # the word boundary comes first
    assert pieces[-1].endswith("gamma delta")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\n\n# Title\n\ntext here\n", [("Title", "---\n\n# Title\n\ntext here")]),
        (
            '---\ntitle: "Unclosed quote\ntags: [a, b\n---\n\n# Broken\n\nBody text.\n',
            [
                (
                    "Broken",
                    '---\n\ntitle: "Unclosed quote\ntags: [a, b\n---\n\n# Broken\n\nBody text.',
                )
            ],
        ),
        ("* * *\n\nplain words\n", [("doc", "* * *\n\nplain words")]),
        ("---\n", [("doc", "---")]),  # nothing else to carry it into: still not dropped
    ],
)
def test_rules_never_make_a_chunk_of_their_own(
    budget: TokenBudget, text: str, expected: list[tuple[str, str]]
) -> None:
    """A thematic break before the first heading (or a block of front matter that does not
    parse, which Markdown reads as a rule and a heading) opens the next chunk."""
    assert [(p.title, p.text) for p in chunk_markdown(text, budget, "doc")] == expected


# -- citations -----------------------------------------------------------------------------------

STDLIB_CODE = [Path(codecs.__file__), Path(re.__file__).parent / "_parser.py", Path(__file__)]


@pytest.mark.parametrize("path", STDLIB_CODE, ids=lambda p: p.name)
def test_a_code_citation_names_its_path_once(path: Path, budget: TokenBudget) -> None:
    """A module-level chunk's symbol is its path, and its citation read
    ``a/keys.py:1-2 (a/keys.py)`` (the "same text also in" line of every copy doubled it).
    Invariant: every code chunk's citation names the file once, whatever kind its span is."""
    rel = f"lib/{path.name}"
    file = SourceFile(path, path.parent, rel, "code", "python")
    pieces = chunk_file(file, path.read_bytes(), Domain.CODE, budget, 2)
    kinds = {p.metadata["symbol_kind"] for p in pieces}
    assert "module" in kinds and len(kinds) > 1, kinds
    for piece in pieces:
        cited = citation(Domain.CODE, str(path), piece.title, {**piece.metadata, "rel_path": rel})
        assert cited.count(rel) == 1 and cited.startswith(f"{rel}:"), cited


@pytest.mark.parametrize(
    ("declared", "stored", "kept"),
    [
        ("Contract", "contract", {}),
        ("AGREEMENT", "contract", {}),
        ("License", "licence", {}),
        ("memo", "contract", {"doc_type": "memo"}),  # not a type: detection, and kept as said
        ("[statute, Act]", ["statute"], {}),
    ],
)
def test_a_declared_legal_type_is_read_as_the_filter_names_it(
    tmp_path: Path, budget: TokenBudget, declared: str, stored: object, kept: dict[str, str]
) -> None:
    """`doc_type: Contract` was stored as written, which the legal_search filter (contract,
    statute, licence, other) never matched: a declared type is read in any case and by its
    common names; one that names no type leaves the detected one and stays in front_matter."""
    data = f"---\ndoc_type: {declared}\nowner: ops\n---\n{LEGAL_BODY}".encode()
    pieces = chunk_file(source(tmp_path, "msa.md", "markdown"), data, Domain.LEGAL, budget, 0)
    assert all(p.metadata["doc_type"] == stored for p in pieces), pieces[0].metadata
    assert all(p.metadata["front_matter"] == {"owner": "ops", **kept} for p in pieces)


def test_declarable_fields_are_filter_fields() -> None:
    """What front matter may declare must be filterable, or declaring it would gain nothing."""
    for domain, readers in DECLARABLE.items():
        assert set(readers) <= {f.name for f in FILTER_FIELDS[domain]}, domain
