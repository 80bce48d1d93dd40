"""Each chunker on real-shaped input, with the real MiniLM tokenizer counting the budget."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_samples import CONTRACT, MARKDOWN, PYTHON_MODULE, TYPESCRIPT, make_pdf

from server.ingest.budget import TokenBudget, split_sentences
from server.ingest.chunkers.base import Piece, SkipFile
from server.ingest.chunkers.code_python import chunk_python
from server.ingest.chunkers.code_treesitter import chunk_treesitter
from server.ingest.chunkers.html import chunk_html
from server.ingest.chunkers.legal import chunk_legal, parse_clauses
from server.ingest.chunkers.markdown import chunk_markdown
from server.ingest.chunkers.pdf import chunk_pdf
from server.ingest.chunkers.text import chunk_plain_text, chunk_rst
from server.ingest.chunking import chunk_file
from server.ingest.runner import make_budget
from server.ingest.walker import SourceFile
from server.retrieval.embedder import DenseEmbedder
from server.settings import Domain, IngestSettings


@pytest.fixture(scope="module")
def budget(embedder: DenseEmbedder) -> TokenBudget:
    return make_budget(embedder, IngestSettings())


@pytest.fixture(scope="module")
def small_budget(embedder: DenseEmbedder) -> TokenBudget:
    return TokenBudget(embedder.count_tokens, 40, overlap_tokens=8)


def assert_within(pieces: list[Piece], budget: TokenBudget) -> None:
    assert pieces
    for piece in pieces:
        assert budget.embedded_tokens(piece.title, piece.text) <= budget.max_tokens, piece


def test_budget_is_the_model_window_minus_special_tokens(embedder: DenseEmbedder) -> None:
    budget = make_budget(embedder, IngestSettings(chunk_tokens=10_000))
    assert budget.max_tokens == embedder.max_tokens - 2 == 254


def test_markdown_heading_paths_and_fences(budget: TokenBudget) -> None:
    pieces = chunk_markdown(MARKDOWN, budget, "guide")
    paths = [p.metadata["heading_path"] for p in pieces]
    assert paths == [
        ["Storage Guide"],
        ["Storage Guide", "Installation"],
        ["Storage Guide", "Installation", "Configuring the cache"],
        ["Storage Guide", "Usage"],
    ]
    install = pieces[1]
    assert install.title == "Storage Guide > Installation"
    # The fenced comment is code, not a heading, and the fence keeps its lines.
    assert "```bash\n# this is not a heading\npip install storage-engine\n```" in install.text
    assert_within(pieces, budget)


def test_rst_and_plain_text_sections(budget: TokenBudget) -> None:
    rst = "Title\n=====\n\nIntro text.\n\nSub part\n--------\n\nBody of the sub part.\n"
    pieces = chunk_rst(rst, budget, "doc")
    assert [p.metadata["heading_path"] for p in pieces] == [["Title"], ["Title", "Sub part"]]
    plain = chunk_plain_text("First paragraph.\n\nSecond paragraph.", budget, "notes")
    assert len(plain) == 1 and plain[0].title == "notes"
    assert plain[0].text == "First paragraph.\n\nSecond paragraph."


def test_html_headings_without_scripts(budget: TokenBudget) -> None:
    html = (
        "<html><head><title>Page</title><script>var x = 1;</script></head><body>"
        "<h1>Top</h1><p>Alpha text.</p><h2>Child</h2><p>Beta &amp; gamma.</p></body></html>"
    )
    pieces = chunk_html(html, budget, "file")
    # Headings are text: each opens its section's chunk.
    assert [(p.metadata["heading_path"], p.text) for p in pieces] == [
        (["Top"], "Top\n\nAlpha text."),
        (["Top", "Child"], "Child\n\nBeta & gamma."),
    ]
    assert all("var x" not in p.text for p in pieces)


def test_pdf_pages_in_metadata(budget: TokenBudget) -> None:
    data = make_pdf(
        [["Termination notice rules.", "More text."], ["Payment is due in thirty days."]],
        title="Handbook",
    )
    pieces = chunk_pdf(data, budget, "file")
    assert [p.metadata["page"] for p in pieces] == [1, 2]
    assert "thirty days" in pieces[1].text
    assert pieces[1].title == "Handbook (p. 2)"


def test_broken_pdf_is_a_skip_reason(budget: TokenBudget) -> None:
    with pytest.raises(SkipFile, match="corrupt PDF"):
        chunk_pdf(b"%PDF-1.4\n1 0 obj << /Type /Catalog", budget, "broken")


def test_contract_clauses_and_sub_clauses(budget: TokenBudget, small_budget: TokenBudget) -> None:
    root = parse_clauses(CONTRACT)
    labels = [c.label for c in root.children]
    assert labels == ["1", "2", "12", "13"]
    assert [c.label for c in root.children[2].children[0].children] == ["(a)", "(b)"]

    pieces = chunk_legal(CONTRACT, small_budget, "contract")
    assert_within(pieces, small_budget)
    by_path = {p.metadata["section_path"]: p for p in pieces}
    assert "12 > 12.3 > (b)" in by_path
    assert by_path["12 > 12.3 > (b)"].metadata["section"] == "(b)"
    assert "material breach" in by_path["12 > 12.3 > (b)"].text
    assert pieces[0].metadata["doc_type"] == "contract"
    assert pieces[0].metadata["jurisdiction"] == "England and Wales"
    # Definitions are their own units, and no chunk ends mid-sentence.
    assert [c.label for c in root.children[0].children] == ["1.1", "1.2"]
    licence = parse_clauses(
        '1. Definitions.\n\n"License" shall mean the terms.\n\n"You" means you.'
    )
    assert [c.label for c in licence.children[0].children] == ["“License”", "“You”"]
    assert by_path["2 > 2.2"].title == "SERVICES AGREEMENT > 2 Obligations of the Supplier > 2.2"
    for piece in pieces:
        assert re.search(r"(?:[.;:)]|; (?:and|or))$", piece.text.rstrip()), piece.text

    whole = chunk_legal(CONTRACT, budget, "contract")
    assert {p.metadata["section_path"] for p in whole} >= {"1", "2", "12", "13"}


def test_statute_articles(budget: TokenBudget) -> None:
    statute = (
        "Data Protection Act\n\nArticle 14 Right to erasure\n\n(1) The data subject may ask.\n\n"
        "(2) The controller shall erase the data.\n\n§ 5 Penalties\n\nFines apply.\n"
    )
    pieces = chunk_legal(statute, TokenBudget(budget.count, 24), "act")
    paths = [p.metadata["section_path"] for p in pieces]
    assert "Art. 14 > (2)" in paths and "§ 5" in paths
    assert pieces[0].metadata["doc_type"] == "statute"


def test_asterisk_box_frames_are_not_headings(budget: TokenBudget) -> None:
    # MPL-2.0 boxes sections 6 and 7 in asterisks; the frame must not become a section.
    text = (
        "1. Definitions\n\nWords mean things.\n\n"
        + "*" * 40
        + "\n*                                      *\n"
        "*  6. Disclaimer of Warranty           *\n"
        "*  -------------------------           *\n"
        "*  The software is provided as is.     *\n"
        "*                                      *\n" + "*" * 40 + "\n\n8. Litigation\n\nCourts.\n"
    )
    pieces = chunk_legal(text, budget, "licence")
    paths = [p.metadata["section_path"] for p in pieces]
    assert paths == ["1", "6", "8"], paths
    assert "*" not in pieces[1].text and "provided as is" in pieces[1].text


@pytest.mark.parametrize(
    "line",
    [
        "x = " + "-" * 100_000 + "1",
        "y = " + "+".join(["1"] * 200_000),
        "z = " + "[" * 500 + "]" * 500,
    ],
)
def test_python_the_parser_cannot_hold_is_windows_not_a_skip(
    budget: TokenBudget, line: str
) -> None:
    """A nesting CPython's parser overflows on (MemoryError) or builds too deep a tree for
    (RecursionError) is chunked, never skipped (the first made the file a 'cannot chunk:
    MemoryError' skip): as line windows, or, where the parser reports it as a syntax error,
    as the other files that do not parse are (the definition beside it keeps its symbol)."""
    source = "def kept():\n    return 1\n\n" + line + "\n"
    pieces = chunk_python(source, rel_path="deep.py", budget=budget, overlap_lines=1)
    kinds = {p.metadata["symbol_kind"] for p in pieces}
    assert pieces and (kinds == {"window"} or kinds == {"function", "module"}), kinds
    assert "def kept" in pieces[0].text


def test_python_symbols_with_real_line_numbers(budget: TokenBudget) -> None:
    pieces = chunk_python(PYTHON_MODULE, rel_path="cache.py", budget=budget, overlap_lines=2)
    lines = PYTHON_MODULE.split("\n")
    symbols = {p.metadata["symbol"]: p for p in pieces}
    assert {"now", "Cache", "Cache.__init__", "Cache.size", "Cache.fetch"} <= set(symbols)
    assert symbols["Cache.fetch"].metadata["symbol_kind"] == "method"
    assert symbols["Cache"].metadata["symbol_kind"] == "class"
    assert symbols["now"].metadata["signature"] == "def now() -> float"
    assert symbols["Cache.fetch"].metadata["signature"] == (
        "async def fetch( self, key: str, ) -> object | None"
    )
    module = [p for p in pieces if p.metadata["symbol_kind"] == "module"]
    assert "import time" in module[0].text and "Utilities" in module[0].text
    for piece in pieces:
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        assert piece.text == "\n".join(lines[start - 1 : end])  # newlines kept, lines real
    assert symbols["Cache.size"].text.startswith("    @property")
    assert "Cache.fetch" in symbols["Cache.fetch"].title or "fetch" in symbols["Cache.fetch"].title


COMMENTED = """import os

# Reissue the invoice for a customer whose
# payment bounced.
def reissue_invoice(customer):
    return customer

TEXT = '''
# not a comment above anything: inside a string
'''
def after_string():
    return TEXT


class Ledger:
    # Post one entry.
    def post(self, entry):
        return entry

    # A static helper, decorated.
    @staticmethod
    def total():
        return 0
"""


def test_python_comments_straight_above_a_definition_are_its_chunk(budget: TokenBudget) -> None:
    """Fresh user: '# Reissue the invoice...' above a def went to the module chunk (JavaScript
    gives the function its comment). Comment lines straight above a definition are its first
    lines; a blank line, code or a string's last line stops them."""
    pieces = chunk_python(COMMENTED, rel_path="billing.py", budget=budget, overlap_lines=2)
    by_symbol = {p.metadata["symbol"]: p for p in pieces}
    assert by_symbol["reissue_invoice"].text.startswith("# Reissue the invoice for a customer")
    assert by_symbol["after_string"].text.startswith("def after_string")
    assert by_symbol["Ledger.post"].text.startswith("    # Post one entry.")
    assert by_symbol["Ledger.total"].text.startswith("    # A static helper")
    assert by_symbol["Ledger"].text == "class Ledger:"
    lines = COMMENTED.split("\n")
    for piece in pieces:
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        assert piece.text == "\n".join(lines[start - 1 : end])


def test_typescript_symbols(budget: TokenBudget) -> None:
    pieces = chunk_treesitter(
        TYPESCRIPT, language="typescript", rel_path="retry.ts", budget=budget, overlap_lines=2
    )
    lines = TYPESCRIPT.split("\n")
    symbols = {p.metadata["symbol"]: p for p in pieces}
    assert symbols["loadConfig"].metadata["symbol_kind"] == "function"
    assert symbols["loadConfig"].metadata["start_line"] == 3  # its doc comment
    assert symbols["RetryPolicy.delayFor"].metadata["symbol_kind"] == "method"
    assert symbols["Config"].metadata["symbol_kind"] == "class"
    assert symbols["isTransient"].metadata["symbol_kind"] == "function"
    for piece in pieces:
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        assert piece.text == "\n".join(lines[start - 1 : end])
        assert piece.metadata["language"] == "typescript"
    assert "import { readFile }" in pieces[0].text


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        ("go", "package m\n\n// Add adds.\nfunc Add(a int) int {\n\treturn a\n}\n", "Add"),
        ("java", "class A {\n  int m() {\n    return 1;\n  }\n}\n", "A.m"),
        ("rust", "struct S;\nimpl S {\n    fn go(&self) {}\n}\n", "S.go"),
        ("javascript", "function f(x) {\n  return x;\n}\n", "f"),
    ],
)
def test_other_grammars(budget: TokenBudget, language: str, source: str, expected: str) -> None:
    pieces = chunk_treesitter(
        source, language=language, rel_path="x", budget=budget, overlap_lines=0
    )
    assert expected in {p.metadata["symbol"] for p in pieces}


