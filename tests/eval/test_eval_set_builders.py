"""Build-script pieces of the new tuning sets, on small inline inputs (no package download)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from beir_sets import chunk_paragraphs  # the build scripts are standalone, stdlib-only
from build_faq_set import parse_entries
from build_go_sets import base_form, example_symbol, howto_question, parse_go_file, usage_queries
from build_policy_set import parse_sections
from build_pyindex_set import IndexParser


@pytest.mark.parametrize(
    ("name", "doc", "question"),
    [
        (
            "TrimSpace",
            "TrimSpace returns a slice of the string s, with all leading and trailing white "
            "space removed, as defined by Unicode.",
            "How do I get a slice of the string s, with all leading and trailing white space "
            "removed, as defined by Unicode?",
        ),
        (
            "IsSorted",
            "IsSorted reports whether data is sorted.",
            "How do I check whether data is sorted?",
        ),
        ("Len", "Len returns n.", None),  # too short
        (
            "HasPrefix",
            "HasPrefix reports whether the byte slice s begins with prefix.",
            "How do I check whether the byte slice s begins with prefix?",
        ),
        (
            "Copy",
            "Copy copies from src to dst until either EOF is reached on src or an error occurs. "
            "It returns the number of bytes copied.",
            "How do I copy from src to dst until either EOF is reached on src or an error occurs?",
        ),
        ("Reader", "Reader is a buffered reader for the io.Reader it wraps.", None),  # not a verb
        ("Other", "TrimSpace returns the string.", None),  # another symbol's comment
        ("Old", "Deprecated: use New.", None),
    ],
)
def test_howto_questions(name: str, doc: str, question: str | None) -> None:
    assert howto_question(name, doc) == question


@pytest.mark.parametrize(
    ("verb", "base"),
    [
        ("returns", "get"),
        ("reads", "read"),
        ("applies", "apply"),
        ("matches", "match"),
        ("fixes", "fix"),
        ("does", "do"),
        ("is", None),
        ("class", None),
        ("uses", "use"),
    ],
)
def test_base_form(verb: str, base: str | None) -> None:
    assert base_form(verb) == base


def test_example_symbols() -> None:
    assert example_symbol("TrimSpace") == ("", "TrimSpace")
    assert example_symbol("Buffer_Write") == ("Buffer", "Write")
    assert example_symbol("Buffer_Write_second") == ("Buffer", "Write")
    assert example_symbol("TrimSpace_unicode") == ("", "TrimSpace")
    assert example_symbol("") is None


GO_FILE = """// Copyright 2009 The Go Authors.

package strings

// TrimSpace returns a slice of the string s.
//
//go:noinline
func TrimSpace(s string) string {
	start := 0
	stop := len(s)
	return s[start:stop]
}

func (b *Builder[T]) Len() int { return len(b.buf) }

// asm is implemented in assembly.
func asm(x int) int

func (b *Builder) grow(n int) {
	buf := make([]byte, len(b.buf), 2*cap(b.buf)+n)
	copy(buf, b.buf)
	b.buf = buf
}
"""

EXAMPLE_FILE = """package strings_test

func ExampleTrimSpace() {
	fmt.Println(strings.TrimSpace(" \\t Hello \\n"))
	// Output: Hello
}

func ExampleBuilder() {
	var b strings.Builder
}

