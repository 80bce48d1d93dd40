"""THE INVARIANT (server/ingest/chunking.py): no chunker drops text.

For every chunker and domain, the chunk texts concatenated in order contain every
non-whitespace character of the extracted text, in order; every chunk fits the budget (checked
with an independent full count of ``title + "\\n" + text``, each word-piece charged one token
per 18 characters it covers, so that no chunk hides a long run behind one ``[UNK]``); a chunk's
title and the labels its chunker derives (signature, symbol, heading path) hold at most
MAX_LABEL_CHARS characters, whatever the headings and signatures hold; code chunks keep real
line numbers.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from chunk_inputs import (
    NO_SPACE,
    THAI,
    code_body,
    html_pages,
    legal_texts,
    markdown_texts,
    rst_texts,
    texts,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ingest_samples import make_pdf

from server.ingest.budget import MAX_LABEL_CHARS, TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.front_matter import read_front_matter
from server.ingest.chunkers.legal import strip_layout
from server.ingest.chunkers.pdf import pdf_pages
from server.ingest.chunking import chunk_file
from server.ingest.walker import SourceFile
from server.retrieval.boundaries import split_sentences
from server.retrieval.embedder import DenseEmbedder
from server.settings import Domain

CHECKS = settings(
    max_examples=12,
    deadline=None,
    # Inputs are up to 100 KB: shrinking them costs minutes; the failure report is enough.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = st.sampled_from([24, 64, 254])


def missing_from(expected: str, chunks: list[str]) -> str | None:
    """None when the non-whitespace characters of ``expected`` are a subsequence of those of the
    concatenated chunks; else a description of the first character that is not."""
    want = "".join(expected.split())
    have = "".join("".join(chunks).split())
    at = 0
    for i, ch in enumerate(want):
        found = have.find(ch, at)
        if found < 0:
            return f"character {i} {ch!r} missing; context {want[max(0, i - 40) : i + 40]!r}"
        at = found + 1
    return None


PIECE_CHARS = 18
"""The longest piece of MiniLM's vocabulary (``telecommunications``): no piece it holds covers
more characters, so only an unknown-word piece is charged more than one token."""


def charged_tokens(embedder: DenseEmbedder, text: str) -> int:
    """Word-pieces of ``text`` from the tokenizer's own offsets, each charged one token per
    PIECE_CHARS characters it covers (rounded up)."""
    encoded = embedder._tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    return sum(max(1, -(-(end - start) // PIECE_CHARS)) for start, end in encoded["offset_mapping"])


DECLARED = frozenset({"front_matter", "tags"})
"""Metadata an author declares (bounded where front matter is read), not derived labels."""


def labels(piece: Piece) -> list[str]:
    """The chunk's title and every string its chunker derived into metadata."""
    out = [piece.title]
    for key, value in piece.metadata.items():
        if key in DECLARED:
            continue
        values = value if isinstance(value, list) else [value]
        out.extend(item for item in values if isinstance(item, str))
    return out


def check(expected: str, pieces: list[Piece], budget: TokenBudget, embedder: DenseEmbedder):
    problem = missing_from(expected, [p.text for p in pieces])
    assert problem is None, problem
    for piece in pieces:
        # Labels travel with every hit outside the output budget: bounded whatever the text.
        long = [label[:80] for label in labels(piece) if len(label) > MAX_LABEL_CHARS]
        assert not long, long
        embedded = f"{piece.title}\n{piece.text}" if piece.title else piece.text
        assert charged_tokens(embedder, embedded) <= budget.max_tokens, (
            piece.title,
            piece.text[:200],
        )
        assert piece.text.strip(), "empty chunk"
    if not expected.strip():
        assert pieces == []


def make_budget(embedder: DenseEmbedder, limit: int, offsets: bool) -> TokenBudget:
    # A lambda hides the tokenizer, so the budget falls back to counting without offsets.
    count = embedder.count_tokens if offsets else (lambda text: embedder.count_tokens(text))
    return TokenBudget(count, limit, overlap_tokens=limit // 4)


def source(tmp: Path, name: str, fmt: str, language: str | None = None) -> SourceFile:
    return SourceFile(tmp / name, tmp, name, fmt, language)


def docs_expected(text: str, fmt: str) -> str:
    """The text a document's chunks hold: after its front matter, or what the front matter
    says in words when no word follows it (a page of front matter only)."""
    if fmt in ("markdown", "text"):
        front, body = read_front_matter(text)
        wordless = not re.search(r"\w", re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL))
        return front.summary() if front is not None and wordless else body
    return text