def test_oversized_function_is_windowed_with_true_lines(small_budget: TokenBudget) -> None:
    body = "\n".join(f"    total += compute_value_{i}(x)" for i in range(40))
    source = f"def big(x):\n    total = 0\n{body}\n    return total\n"
    pieces = chunk_python(source, rel_path="big.py", budget=small_budget, overlap_lines=1)
    assert len(pieces) > 3
    assert_within(pieces, small_budget)
    lines = source.split("\n")
    for piece in pieces:
        assert piece.metadata["symbol"] == "big"
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        assert piece.text == "\n".join(lines[start - 1 : end])
    assert pieces[-1].metadata["end_line"] == 43


def test_budget_never_exceeded_on_random_prose(embedder: DenseEmbedder) -> None:
    rng = random.Random(7)
    words = ["alpha", "supercalifragilistic", "x", "§", "12.3(b)", "naïve", "数据", "e.g.", "Art."]
    text = "\n\n".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(1, 120))) + "." for _ in range(30)
    )
    text += "\n\n" + "y" * 3000  # one giant word
    for limit in (20, 64, 254):
        budget = TokenBudget(embedder.count_tokens, limit, overlap_tokens=limit // 4)
        for chunker in (chunk_plain_text, chunk_legal, chunk_markdown):
            assert_within(chunker(text, budget, "a long title " * 5), budget)


def test_sentences_are_not_cut_at_abbreviations() -> None:
    assert split_sentences("See Art. 5 and e.g. clause 3. Then stop. Next one!") == [
        "See Art. 5 and e.g. clause 3.",
        "Then stop.",
        "Next one!",
    ]


def test_code_fallback_windows_keep_newlines(tmp_path: Path, small_budget: TokenBudget) -> None:
    source = "\n".join(f"SELECT {i} FROM table_{i};" for i in range(30))
    file = SourceFile(tmp_path / "q.sql", tmp_path, "q.sql", "code", "sql")
    pieces = chunk_file(file, source.encode(), Domain.CODE, small_budget, overlap_lines=1)
    assert len(pieces) > 1 and all(p.metadata["symbol_kind"] == "window" for p in pieces)
    assert "\n" in pieces[0].text
    assert pieces[1].metadata["start_line"] == pieces[0].metadata["end_line"]  # 1-line overlap


def test_invalid_utf8_and_binary_are_skip_reasons(tmp_path: Path, budget: TokenBudget) -> None:
    file = SourceFile(tmp_path / "a.md", tmp_path, "a.md", "markdown")
    with pytest.raises(SkipFile, match="invalid UTF-8"):
        chunk_file(file, b"caf\xe9 ok", Domain.DOCS, budget, 0)
    with pytest.raises(SkipFile, match="binary"):
        chunk_file(file, b"abc\x00\x01", Domain.DOCS, budget, 0)


def test_type_detection_per_domain() -> None:
    from server.ingest.walker import detect_format

    assert detect_format(Path("LICENSE"), Domain.LEGAL) == ("text", None)
    assert detect_format(Path("guide.MD"), Domain.DOCS) == ("markdown", None)
    assert detect_format(Path("app.tsx"), Domain.CODE) == ("code", "tsx")
    assert detect_format(Path("Makefile"), Domain.CODE) == ("code", "make")
    assert detect_format(Path("photo.png"), Domain.DOCS) is None
    assert detect_format(Path("main.go"), Domain.LEGAL) is None


LICENCE_FILE_NAMES = ["GPL-3", "Apache-2.0", "MPL-1.1", "LGPL-2.1", "copyright", "COPYING.LESSER"]
LICENCE_FILE_NAMES += ["LICENSE-MIT", "LICENSE.APACHE", "NOTICE", "terms"]


@pytest.mark.parametrize(
    "name",
    LICENCE_FILE_NAMES,
)
def test_a_licence_named_without_a_text_extension_is_a_legal_text(
    name: str, tmp_path: Path
) -> None:
    """Field report: ``ingest /usr/share/common-licenses --domain legal`` took none of its
    files (GPL-3, Apache-2.0, MPL-2.0: no extension, or a version read as one), and no
    Debian ``copyright`` file; only LICENSE, COPYING and a few such names were known. In the
    legal domain a file without a type is a text (a binary one is skipped with its reason);
    in the docs domain, so is a file named as a licence is."""
    from server.ingest.walker import detect_format, discover

    folder = tmp_path
    (folder / name).write_text("1. Definitions\n\nThe Licensor grants a licence.\n")
    (folder / "image").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    found = discover([folder], Domain.LEGAL, 10**6)
    assert [f.path.name for f in found.files] == sorted([name, "image"])
    licence_named = re.match(r"(?i)(licen[cs]e|copying|copyright|notice)", name)
    assert (detect_format(folder / name, Domain.DOCS) is not None) == bool(licence_named)
    pieces = chunk_file(
        next(f for f in found.files if f.path.name == name),
        (folder / name).read_bytes(),
        Domain.LEGAL,
        TokenBudget(len, 200),
        0,
    )
    assert pieces and "Licensor" in pieces[0].text
    image = next(f for f in found.files if f.path.name == "image")
    with pytest.raises(SkipFile, match="binary"):
        chunk_file(image, (folder / "image").read_bytes(), Domain.LEGAL, TokenBudget(len, 200), 0)


def test_a_plain_text_file_is_sectioned_by_its_underlined_titles(
    embedder: DenseEmbedder, tmp_path: Path
) -> None:
    """Field report: dpkg's ``rootless-builds.txt`` (titles underlined with ``====`` and
    ``----``) chunked with an empty heading path, every chunk titled alike. Its sections are
    sections, as in a reStructuredText file; a text without underlined titles is unchanged."""
    text = (
        "Rootless builds\n===============\n\nIntro paragraph about builds.\n\n"
        "Requirements\n------------\n\nThe builder needs fakeroot only when asked.\n\n"
        "Semantics\n---------\n\nThe field takes a space-separated list of keywords.\n"
    )
    (tmp_path / "rootless-builds.txt").write_text(text)
    file = SourceFile(tmp_path / "rootless-builds.txt", tmp_path, "rootless-builds.txt", "text")
    budget = TokenBudget(embedder.count_tokens, 24)
    pieces = chunk_file(file, text.encode(), Domain.DOCS, budget, 0)
    paths = {" > ".join(p.metadata.get("heading_path", [])) for p in pieces}
    assert {"Rootless builds > Requirements", "Rootless builds > Semantics"} <= paths, paths
    assert all(p.title.startswith("Rootless builds") for p in pieces)
    plain = "A note.\n\nAnother paragraph, with -- dashes.\n\n-----\n\nAfter a rule.\n"
    assert all(p.metadata["heading_path"] == [] for p in chunk_plain_text(plain, budget, "n"))


_CLASS_ITEMS = {
    "method": ["    def {name}(self):", "        return {n}"],
    "attribute": ["    {name} = {n}"],
    "comment": ["    # note {n}"],
    "deep comment": ["        # more on the line above {n}"],
    "blank": [""],
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(st.sampled_from(sorted(_CLASS_ITEMS)), min_size=1, max_size=12).filter(
        lambda items: "method" in items
    ),
    after=st.booleans(),
)
def test_python_class_lines_are_chunks_of_the_class(
    budget: TokenBudget, items: list[str], after: bool
) -> None:
    """Invariant: every line of a class lands in a chunk of the class or of one of its members,
    never in a ``module`` chunk (fresh user: attributes between two methods were cited as the
    module, while the tree-sitter languages give them to the class). Property over class
    bodies mixing methods, attributes, comments (at the class's depth and deeper) and blank
    lines, with and without module code after the class."""
    lines = ["import os", "", "", "class Config:", '    """Settings."""']
    for n, item in enumerate(items):
        lines += [line.format(name=f"{item[0]}{n}", n=n) for line in _CLASS_ITEMS[item]]
    class_end = max(i for i, line in enumerate(lines, 1) if line.strip())
    if after:
        lines += ["", "", "TIMEOUT = 3"]
    source = "\n".join(lines) + "\n"
    pieces = chunk_python(source, rel_path="config.py", budget=budget, overlap_lines=1)
    owner: dict[int, set[str]] = {}
    for piece in pieces:
        start, end = piece.metadata["start_line"], piece.metadata["end_line"]
        assert piece.text == "\n".join(lines[start - 1 : end])
        for line in range(start, end + 1):
            owner.setdefault(line, set()).add(piece.metadata["symbol"])
    for line in range(4, class_end + 1):
        if not lines[line - 1].strip():
            continue
        assert len(owner.get(line, ())) == 1, (line, owner.get(line))
        (symbol,) = owner[line]
        assert symbol == "Config" or symbol.startswith("Config."), (line, lines[line - 1], symbol)
    if after:
        assert owner[len(lines)] == {"config.py"}


_DEFINITIONS = [
    "def load(path):\n    return open(path).read()\n",
    "@cache\ndef area(r):\n    return 3.14 * r * r\n",
    "class Store:\n    def get(self, key):\n        return key\n\n"
    "    def put(self, key):\n        pass\n",
    "async def fetch(url):\n    return url\n",
    "LIMIT = 3\n\ndef clamp(x):\n    return min(x, LIMIT)\n",
    "@lru_cache(\n    maxsize=128,\n)\ndef cached(k):\n    return k\n",
    'if __name__ == "__main__":\n    clamp(1)\nelse:\n    pass\n',
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    order=st.permutations(range(len(_DEFINITIONS))),
    broken=st.integers(min_value=0, max_value=len(_DEFINITIONS) - 1),
    where=st.sampled_from(["inside", "ahead", "after"]),
)
def test_a_python_syntax_error_costs_only_its_definition(
    budget: TokenBudget, order: list[int], broken: int, where: str
) -> None:
    """Fresh user: one half-typed line ('def half_typed(x:') in textwrap.py made the whole file
    line windows, so no definition could be found by name, and under watch every mid-edit save
    did that. Invariant: every definition keeps its symbol, and those away from the error
    their lines, whether the error is in a body, a line of its own ahead of a definition, or
    top-level code after one."""
    blocks = [_DEFINITIONS[i] for i in order]
    intact = "import os\n\n\n" + "\n\n".join(blocks)
    damaged_blocks = list(blocks)
    inside = where == "inside" and blocks[broken].lstrip("@").startswith(("def", "class", "async"))
    if inside:  # in the body of definition `broken`
        depth = " " * (8 if blocks[broken].startswith("class") else 4)  # in its last def
        damaged_blocks[broken] = damaged_blocks[broken].rstrip("\n") + f"\n{depth}x = half(\n"
    elif where == "after":  # top-level code after it (second trial: it took the def down)
        damaged_blocks[broken] = damaged_blocks[broken] + "\nx = = 5\n"
    else:  # a line of its own ahead of it
        damaged_blocks[broken] = "def half_typed(x:\n" + damaged_blocks[broken]
    damaged = "import os\n\n\n" + "\n\n".join(damaged_blocks)
    want = {
        (p.metadata["symbol"], p.text)
        for p in chunk_python(intact, rel_path="m.py", budget=budget, overlap_lines=1)
        if p.metadata["symbol_kind"] != "module"
    }
    got = {
        (p.metadata["symbol"], p.text)
        for p in chunk_python(damaged, rel_path="m.py", budget=budget, overlap_lines=1)
        if p.metadata["symbol_kind"] != "module"
    }
    # a line of a definition's body holding the error is left out of the parse: the
    # definition keeps its symbol (third trial: one half-typed method had cost its class
    # every symbol); a header of its own ahead of a definition takes nothing with it
    assert {symbol for symbol, _ in want} <= {symbol for symbol, _ in got}
    assert {(s, t) for s, t in want if t not in blocks[broken]} <= got
