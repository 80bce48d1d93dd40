"""Code tuning sets over the Go 1.19 standard library: ``how do I`` questions and example calls.

Source: the pinned ``golang-1.19-src`` Debian package (BSD-style Go licence). One corpus,
``code-go/corpus.jsonl``: every top-level function and method with a body of 3-80 non-blank
lines in the packages of ``GO_PACKAGES`` (non-test files without build constraints), from its
``func`` line to its closing brace; the doc comment is not part of the document. The title is
``<package dir>/<file>:<Receiver.>Name``. Functions without a usable query stay as distractors.

Two query sets over it, each of one style:

* ``howto/`` -- ``how do I`` questions, templated from the first sentence of an exported
  function's doc comment, which by Go convention starts with the function's name and a verb:
  ``TrimSpace returns a slice of the string s, with all leading and trailing white space
  removed, as defined by Unicode.`` becomes ``How do I get a slice of the string s, with all
  leading and trailing white space removed, as defined by Unicode?``. ``returns`` becomes
  ``get``, ``reports whether`` becomes ``check whether``, any other verb its base form.
* ``usage/`` -- usage queries: the lines of a Go example function (``ExampleTrimSpace``,
  ``ExampleBuffer_Write`` in ``example_test.go``) that call the symbol the example documents,
  as a developer would paste them; the relevant document is that symbol's definition (Go's
  example naming convention links them, so no judgement is made by hand).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from beir_sets import BeirSet, collapse, stable_rank

GO_SRC = "usr/share/go-1.19/src"
GO_PACKAGES = (
    "bufio",
    "bytes",
    "container/heap",
    "container/list",
    "context",
    "encoding/base64",
    "encoding/csv",
    "encoding/hex",
    "encoding/json",
    "errors",
    "flag",
    "fmt",
    "io",
    "io/fs",
    "log",
    "mime",
    "net/http",
    "net/url",
    "os",
    "os/exec",
    "path",
    "path/filepath",
    "regexp",
    "sort",
    "strconv",
    "strings",
    "sync",
    "text/template",
    "time",
    "unicode/utf8",
)
MIN_BODY_LINES = 3
MAX_BODY_LINES = 80
MIN_QUESTION_WORDS = 3
"""Words after ``How do I``: ``get n`` (from ``Len returns n.``) says too little."""
MAX_QUESTION_WORDS = 37
MAX_QUERIES = 400
MAX_USAGE_LINES = 3
MAX_USAGE_CHARS = 300

FUNC = re.compile(r"^func (?:\((?P<recv>[^)]*)\) )?(?P<name>\w+)")
VERB_FORMS = {"returns": "get", "does": "do", "has": "have", "goes": "go"}
NOT_VERBS = frozenset({"is", "was", "as", "its", "this", "us"})


@dataclass
class GoFunction:
    """One function or method of the corpus."""

    package: str
    path: str
    receiver: str
    name: str
    code: str
    doc: str
    doc_id: str = ""
    queries: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        """``strings/strings.go:TrimSpace`` or ``bytes/buffer.go:Buffer.Write``."""
        symbol = f"{self.receiver}.{self.name}" if self.receiver else self.name
        return f"{self.path}:{symbol}"

    @property
    def exported(self) -> bool:
        """Name (and receiver type) start with a capital letter."""
        return self.name[:1].isupper() and (not self.receiver or self.receiver[:1].isupper())


def receiver_type(receiver: str) -> str:
    """``b *Buffer`` -> ``Buffer``; ``s *Set[T]`` -> ``Set``."""
    return re.sub(r"\[.*\]", "", receiver.split()[-1]).lstrip("*")


def has_build_constraint(lines: list[str]) -> bool:
    """True when a ``//go:build`` line precedes the package clause."""
    for line in lines:
        if line.startswith("package "):
            return False
        if line.startswith("//go:build") or line.startswith("// +build"):
            return True
    return False