@pytest.mark.parametrize(
    ("fmt", "strategy"),
    [("text", texts()), ("markdown", markdown_texts()), ("rst", rst_texts())],
)
def test_docs_chunkers_keep_every_character(
    embedder: DenseEmbedder, tmp_path: Path, fmt: str, strategy: st.SearchStrategy[str]
) -> None:
    @CHECKS
    @given(text=strategy, limit=LIMITS, offsets=st.booleans())
    def run(text: str, limit: int, offsets: bool) -> None:
        budget = make_budget(embedder, limit, offsets)
        pieces = chunk_file(
            source(tmp_path, f"d.{fmt}", fmt), text.encode(), Domain.DOCS, budget, 0
        )
        check(docs_expected(text, fmt), pieces, budget, embedder)

    run()


def test_html_chunker_keeps_the_visible_text(embedder: DenseEmbedder, tmp_path: Path) -> None:
    @CHECKS
    @given(page=html_pages(), limit=LIMITS)
    def run(page: tuple[str, str], limit: int) -> None:
        markup, visible = page
        budget = make_budget(embedder, limit, True)
        for domain in (Domain.DOCS, Domain.LEGAL):
            pieces = chunk_file(
                source(tmp_path, "p.html", "html"), markup.encode(), domain, budget, 0
            )
            expected = visible if domain is Domain.DOCS else strip_layout(visible)
            check(expected, pieces, budget, embedder)

    run()


def test_pdf_chunkers_keep_the_extracted_text(embedder: DenseEmbedder, tmp_path: Path) -> None:
    latin = st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_categories=("Cc",)),
        max_size=300,
    )

    @CHECKS
    @given(pages=st.lists(st.lists(latin, min_size=1, max_size=6), min_size=1, max_size=3))
    def run(pages: list[list[str]]) -> None:
        data = make_pdf(pages, title="Generated")
        budget = make_budget(embedder, 24, True)
        try:
            _, extracted = pdf_pages(data)
        except Exception:  # a page with no extractable text is a skip reason, tested elsewhere
            return
        for domain in (Domain.DOCS, Domain.LEGAL):
            pieces = chunk_file(source(tmp_path, "d.pdf", "pdf"), data, domain, budget, 0)
            joined = "\n\n".join(extracted)
            expected = joined if domain is Domain.DOCS else strip_layout(joined)
            check(expected, pieces, budget, embedder)

    run()


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_legal_chunker_keeps_every_character(
    embedder: DenseEmbedder, tmp_path: Path, fmt: str
) -> None:
    @CHECKS
    @given(text=legal_texts(), limit=LIMITS, offsets=st.booleans())
    def run(text: str, limit: int, offsets: bool) -> None:
        budget = make_budget(embedder, limit, offsets)
        pieces = chunk_file(
            source(tmp_path, f"l.{fmt}", fmt), text.encode(), Domain.LEGAL, budget, 0
        )
        check(strip_layout(read_front_matter(text)[1]), pieces, budget, embedder)

    run()


def python_module(body: str) -> str:
    line = code_body(body)
    return (
        '"""Generated module."""\n\nimport os\n\n\n'
        f'def first(x, default="{line[:3000]}"):\n    value = "{line}"\n    return value\n\n\n'
        f'class Holder:\n    def method(self):\n        return "{line[:2000]}"\n\n'
        f"TAIL = 1  # {line[:300]}\n"
    )


def javascript_module(body: str) -> str:
    line = code_body(body)
    return (
        f'function first(a, b = "{line[:3000]}") {{ return "{line}"; }}\n'
        f"class Holder {{\n  method() {{\n    return 1; // {line[:500]}\n  }}\n}}\n"
        f"const g = () => {{ /* {line[:200]} */ }};\n"
    )


def java_module(body: str) -> str:
    line = code_body(body)
    return f'class A {{\n  int m() {{\n    return "{line}".length();\n  }}\n}}\n'


def go_module(body: str) -> str:
    return (
        f'package m\n\n// Add adds.\nfunc Add(a int) string {{\n\treturn "{code_body(body)}"\n}}\n'
    )


def rust_module(body: str) -> str:
    return f'struct S;\nimpl S {{\n    fn go(&self) -> &str {{ "{code_body(body)}" }}\n}}\n'


