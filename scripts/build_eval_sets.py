#!/usr/bin/env python3
"""Build the BEIR-format retrieval tuning sets under ``datasets/eval/``.

Each set is written as ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/test.tsv`` (all queries)
with ``qrels/tune.tsv`` and ``qrels/heldout.tsv`` (its two parts, by SHA-256 of the query id):

* ``code``  -- docstring-summary queries against docstring-stripped functions taken from the
  Python standard library of the running interpreter (see ``datasets/eval/README.md``).
* ``legal`` -- heading and citation queries against numbered clauses of the licence texts in
  ``/usr/share/common-licenses``.
* ``legal-policy``, ``code-go`` (``howto/`` and ``usage/`` query sets over one corpus),
  ``docs-faq``, ``docs-pyindex`` -- built from pinned Debian packages fetched with
  ``apt-get download`` (``debian_sources.py``; see each ``build_*_set.py``).

The script uses only the standard library and is deterministic: file walks are sorted and any
subsampling is done by ranking SHA-256 digests of stable keys, never by ``random``.

Usage: ``python3 scripts/build_eval_sets.py [--out DIR] [--licenses DIR] [--sets all]``
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import shutil
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from beir_sets import BeirSet, chunk_paragraphs, collapse, stable_rank, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "datasets" / "eval"
DEFAULT_LICENSES = Path("/usr/share/common-licenses")

# --------------------------------------------------------------------------------------------
# Code set: Python standard library functions
# --------------------------------------------------------------------------------------------

CODE_SOURCES = (
    "asyncio",
    "collections",
    "concurrent",
    "xml",
    "sqlite3",
    "unittest",
    "multiprocessing",
    "typing.py",
    "json",
    "email",
    "http",
)
SKIP_DIRS = frozenset({"test", "tests", "idle_test", "__pycache__"})
MIN_BODY_LINES = 3
MAX_BODY_LINES = 80
MIN_SUMMARY_WORDS = 5
MAX_SUMMARY_WORDS = 30  # longer first sentences are cut at any period
MAX_SUMMARY_WORDS_HARD = 45
MAX_CODE_QUERIES = 400
MAX_CODE_CORPUS = 3000

# Summaries that describe the docstring's relationship to other code rather than behaviour.
TRIVIAL_SUMMARY = re.compile(
    r"^(return(s)? (self|none|true|false)\b|same as\b|see\b|alias\b|deprecated\b|"
    r"override\b|overridden\b|backward(s)?[- ]compat|for backward(s)? compat|"
    r"this (is|method is) (an? )?(alias|deprecated)|equivalent to\b|"
    r"implement(s|ation of)? (the )?\w+\(\)\.?$|todo\b|xxx\b)",
    re.IGNORECASE,
)
# Abbreviations whose trailing period does not end a sentence.
ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx|Inc|No)\.$", re.IGNORECASE)


@dataclass(frozen=True)
class CodeFunction:
    """One function or method extracted from a stdlib module."""

    path: str  # relative to the stdlib directory, e.g. ``asyncio/locks.py``
    qualname: str  # e.g. ``Lock.acquire``
    code: str  # source with the docstring removed
    summary: str | None  # query text, or None if the function is a distractor only

    @property
    def title(self) -> str:
        """Return the indexer-style symbol path, e.g. ``asyncio/locks.py:Lock.acquire``."""
        return f"{self.path}:{self.qualname}"


def iter_source_files(stdlib: Path) -> Iterator[Path]:
    """Yield the selected stdlib ``.py`` files in sorted order, skipping test packages."""
    for name in CODE_SOURCES:
        target = stdlib / name
        if target.is_file():
            yield target
            continue
        for path in sorted(target.rglob("*.py")):
            if not SKIP_DIRS.intersection(path.relative_to(stdlib).parts):
                yield path


def iter_defs(body: list[ast.stmt], prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Yield ``(qualname, node)`` for module-level functions and (nested) class methods."""
    for node in body:
        if isinstance(node, ast.ClassDef):
            yield from iter_defs(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node


def docstring_node(node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.Expr | None:
    """Return the docstring expression of ``node`` if it has one."""
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def owns_lines(lines: list[str], node: ast.stmt) -> bool:
    """Return True if ``node`` has its source lines to itself (no ``;`` or one-line def)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    head = lines[node.lineno - 1].encode("utf-8")[: node.col_offset].decode("utf-8", "replace")
    tail = lines[node.end_lineno - 1].encode("utf-8")[node.end_col_offset :]
    tail_text = tail.decode("utf-8", "replace").strip()
    return not head.strip() and (not tail_text or tail_text.startswith("#"))


def strip_docstring(
    lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef
) -> tuple[str, int] | None:
    """Return ``(code, body_line_count)`` for ``node`` with its docstring lines removed.

    Decorators and the full signature are kept. Returns None when the docstring cannot be cut
    out cleanly or when nothing but the docstring is left.
    """
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    end = node.end_lineno
    assert end is not None
    doc = docstring_node(node)
    if doc is None:
        keep = list(range(start, end + 1))
        body_start = node.body[0].lineno
    else:
        if len(node.body) == 1 or not owns_lines(lines, doc):
            return None
        assert doc.end_lineno is not None
        drop = set(range(doc.lineno, doc.end_lineno + 1))
        nxt = doc.end_lineno + 1
        while nxt <= end and not lines[nxt - 1].strip():  # blank lines after the docstring
            drop.add(nxt)
            nxt += 1
        keep = [n for n in range(start, end + 1) if n not in drop]
        body_start = nxt
    body_lines = sum(1 for n in keep if n >= body_start and lines[n - 1].strip())
    code = textwrap.dedent("\n".join(lines[n - 1].rstrip() for n in keep)).strip("\n")
    return code, body_lines


def first_sentence(text: str, strict: bool = True) -> str:
    """Return the first sentence of ``text`` (a single collapsed paragraph).

    A sentence ends at ``.``, ``!`` or ``?`` unless the word is a known abbreviation; in strict
    mode the next word must also not start with a lower-case letter.
    """
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if (
            word.endswith((".", "!", "?"))
            and not ABBREVIATIONS.search(word)
            and not (strict and words[i + 1][:1].islower())
        ):
            return " ".join(words[: i + 1])
    return text


def is_prose(text: str) -> bool:
    """Return False for grammar productions (``atom = [CFWS] 1*atext``) and similar notation."""
    if re.search(r"^\S+ = |\*\(", text):
        return False
    words = text.split()
    prose = [w for w in words if re.fullmatch(r"[(\"'`]*[A-Za-z][A-Za-z'-]*[)\"'`.,;:!?]*", w)]
    return len(prose) >= 0.6 * len(words)


def summarize(docstring: str) -> str | None:
    """Return a query-ready summary of ``docstring`` or None if it is too thin to use.

    The summary is the first paragraph with whitespace collapsed, cut to its first sentence
    when it holds several; a leading call signature (``L.index(value) -> integer --``) is
    dropped.
    """
    doc = inspect.cleandoc(docstring)
    text = collapse(re.split(r"\n\s*\n", doc, maxsplit=1)[0])
    signature = re.match(r"^[\w.]+\(.*?\)(\s*->\s*[^,]*?(,| --)|:)\s+(?=\w)", text)
    if signature:
        text = text[signature.end() :]
        text = text[:1].upper() + text[1:]
    text = first_sentence(text)
    if len(text.split()) > MAX_SUMMARY_WORDS:
        text = first_sentence(text, strict=False)
    n_words = len(text.split())
    if (
        not MIN_SUMMARY_WORDS <= n_words <= MAX_SUMMARY_WORDS_HARD
        or not text[:1].isalpha()
        or text.endswith(":")
        or ">>>" in text
        or not is_prose(text)
        or TRIVIAL_SUMMARY.match(text)
    ):
        return None
    return text


def extract_functions(stdlib: Path) -> list[CodeFunction]:
    """Parse the selected stdlib files and return every usable function, in source order."""
    functions: list[CodeFunction] = []
    for path in iter_source_files(stdlib):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        rel = path.relative_to(stdlib).as_posix()
        for qualname, node in iter_defs(ast.parse(source, filename=str(path)).body):
            assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            name = node.name
            if name.startswith("__") and name.endswith("__"):
                continue
            stripped = strip_docstring(lines, node)
            if stripped is None:
                continue
            code, body_lines = stripped
            if not MIN_BODY_LINES <= body_lines <= MAX_BODY_LINES:
                continue
            public = not any(part.startswith("_") for part in qualname.split("."))
            doc = ast.get_docstring(node, clean=False)
            summary = summarize(doc) if doc and public else None
            functions.append(CodeFunction(rel, qualname, code, summary))
    return functions


def build_code_set(stdlib: Path) -> BeirSet:
    """Build the natural-language-to-code set from the stdlib at ``stdlib``."""
    functions = extract_functions(stdlib)

    # One corpus document per distinct code text; later duplicates map onto the first one.
    by_code: dict[str, CodeFunction] = {}
    canonical: dict[str, str] = {}  # title -> title of the kept function with identical code
    for fn in functions:
        kept = by_code.setdefault(fn.code, fn)
        canonical[fn.title] = kept.title

    # Group query candidates by summary text; identical summaries become one query.
    groups: dict[str, list[str]] = {}
    for fn in functions:
        if fn.summary is not None:
            targets = groups.setdefault(fn.summary, [])
            if canonical[fn.title] not in targets:
                targets.append(canonical[fn.title])
    chosen = sorted(groups, key=stable_rank)[:MAX_CODE_QUERIES]

    relevant = {title for summary in chosen for title in groups[summary]}
    distractors = sorted(
        (fn.title for fn in by_code.values() if fn.title not in relevant), key=stable_rank
    )
    keep = relevant | set(distractors[: max(0, MAX_CODE_CORPUS - len(relevant))])

    beir = BeirSet()
    doc_ids: dict[str, str] = {}
    for fn in by_code.values():  # source order: sorted files, then line order
        if fn.title in keep:
            doc_ids[fn.title] = f"c-d{len(doc_ids) + 1:05d}"
            beir.corpus.append({"_id": doc_ids[fn.title], "title": fn.title, "text": fn.code})

    order = {title: i for i, title in enumerate(doc_ids)}
    for summary in sorted(chosen, key=lambda s: (min(order[t] for t in groups[s]), s)):
        qid = f"c-q{len(beir.queries) + 1:04d}"
        beir.queries.append({"_id": qid, "text": summary})
        for title in sorted(groups[summary], key=order.__getitem__):
            beir.qrels.append((qid, doc_ids[title]))
    return beir


# --------------------------------------------------------------------------------------------
# Legal set: licence texts split into numbered clauses
# --------------------------------------------------------------------------------------------

MAX_CHUNK_WORDS = 300
MAX_LEGAL_QUERIES = 200
SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "for", "in", "of", "on", "or", "the", "this", "to"}
)
# A lettered sub-clause at the start of a whitespace-collapsed paragraph: "(a) " or "a) ".
SUBCLAUSE = re.compile(r"^\(?(?P<label>[a-z])\) ")
# Unnumbered blocks around the terms: preambles and how-to-apply appendices.
PREAMBLE = (r"^\s+Preamble$", r"^\s+GNU [A-Z ]*PUBLIC LICENSE$|^\s*TERMS AND CONDITIONS")
HOW_TO_APPLY = (r"^\s*(Appendix: )?How to Apply These Terms", None)


@dataclass(frozen=True)
class LicenceSpec:
    """Where the numbered clauses of one licence file are and how they are written."""

    file: str  # file name in the licence directory
    spdx: str  # identifier used in citation queries
    name: str  # human-readable name, used in titles and to disambiguate heading queries
    start: str  # regex for the first line of the terms (inclusive)
    end: str | None  # regex for the line that ends the terms (exclusive); None = end of file
    section: str  # regex with groups ``num`` and ``text`` matching a clause's first line
    heading: str  # "inline" (ends at first period), "line" (whole line), "mpl" or "none"
    item: str | None = None  # regex for a line that starts a sub-clause (a new paragraph)
    drop: str | None = None  # regex for lines to discard (banners, underlines)
    extras: tuple[tuple[str, str | None], ...] = ()  # (start, end) regexes of unnumbered blocks

    @property
    def title(self) -> str:
        """Return the corpus title, e.g. ``Apache License 2.0 (Apache-2.0)``."""
        return f"{self.name} ({self.spdx})"


GNU_ITEM = r"^\s+[a-z]\) "
LICENCES = (
    LicenceSpec(
        file="Apache-2.0",
        spdx="Apache-2.0",
        name="Apache License 2.0",
        start=r"^\s*TERMS AND CONDITIONS FOR USE",
        end=r"^\s*END OF TERMS AND CONDITIONS",
        section=r"^ {3}(?P<num>\d+\.) (?P<text>.*)$",
        heading="inline",
        item=r"^\s*\([a-z]\) ",
        extras=((r"^\s*APPENDIX: How to apply", None),),
    ),
    LicenceSpec(
        file="MPL-2.0",
        spdx="MPL-2.0",
        name="Mozilla Public License 2.0",
        start=r"^1\. Definitions",
        end=None,
        section=r"^(?P<num>\d+\.(?:\d+\.)?|Exhibit [A-Z]) (?:- )?(?P<text>.*)$",
        heading="mpl",
        item=r"^\s*\([a-z]\) ",
        drop=r"^(-+|=+)$",
    ),
    LicenceSpec(
        file="GPL-3",
        spdx="GPL-3.0",
        name="GNU General Public License v3.0",
        start=r"^\s*TERMS AND CONDITIONS$",
        end=r"^\s*END OF TERMS AND CONDITIONS",
        section=r"^ {2}(?P<num>\d+\.) (?P<text>.*\.)$",
        heading="inline",
        item=GNU_ITEM,
        extras=(PREAMBLE, HOW_TO_APPLY),
    ),
    LicenceSpec(
        file="LGPL-3",
        spdx="LGPL-3.0",
        name="GNU Lesser General Public License v3.0",
        start=r"^ {2}0\. Additional Definitions",
        end=None,
        section=r"^ {2}(?P<num>\d+\.) (?P<text>.*\.)$",
        heading="inline",
        item=GNU_ITEM,
    ),
    LicenceSpec(
        file="GFDL-1.3",
        spdx="GFDL-1.3",
        name="GNU Free Documentation License v1.3",
        start=r"^0\. PREAMBLE",
        end=r"^ADDENDUM",
        section=r"^(?P<num>\d+\.) (?P<text>[A-Z][A-Z ,']+)$",
        heading="line",
        item=r"^[A-O]\. ",
        extras=((r"^ADDENDUM: How to use", None),),
    ),
    *(
        LicenceSpec(
            file=file,
            spdx=spdx,
            name=name,
            start=r"^\s*TERMS AND CONDITIONS FOR COPYING",
            end=r"^\s*END OF TERMS AND CONDITIONS",
            section=r"^ {2}(?P<num>\d+\.) (?P<text>.*)$",
            heading="none",
            item=GNU_ITEM,
            drop=r"^\s*NO WARRANTY$",
            extras=(PREAMBLE, HOW_TO_APPLY),
        )
        for file, spdx, name in (
            ("GPL-2", "GPL-2.0", "GNU General Public License v2.0"),
            ("LGPL-2.1", "LGPL-2.1", "GNU Lesser General Public License v2.1"),
            ("GPL-1", "GPL-1.0", "GNU General Public License v1.0"),
        )
    ),
)


@dataclass
class Clause:
    """A numbered (sub)section, or an unnumbered block such as a preamble."""

    spec: LicenceSpec
    num: str  # as printed, e.g. "4.", "3.2.", "Exhibit A"; "" for unnumbered blocks
    heading: str | None
    parent: str | None = None  # number of the enclosing MPL top-level section
    definition: bool = False  # MPL 1.x: the heading is the defined term
    lines: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)  # corpus ids, in order
    labels: dict[str, list[str]] = field(default_factory=dict)  # sub-clause -> corpus ids

    @property
    def ref(self) -> str:
        """Return the citation form of the number, e.g. ``3.2`` or ``Exhibit A``."""
        return self.num.rstrip(".")

    def paragraphs(self) -> list[str]:
        """Split the body into whitespace-collapsed paragraphs; sub-clauses start new ones."""
        item = re.compile(self.spec.item) if self.spec.item else None
        paras: list[list[str]] = [[]]
        for line in self.lines:
            if not line.strip() or (item and item.match(line)):
                paras.append([])
            if line.strip():
                paras[-1].append(line)
        return [collapse(" ".join(p)) for p in paras if p]


def title_case(heading: str) -> str:
    """Title-case an all-caps heading, keeping short function words lower case."""
    if not heading.isupper():
        return heading
    words = heading.lower().split()
    return " ".join(
        w if i and w in SMALL_WORDS else w[:1].upper() + w[1:] for i, w in enumerate(words)
    )


def find_block(lines: list[str], start: str, end: str | None) -> tuple[int, int]:
    """Return the ``[first, stop)`` line range from the ``start`` match to the ``end`` match."""
    first = next(i for i, line in enumerate(lines) if re.match(start, line))
    if end is None:
        return first, len(lines)
    stop = next(i for i, line in enumerate(lines) if i > first and re.match(end, line))
    return first, stop


def clean_lines(spec: LicenceSpec, lines: list[str]) -> list[str]:
    """Drop banner/underline lines and unwrap MPL's asterisk boxes."""
    out: list[str] = []
    for line in lines:
        if line.startswith("*"):  # MPL sections 6 and 7 are drawn inside boxes of asterisks
            line = line.strip("*").strip()
        if spec.drop and re.match(spec.drop, line.strip()):
            continue
        out.append(line.rstrip())
    return out


def mpl_heading(text: str, following: list[str]) -> tuple[str | None, str, int, bool]:
    """Classify an MPL numbered line; return (heading, body text, extra lines used, is_def).

    A line is a heading when a blank line or an indented ``means`` follows it; a heading may
    wrap onto one more line (10.4). Otherwise (5.1-5.3) the line is the start of the body.
    """
    if not following or not following[0].strip():
        return text, "", 0, False
    if following[0].strip().startswith("means"):
        return text, "", 0, True
    if len(following) > 1 and not following[1].strip() and not following[0].startswith(" "):
        return f"{text} {following[0].strip()}", "", 1, False
    return None, text, 0, False


def parse_terms(spec: LicenceSpec, lines: list[str]) -> list[Clause]:
    """Split the terms of one licence into numbered clauses (MPL subsections included)."""
    pattern = re.compile(spec.section)
    clauses: list[Clause] = []
    parent: str | None = None
    i = 0
    while i < len(lines):
        match = pattern.match(lines[i])
        if not match:
            if clauses:
                clauses[-1].lines.append(lines[i])
            i += 1
            continue
        num, text = match.group("num"), match.group("text").strip()
        heading: str | None = None
        definition = False
        if spec.heading == "inline":
            head, sep, rest = text.partition(". ")
            heading, rest = (head, rest) if sep else (text.rstrip("."), "")
        elif spec.heading == "line":
            heading, rest = title_case(text), ""
        elif spec.heading == "mpl":
            heading, rest, used, definition = mpl_heading(text, lines[i + 1 : i + 3])
            i += used
        else:
            rest = text
        is_sub = num.count(".") == 2
        if not is_sub:
            parent = num if num[0].isdigit() else None
        clause = Clause(spec, num, heading, parent if is_sub else None, definition)
        clause.lines.extend([rest] if rest else [])
        clauses.append(clause)
        i += 1
    return clauses


def parse_licence(spec: LicenceSpec, licenses: Path) -> list[Clause]:
    """Return the licence's unnumbered blocks and numbered clauses, in document order."""
    lines = (licenses / spec.file).read_text(encoding="utf-8").splitlines()
    first, stop = find_block(lines, spec.start, spec.end)
    terms = clean_lines(spec, lines[first:stop])
    if re.match(r"^\s*TERMS AND CONDITIONS", terms[0]):
        terms = terms[1:]
    blocks: list[tuple[int, Clause]] = [(first, c) for c in parse_terms(spec, terms)]
    for start, end in spec.extras:
        b_first, b_stop = find_block(lines, start, end)
        heading = re.sub(r"^(APPENDIX|Appendix|ADDENDUM): ", "", lines[b_first].strip())
        block = Clause(spec, "", heading.rstrip("."))
        block.lines = clean_lines(spec, lines[b_first + 1 : b_stop])
        blocks.append((b_first, block))
    return [clause for _, clause in sorted(blocks, key=lambda pair: pair[0])]


def chunk_clause(clause: Clause) -> list[str]:
    """Group a clause's paragraphs into chunk texts of about MAX_CHUNK_WORDS words or fewer.

    Chunks are balanced in size. Each starts with the clause number (heading words removed);
    the second and later chunks of a split clause say ``(continued)``.
    """
    limit = MAX_CHUNK_WORDS - 10  # leave room for the number prefix
    groups = chunk_paragraphs(clause.paragraphs(), limit)
    texts = []
    for n, group in enumerate(groups):
        prefix = " ".join(filter(None, [clause.num, "(continued)" if n else ""]))
        body = "\n\n".join(group)
        texts.append(f"{prefix} {body}" if prefix else body)
    return texts


def norm_heading(heading: str) -> str:
    """Normalise a heading for cross-licence comparison."""
    return re.sub(r"[^a-z0-9 ]", "", heading.lower()).strip()


def citation(spec: LicenceSpec, ref: str) -> str:
    """Format a citation query; ``section`` or ``§`` is chosen by a stable hash of the ref."""
    if ref.startswith("Exhibit"):
        return f"{spec.spdx} {ref}"
    marker = "§" if int(stable_rank(f"{spec.spdx} {ref}"), 16) % 2 else "section"
    return f"{spec.spdx} {marker} {ref}"


def build_legal_set(licenses: Path) -> BeirSet:
    """Build the heading/citation-to-clause set from the licence files in ``licenses``."""
    beir = BeirSet()
    clauses = [c for spec in LICENCES for c in parse_licence(spec, licenses)]
    for clause in clauses:
        if not clause.paragraphs():  # MPL top-level sections that only hold subsections
            continue
        for text in chunk_clause(clause):
            doc_id = f"l-d{len(beir.corpus) + 1:05d}"
            beir.corpus.append({"_id": doc_id, "title": clause.spec.title, "text": text})
            clause.chunks.append(doc_id)
            for para in text.split("\n\n"):
                match = SUBCLAUSE.match(para)
                if match:
                    clause.labels.setdefault(match.group("label"), []).append(doc_id)

    # A clause without its own body (MPL "2. License Grants and Conditions") stands for the
    # chunks of all its subsections.
    for clause in clauses:
        if not clause.chunks:
            clause.chunks = [
                d
                for c in clauses
                if c.spec is clause.spec and c.parent == clause.num
                for d in c.chunks
            ]

    licences_with: dict[str, set[str]] = {}
    for clause in clauses:
        if clause.heading:
            licences_with.setdefault(norm_heading(clause.heading), set()).add(clause.spec.spdx)

    headings: list[tuple[int, str, list[str]]] = []  # (position, query text, relevant ids)
    citations: list[tuple[int, str, list[str]]] = []
    for pos, clause in enumerate(clauses):
        spec = clause.spec
        if clause.heading:
            text = f"definition of {clause.heading}" if clause.definition else clause.heading
            if clause.definition or len(licences_with[norm_heading(clause.heading)]) > 1:
                text = f"{spec.name}: {text}"
            headings.append((pos, text, clause.chunks))
        if clause.num:
            citations.append((pos, citation(spec, clause.ref), clause.chunks))
        for label, docs in sorted(clause.labels.items()):
            citations.append((pos, citation(spec, f"{clause.ref}({label})"), docs))

    # Every heading query is kept; citations fill the rest of the budget by stable hash.
    budget = max(0, MAX_LEGAL_QUERIES - len(headings))
    kept = sorted(citations, key=lambda c: stable_rank(c[1]))[:budget]
    for _, text, docs in sorted(headings + kept, key=lambda q: q[0]):
        qid = f"l-q{len(beir.queries) + 1:04d}"
        beir.queries.append({"_id": qid, "text": text})
        beir.qrels.extend((qid, d) for d in docs)
    return beir


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


LOCAL_SETS = ("legal-policy", "code-go", "docs-faq", "docs-pyindex")
"""Sets built from pinned Debian packages (see debian_sources.py); their corpora are not
committed."""
ALL_SETS = ("code", "legal", *LOCAL_SETS)


def build_local_set(name: str, out: Path) -> list[tuple[str, BeirSet]]:
    """Build one Debian-package set; (directory under ``out``, set) pairs written by main."""
    import debian_sources as deb

    if name == "legal-policy":
        from build_policy_set import build_policy_set

        root = deb.unpacked(deb.DEBIAN_POLICY)
        built = [("legal-policy", build_policy_set(root))]
        copyright_file = root / "usr/share/doc/debian-policy/copyright"
    elif name == "code-go":
        from build_go_sets import build_go_sets

        root = deb.unpacked(deb.GOLANG_SRC)
        howto, usage = build_go_sets(root)
        built = [("code-go", howto), ("code-go/howto", howto), ("code-go/usage", usage)]
        copyright_file = root / "usr/share/doc/golang-1.19-src/copyright"
    elif name == "docs-faq":
        from build_faq_set import build_faq_set

        root = deb.unpacked(deb.DEBIAN_FAQ)
        built = [("docs-faq", build_faq_set(root))]
        copyright_file = root / "usr/share/doc/debian-faq/copyright"
    else:
        from build_pyindex_set import build_pyindex_set

        root = deb.unpacked(deb.PYTHON_DOC)
        built = [("docs-pyindex", build_pyindex_set(root))]
        copyright_file = root / "usr/share/doc/python3.11-doc/copyright"
    (out / name).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(copyright_file, out / name / "SOURCE-COPYRIGHT")
    return built


def main(argv: list[str] | None = None) -> int:
    """Build the requested sets and print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--licenses",
        type=Path,
        default=DEFAULT_LICENSES,
        help="directory holding the licence texts",
    )
    parser.add_argument(
        "--sets",
        default="code,legal",
        help=f"comma-separated sets to build ({', '.join(ALL_SETS)}, or all); default code,legal",
    )
    args = parser.parse_args(argv)
    wanted = {s.strip() for s in args.sets.split(",") if s.strip()}
    if "all" in wanted:
        wanted = set(ALL_SETS)
    unknown = wanted - set(ALL_SETS)
    if unknown or not wanted:
        parser.error(f"--sets takes some of {', '.join(ALL_SETS)} or all, got {args.sets!r}")

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sets: list[tuple[str, BeirSet]] = []
    if "code" in wanted:
        sets.append(("code", build_code_set(stdlib)))
    if "legal" in wanted:
        sets.append(("legal", build_legal_set(args.licenses)))
    for name in LOCAL_SETS:
        if name in wanted:
            sets += build_local_set(name, args.out)
    for name, beir in sets:
        if name == "code-go":  # the shared corpus; its query sets live in subdirectories
            write_jsonl(args.out / name / "corpus.jsonl", beir.corpus)
            print(f"{name}: {len(beir.corpus)} docs -> {args.out / name}")
            continue
        beir.write(args.out / name, corpus=not name.startswith("code-go/"))
        print(
            f"{name}: {len(beir.corpus)} docs, {len(beir.queries)} queries, "
            f"{len(beir.qrels)} qrels -> {args.out / name}"
        )
    if "code" in wanted:
        # The PSF licence asks for its agreement and copyright notice to travel with derived
        # works.
        shutil.copyfile(stdlib / "LICENSE.txt", args.out / "code" / "PYTHON-LICENSE.txt")
    print(f"python {sys.version.split()[0]} stdlib at {stdlib}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