func ExampleBuilder_Len() {
	var b strings.Builder
	// b.Len() is zero
	fmt.Println(b.Len())
}
"""


def test_go_functions_and_examples(tmp_path: Path) -> None:
    source = tmp_path / "strings.go"
    source.write_text(GO_FILE)
    found = parse_go_file(source, "strings", "strings/strings.go")
    # one-line and bodyless (assembly) functions are not taken
    assert [(f.receiver, f.name) for f in found] == [("", "TrimSpace"), ("Builder", "grow")]
    trim = found[0]
    assert trim.doc == "TrimSpace returns a slice of the string s."
    assert trim.code.startswith("func TrimSpace(") and trim.code.endswith("\n}")
    assert "//" not in trim.code
    assert trim.title == "strings/strings.go:TrimSpace" and trim.exported
    assert not found[1].exported
    constrained = tmp_path / "zsys.go"
    constrained.write_text("//go:build linux\n\npackage strings\n\nfunc F() {\n\tx()\n}\n")
    assert parse_go_file(constrained, "strings", "strings/zsys.go") == []

    examples = tmp_path / "example_test.go"
    examples.write_text(EXAMPLE_FILE)
    assert usage_queries(examples) == [
        ("", "TrimSpace", 'fmt.Println(strings.TrimSpace(" \\t Hello \\n"))'),
        ("Builder", "Len", "fmt.Println(b.Len())"),
    ]


POLICY = """Debian Policy Manual
********************

* 1. About this manual

1. About this manual
********************


1.1. Scope
==========

This manual describes the policy requirements for the Debian
distribution.

Second paragraph of the scope.[1]

[1] A footnote that belongs elsewhere.


1.1.1. Sub scope
----------------

Nested text.

1. Introduction and scope of these appendices
*********************************************

Appendix text.
"""


def test_policy_sections() -> None:
    sections = parse_sections(POLICY)
    assert [(s.num, s.title) for s in sections] == [
        ("1", "About this manual"),
        ("1.1", "Scope"),
        ("1.1.1", "Sub scope"),
    ]
    assert sections[1].paragraphs() == [
        "This manual describes the policy requirements for the Debian distribution.",
        "Second paragraph of the scope.[1]",
    ]
    assert sections[1].parent == "1" and sections[2].parent == "1.1"


FAQ = """Table of Contents

1. Definitions and overview
    1.1. What is this FAQ?

Chapter 1. Definitions and overview

1.1. What is this FAQ?

    This document gives frequently asked questions.

1.2. What is the difference between Debian GNU/Linux and other Linux
distributions?

    Key features.

    Second paragraph.

1.2.1. dpkg

    A heading, not a question.
"""


def test_faq_entries() -> None:
    entries = parse_entries(FAQ)
    assert [(e.num, e.question, e.chapter) for e in entries] == [
        ("1.1", "What is this FAQ?", "Definitions and overview"),
        (
            "1.2",
            "What is the difference between Debian GNU/Linux and other Linux distributions?",
            "Definitions and overview",
        ),
        ("1.2.1", "dpkg", "Definitions and overview"),
    ]
    assert entries[1].paragraphs() == ["Key features.", "Second paragraph."]


INDEX = """<table class="indextable genindextable"><tr><td><ul>
<li>
  generator
  <ul>
    <li><a href="reference/expressions.html#index-22">expression</a>,
      <a href="tutorial/classes.html#index-1">[1]</a></li>
  </ul></li>
<li><a href="reference/simple_stmts.html#index-18">assert statement</a></li>
<li><a href="library/operator.html#operator.__iadd__">__iadd__() (in module operator)</a>
  <ul>
    <li><a href="reference/datamodel.html#object.__iadd__">(object method)</a></li>
  </ul></li>
</ul></td></tr></table>"""


def test_index_entries() -> None:
    parser = IndexParser()
    parser.feed(INDEX)
    assert parser.entries == [
        (
            "generator expression",
            ["reference/expressions.html#index-22", "tutorial/classes.html#index-1"],
        ),
        ("assert statement", ["reference/simple_stmts.html#index-18"]),
        ("__iadd__() (in module operator)", ["library/operator.html#operator.__iadd__"]),
        ("__iadd__() (object method)", ["reference/datamodel.html#object.__iadd__"]),
    ]


def test_chunks_are_balanced_and_bounded() -> None:
    paragraphs = [" ".join(["word"] * 120)] * 5  # 600 words
    groups = chunk_paragraphs(paragraphs, 300)
    sizes = [sum(len(p.split()) for p in g) for g in groups]
    assert sum(sizes) == 600 and max(sizes) <= 300 and len(groups) == 3
    assert chunk_paragraphs([], 300) == []