def _wrapped(template: str) -> Callable[[str], str]:
    """A module of another parsed language with the hostile body in a string and a comment."""
    return lambda body: template.format(line=code_body(body), short=code_body(body)[:300])


MORE_LANGUAGES: dict[str, Callable[[str], str]] = {
    "c": _wrapped(
        '/* {short} */\nint first(int a) {{\n  const char *s = "{line}";\n  return a;\n}}\n'
    ),
    "cpp": _wrapped(
        "namespace n {{\nclass A {{\n public:\n  int m() {{ return 1; }}  // {short}\n}};\n"
        'std::string A::name() {{ return "{line}"; }}\n}}\n'
    ),
    "csharp": _wrapped(
        'namespace N {{\n  class A {{\n    string M() {{ return "{line}"; }}\n  }}\n}}\n'
    ),
    "ruby": _wrapped('module M\n  class A\n    def m\n      "{line}"\n    end\n  end\nend\n'),
    "php": _wrapped('<?php\nclass A {{\n  function m() {{ return "{line}"; }}\n}}\n'),
    "kotlin": _wrapped('class A {{\n  fun m(): String = "{line}"\n}}\n// {short}\n'),
    "swift": _wrapped('struct A {{\n  func m() -> String {{ return "{line}" }}\n}}\n'),
    "scala": _wrapped('object A {{\n  def m(): String = "{line}"\n}}\n'),
    "shell": _wrapped('#!/bin/sh\nfirst() {{\n  echo "{line}"\n}}\n# {short}\n'),
}


@pytest.mark.slow
def test_other_parsed_languages_keep_every_line(embedder: DenseEmbedder, tmp_path: Path) -> None:
    """The same invariant for the other tree-sitter languages (one language per example)."""

    @settings(CHECKS, max_examples=30)
    @given(
        body=texts(),
        language=st.sampled_from(sorted(MORE_LANGUAGES)),
        limit=LIMITS,
        offsets=st.booleans(),
    )
    def run(body: str, language: str, limit: int, offsets: bool) -> None:
        budget = make_budget(embedder, limit, offsets)
        text = MORE_LANGUAGES[language](body)
        file = source(tmp_path, "m.src", "code", language)
        pieces = chunk_file(file, text.encode(), Domain.CODE, budget, 2)
        check(text, pieces, budget, embedder)

    run()


CODE_CASES: list[tuple[str, str | None, Callable[[str], str]]] = [
    ("python", "python", python_module),
    ("javascript", "javascript", javascript_module),
    ("typescript", "typescript", javascript_module),
    ("java", "java", java_module),
    ("go", "go", go_module),
    ("rust", "rust", rust_module),
    ("sql", "sql", lambda body: body),
    ("broken python", "python", lambda body: "def (:\n" + body),
]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "language", "build"), CODE_CASES, ids=[c[0] for c in CODE_CASES])
def test_code_chunkers_keep_every_line(
    embedder: DenseEmbedder,
    tmp_path: Path,
    name: str,
    language: str,
    build: Callable[[str], str],
) -> None:
    @CHECKS
    @given(body=texts(), limit=LIMITS, overlap=st.integers(0, 3), offsets=st.booleans())
    def run(body: str, limit: int, overlap: int, offsets: bool) -> None:
        budget = make_budget(embedder, limit, offsets)
        text = build(body)
        file = source(tmp_path, "m.src", "code", language)
        pieces = chunk_file(file, text.encode(), Domain.CODE, budget, overlap)
        check(text, pieces, budget, embedder)
        lines = text.split("\n")
        for piece in pieces:
            start, end = piece.metadata["start_line"], piece.metadata["end_line"]
            assert 1 <= start <= end <= len(lines)
            span = "\n".join(lines[start - 1 : end])
            if "part" in piece.metadata:
                assert piece.text in span
            else:
                assert piece.text == span

    run()