def parse_go_file(path: Path, package: str, rel: str) -> list[GoFunction]:
    """Top-level functions with a body (gofmt layout: the body closes with ``}`` in column 0)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    if has_build_constraint(lines):
        return []
    found = []
    for i, line in enumerate(lines):
        match = FUNC.match(line)
        if match is None:
            continue
        if not line.rstrip().endswith("{") and not lines[i + 1].startswith("\t"):
            continue  # declared without a body (implemented in assembly)
        try:
            end = next(j for j in range(i + 1, len(lines)) if lines[j] == "}")
        except StopIteration:
            continue
        doc_lines = []
        j = i - 1
        while j >= 0 and lines[j].startswith("//"):
            doc_lines.insert(0, lines[j])
            j -= 1
        doc = collapse(" ".join(d[2:] for d in doc_lines if not re.match(r"//(go:|line )", d)))
        recv = receiver_type(match["recv"]) if match["recv"] else ""
        code = "\n".join(lines[i : end + 1])
        found.append(GoFunction(package, rel, recv, match["name"], code, doc))
    return found


def body_lines(code: str) -> int:
    """Non-blank lines of a function."""
    return sum(1 for line in code.split("\n") if line.strip())


def first_sentence(doc: str) -> str:
    """The doc comment up to the first period followed by a space (or its end)."""
    match = re.search(r"(?<!\be\.g)(?<!\bi\.e)\.(\s|$)", doc)
    return doc[: match.start() + 1] if match else doc


def base_form(verb: str) -> str | None:
    """Base form of a third-person verb (``reads`` -> ``read``), None when it is not one."""
    word = verb.lower()
    if word in VERB_FORMS:
        return VERB_FORMS[word]
    if word in NOT_VERBS or not word.endswith("s") or word.endswith("ss") or len(word) < 4:
        return None
    if word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(ch|sh|x|z|ss|o)es$", word):
        return word[:-2]
    return word[:-1]


def howto_question(name: str, doc: str) -> str | None:
    """``How do I ...?`` from a Go doc comment that starts ``Name <verb>s ...``, or None."""
    sentence = first_sentence(doc)
    if not sentence.startswith(name + " ") or sentence.lower().startswith("deprecated"):
        return None
    rest = sentence[len(name) + 1 :].rstrip(".").strip()
    if rest.startswith("reports whether "):
        question = "check whether " + rest[len("reports whether ") :]
    else:
        verb, _, tail = rest.partition(" ")
        base = base_form(verb)
        if base is None or not tail or not verb.islower():
            return None
        question = f"{base} {tail}"
    if not MIN_QUESTION_WORDS <= len(question.split()) <= MAX_QUESTION_WORDS:
        return None
    return f"How do I {question}?"


EXAMPLE = re.compile(r"^func Example(?P<symbol>\w*)\(\) \{$")


def example_symbol(symbol: str) -> tuple[str, str] | None:
    """(receiver type, name) an example documents: ``TrimSpace``, ``Buffer_Write``.

    A trailing lower-case suffix (``_second``) names a variant; ``Example`` alone documents
    the package and a bare type name documents the type: neither names a function (None is
    returned for the package; a type example is returned as a function name and matches no
    function).
    """
    symbol = re.sub(r"_[a-z]\w*$", "", symbol)
    if not symbol:
        return None
    receiver, _, name = symbol.partition("_")
    return (receiver, name) if name else ("", receiver)


def usage_queries(path: Path) -> list[tuple[str, str, str]]:
    """(receiver, name, query) for each example of an ``example_test.go`` file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    queries = []
    for i, line in enumerate(lines):
        match = EXAMPLE.match(line)
        if match is None:
            continue
        target = example_symbol(match["symbol"])
        if target is None:
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j] == "}")
        body = [
            b.strip() for b in lines[i + 1 : end] if b.strip() and not b.strip().startswith("//")
        ]
        call = re.compile(rf"\b{re.escape(target[1])}\(")
        using = [b for b in body if call.search(b)][:MAX_USAGE_LINES]
        text = "\n".join(using)
        if using and len(text) <= MAX_USAGE_CHARS:
            queries.append((target[0], target[1], text))
    return queries


def extract_functions(src: Path) -> list[GoFunction]:
    """Corpus functions of every package, in sorted file order, byte-identical code deduplicated."""
    functions: list[GoFunction] = []
    seen: set[str] = set()
    for package in GO_PACKAGES:
        for path in sorted((src / package).glob("*.go")):
            if path.name.endswith("_test.go"):
                continue
            for function in parse_go_file(path, package, f"{package}/{path.name}"):
                if not MIN_BODY_LINES <= body_lines(function.code) <= MAX_BODY_LINES:
                    continue
                if function.code in seen:
                    continue
                seen.add(function.code)
                functions.append(function)
    return functions


def build_go_sets(package_root: Path) -> tuple[BeirSet, BeirSet]:
    """(how-do-I set, usage set); both carry the same corpus."""
    src = package_root / GO_SRC
    functions = extract_functions(src)
    howto, usage = BeirSet(), BeirSet()
    for n, function in enumerate(functions, start=1):
        function.doc_id = f"g-d{n:05d}"
        row = {"_id": function.doc_id, "title": function.title, "text": function.code}
        howto.corpus.append(row)
        usage.corpus.append(row)

    # how-do-I: identical questions merge into one query with every function as relevant
    questions: dict[str, list[str]] = {}
    for function in functions:
        if not function.exported:
            continue
        question = howto_question(function.name, function.doc)
        if question:
            questions.setdefault(question, []).append(function.doc_id)
    kept = sorted(questions, key=stable_rank)[:MAX_QUERIES]
    order = {d["_id"]: i for i, d in enumerate(howto.corpus)}
    for text in sorted(kept, key=lambda q: order[questions[q][0]]):
        qid = f"gh-q{len(howto.queries) + 1:04d}"
        howto.queries.append({"_id": qid, "text": text})
        howto.qrels.extend((qid, d) for d in questions[text])

    # usage: example lines -> the documented symbol's definition in the same package
    index = {(f.package, f.receiver, f.name): f.doc_id for f in functions if f.exported}
    examples: list[tuple[str, str]] = []
    for package in GO_PACKAGES:
        path = src / package / "example_test.go"
        if not path.exists():
            continue
        for receiver, name, text in usage_queries(path):
            doc_id = index.get((package, receiver, name))
            if doc_id:
                examples.append((text, doc_id))
    merged: dict[str, list[str]] = {}
    for text, doc_id in examples:
        if doc_id not in merged.setdefault(text, []):
            merged[text].append(doc_id)
    kept = sorted(merged, key=stable_rank)[:MAX_QUERIES]
    for text in sorted(kept, key=lambda q: order[merged[q][0]]):
        qid = f"gu-q{len(usage.queries) + 1:04d}"
        usage.queries.append({"_id": qid, "text": text})
        usage.qrels.extend((qid, d) for d in merged[text])
    return howto, usage
