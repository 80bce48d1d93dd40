"""Prefix and glob filters: the derived payload fields and the glob matcher."""

from __future__ import annotations

import pytest

from server.retrieval.filter_fields import (
    compile_glob,
    derived_filter_fields,
    glob_literal_prefix,
    glob_matches,
    normalize_section,
    path_prefixes,
    section_prefixes,
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
        "(b)",
    ]
    fields = derived_filter_fields("/r/msa.txt", {"section_path": "Art. 14 > (2)"})
    assert "Art. 14" in fields["section_prefixes"]


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
    with pytest.raises(ValueError, match="unclosed"):
        compile_glob("src/[a")
    with pytest.raises(ValueError, match="empty"):
        compile_glob("")