def test_sentence_packing_keeps_every_character_within_budget(embedder: DenseEmbedder) -> None:
    """The packer over the sentence splitter (how the evaluation packs BEIR records)."""

    @CHECKS
    @given(text=texts(), limit=st.sampled_from([16, 64, 254]))
    def run(text: str, limit: int) -> None:
        budget = TokenBudget(embedder.count_tokens, limit, overlap_tokens=limit // 4)
        passages = budget.pack(split_sentences(text), sep=" ")
        problem = missing_from(text, passages)
        assert problem is None, problem
        assert all(charged_tokens(embedder, p) <= limit for p in passages)

    run()


BLOB = NO_SPACE * 8  # 40 KB the tokenizer reads as unknown words: each costs its length
LABEL_CASES: list[tuple[Domain, str, str | None, str]] = [
    (Domain.DOCS, "markdown", None, f"# Keys {BLOB}\n\nThe body.\n\n## Next {THAI}\n\nMore.\n"),
    (Domain.DOCS, "rst", None, f"Keys {BLOB}\n{'=' * (len(BLOB) + 5)}\n\nThe body.\n"),
    (Domain.DOCS, "html", None, f"<title>{BLOB}</title><h1>{BLOB}</h1><p>The body.</p>"),
    (Domain.DOCS, "text", None, f"Keys {BLOB}\n{'=' * (len(BLOB) + 5)}\n\nThe body.\n"),
    (Domain.LEGAL, "text", None, f"1. DEFINITIONS {BLOB}\n\nThe parties agree.\n"),
    (Domain.LEGAL, "markdown", None, f"# Agreement {BLOB}\n\n## 1. Term {BLOB}\n\nOne year.\n"),
    (Domain.CODE, "code", "python", f'def first(x="{BLOB}"):\n    return x\n'),
    (Domain.CODE, "code", "javascript", f'function first(a = "{BLOB}") {{ return a; }}\n'),
    (Domain.CODE, "code", "go", f"package m\n\nfunc First(a [{len(BLOB)}]byte, {BLOB} int) {{}}\n"),
]


@pytest.mark.parametrize(
    ("domain", "fmt", "language", "text"),
    LABEL_CASES,
    ids=[f"{c[0].value}-{c[2] or c[1]}" for c in LABEL_CASES],
)
def test_titles_and_labels_stay_small_when_the_source_holds_a_blob(
    embedder: DenseEmbedder,
    tmp_path: Path,
    domain: Domain,
    fmt: str,
    language: str | None,
    text: str,
) -> None:
    """A heading, title or signature holding a 40 KB run: the run stays in the text; the title
    and labels every hit carries outside the output budget are cut (field case long-lines)."""
    budget = make_budget(embedder, 254, True)
    pieces = chunk_file(
        source(tmp_path, f"f.{fmt}", fmt, language), text.encode(), domain, budget, 2
    )
    expected = text
    if fmt == "html":
        expected = BLOB + "The body."  # <title> is the document title, not text
    elif domain is Domain.LEGAL:
        expected = strip_layout(text)
    check(expected, pieces, budget, embedder)
    assert any(label.endswith(" …") for piece in pieces for label in labels(piece))


SHARED_LINES: dict[str, str] = {
    "javascript": 'export const k = "{a}"; export function first(x) {{ return x; }} var l = "{b}";',
    "typescript": 'const k: string = "{a}"; function first(x: number) {{ return x }} var l = "{b}"',
    "c": 'static const char *k = "{a}"; int first(int x) {{ return x; }} char *l = "{b}";',
    "go": 'package m; var k = "{a}"; func first(x int) int {{ return x }}; var l = "{b}"',
    "rust": 'const K: &str = "{a}"; fn first(x: u8) -> u8 {{ x }} const L: &str = "{b}";',
}


@pytest.mark.parametrize("language", sorted(SHARED_LINES))
def test_windows_of_a_shared_line_name_the_symbol_only_where_it_is(
    embedder: DenseEmbedder, tmp_path: Path, language: str
) -> None:
    """One line holding a 20 KB literal, a function, and another literal (a bundler's output):
    every window of the line was labelled with the function, so a search for its name ranked a
    window of the literal (a fresh user's export const CERT = "<40 KB>"; export function f).
    Invariant: a window labelled with a symbol overlaps its definition; the others are module."""
    rng = random.Random(language)
    a = "".join(rng.choice("0123456789abcdef") for _ in range(20_000))
    b = "".join(rng.choice("ghijklmnopqrstuv") for _ in range(20_000))
    text = SHARED_LINES[language].format(a=a, b=b) + "\n"
    start = text.index(a) + len(a)
    end = text.index(b)  # the definition lies in [start, end), quotes and other statements aside
    budget = make_budget(embedder, 254, True)
    file = source(tmp_path, "bundle.src", "code", language)
    pieces = chunk_file(file, text.encode(), Domain.CODE, budget, 2)
    check(text, pieces, budget, embedder)
    at = 0
    labelled = []
    for piece in pieces:
        at = text.index(piece.text, at)
        if piece.metadata["symbol"] == "first":
            assert at < end and at + len(piece.text) > start, (at, piece.text[:80])
            labelled.append(piece)
        else:
            assert piece.metadata["symbol_kind"] == "module"
            assert piece.title == "bundle.src (module)"
    assert labelled and any("first(" in p.text for p in labelled)


SHARED_BY_TWO: dict[str, str] = {
    "javascript": 'export const k = "{a}"; export function first(x) {{ return x; }} '
    "export function second(y) {{ return y; }}",
    "go": 'package m; var k = "{a}"; func first(x int) int {{ return x }}; '
    "func second(y int) int {{ return y }}",
    "typescript": 'export const k = "{a}"; '
    "export class First {{ second(y: number) {{ return y }} }}",
}


@pytest.mark.parametrize("language", sorted(SHARED_BY_TWO))
def test_a_window_lists_the_definitions_that_start_in_it(
    embedder: DenseEmbedder, tmp_path: Path, language: str
) -> None:
    """Fresh user: a literal and two functions on one line labelled every window `module`, so
    a search for either name ranked slices of the literal first. Every definition is named by
    the window it starts in (its symbol, or its ``defines``); a window where none starts
    names none."""
    a = "".join(random.Random(language).choice("0123456789abcdef") for _ in range(20_000))
    text = SHARED_BY_TWO[language].format(a=a) + "\n"
    budget = make_budget(embedder, 254, True)
    pieces = chunk_file(
        source(tmp_path, "b.src", "code", language), text.encode(), Domain.CODE, budget, 2
    )
    check(text, pieces, budget, embedder)
    names = {"javascript": ["first", "second"], "go": ["first", "second"]}.get(
        language, ["First", "First.second"]
    )
    for name in names:
        keyword = name.rpartition(".")[2]
        holders = [p for p in pieces if re.search(rf"\b{keyword}\s*\(|class {keyword}\b", p.text)]
        assert holders and all(
            p.metadata["symbol"] == name or name in p.metadata.get("defines", []) for p in holders
        ), (name, [p.metadata for p in holders])
    blob_only = [p for p in pieces if set(p.text) <= set("0123456789abcdef")]
    assert blob_only and all("defines" not in p.metadata for p in blob_only)


def test_a_document_title_holding_a_blob_leaves_the_headings_their_place(
    embedder: DenseEmbedder, tmp_path: Path
) -> None:
    """Fresh user: a <title> holding a hex run filled all of each chunk's title, so no chunk's
    title named its section. The document title is cut as a heading is (200 characters)."""
    page = f"<title>{BLOB}</title><h1>Page</h1><p>Intro.</p><h2>Second</h2><p>More text.</p>"
    budget = make_budget(embedder, 254, True)
    pieces = chunk_file(source(tmp_path, "p.html", "html"), page.encode(), Domain.DOCS, budget, 0)
    assert [p.title.rpartition(" … > ")[2] for p in pieces] == ["Page", "Page > Second"]


@pytest.mark.parametrize(
    ("language", "template"),
    [
        ("python", 'def warm_cache(key="{a}"):\n    return key\n'),
        ("javascript", 'function configureRouter(opts="{a}", mode) {{ return opts; }}\n'),
    ],
)
def test_a_header_with_a_long_default_keeps_its_name_in_its_first_window(
    embedder: DenseEmbedder, tmp_path: Path, language: str, template: str
) -> None:
    """Fresh user: `def warm_cache(key="<40 KB>")` had no space to cut at but the one after
    `def`, so its first window held only `def` (and ranked first for `warm_cache`). Code is cut
    after `(` and `=` too: the first window holds the name."""
    a = base64.b64encode(random.Random(language).randbytes(30_000)).decode()
    text = template.format(a=a)
    budget = make_budget(embedder, 254, True)
    file = source(tmp_path, "m.src", "code", language)
    pieces = chunk_file(file, text.encode(), Domain.CODE, budget, 2)
    check(text, pieces, budget, embedder)
    name = "warm_cache" if language == "python" else "configureRouter"
    assert name in pieces[0].text and pieces[0].metadata["part"] == 1
