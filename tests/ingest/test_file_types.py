"""File types the walk decides by more than an extension: scripts by their shebang, project
documents by their name.

Invariant: in the code domain a file of no known name or extension is taken exactly when its
first line is a shebang naming an interpreter of a supported language (directly, through
``env``, ``env -S``, with flags or a versioned name), with that language; every other such
file is skipped with a reason, and one that cannot be read is an error skip that stays present
(never pruned). The expected languages below are written out, not taken from the code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from walk_support import as_unprivileged, open_tempdir, permissions_bite

from server.ingest.source_io import UnreadableSource
from server.ingest.walker import detect_format, discover, shebang_interpreter, shebang_language
from server.settings import Domain

INTERPRETERS = {
    "python": "python",
    "python3": "python",
    "python3.12": "python",
    "python2.7": "python",
    "node": "javascript",
    "nodejs": "javascript",
    "ruby": "ruby",
    "perl": "perl",
    "php": "php",
    "php8": "php",
    "bash": "shell",
    "sh": "shell",
    "zsh": "shell",
    "dash": "shell",
    "ksh": "shell",
    "awk": None,
    "tclsh": None,
    "osascript": None,
    "make": None,
    "deno": "typescript",
    "ts-node": "typescript",
    "npx tsx": "typescript",
    "uv run --script": "python",
    "pypy3": "python",
    "pypy3.10": "python",
}

SHEBANG_FORMS = [
    "/usr/bin/{}",
    "/usr/local/bin/{}",
    "/usr/bin/env {}",
    "/usr/bin/env -S {}",
    " /bin/{}",
    "/bin/env {}",
    "/usr/bin/env PYTHONPATH=. {}",
    "/usr/bin/env -S A=1 B=2 {}",
]


@st.composite
def scripts(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A script's bytes and the language it should be taken as (None: skipped)."""
    name = draw(st.sampled_from(sorted(INTERPRETERS)))
    flags = draw(st.sampled_from(["", " -u", " -e", " --harmony -x"]))
    form = draw(st.sampled_from(SHEBANG_FORMS))
    # no NUL: a file holding one is binary whatever its first line says
    body = draw(
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300
        )
    )
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    line = "#!" + form.format(name) + flags
    return (line + newline + body).encode(), INTERPRETERS[name]


@settings(max_examples=80, deadline=None)
@given(script=scripts(), file_name=st.sampled_from(["deploy", "run-tests", "tool.cgi", "x.1"]))
def test_a_shebang_decides_the_language_of_a_file_without_a_known_type(
    script: tuple[bytes, str | None], file_name: str
) -> None:
    content, language = script
    with open_tempdir() as root:
        (root / "bin").mkdir()
        (root / "bin" / file_name).write_bytes(content)
        found = discover([root], Domain.CODE, 1_000_000)
    if language is None:
        assert [f.rel_path for f in found.files] == []
        [skip] = found.skipped
        assert skip.reason.startswith("unsupported file type for code") and skip.kind == "file"
        # the reason names what the shebang runs, so a user sees why it was not recognised
        assert f"its shebang runs {shebang_interpreter(content)!r}" in skip.reason
    else:
        [taken] = found.files
        assert (taken.rel_path, taken.format, taken.language) == (
            f"bin/{file_name}",
            "code",
            language,
        )
        assert found.skipped == []


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"echo no shebang\n",
        b"# !/bin/bash\n",
        b"#!\n",
        b"#!/usr/bin/env\n",
        b"#!/bin/b\xe9sh\n",  # not UTF-8
        b"\x7fELF\x02\x01\x01" + bytes(range(256)),
        b"#!/bin/bash" + b"x" * 2000,  # no line end within the probe
    ],
)
def test_no_shebang_or_an_unusable_one_is_unsupported(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "tool").write_bytes(content)
    assert detect_format(tmp_path / "tool", Domain.CODE) is None
    found = discover([tmp_path], Domain.CODE, 1_000_000)
    reason = (
        "binary file" if b"\x00" in content else "unsupported file type for code (no extension)"
    )
    assert found.files == [] and [s.reason for s in found.skipped] == [reason]


@pytest.mark.parametrize(
    ("name", "content", "domain", "reason"),
    [
        ("blob", b"\x00\x00\x7fELF" * 300, Domain.CODE, "binary file"),
        ("blob", b"\x00\x00\x7fELF" * 300, Domain.DOCS, "binary file"),
        ("data.bin", b"\x00\x00\x01" * 500, Domain.LEGAL, "binary file"),
        (
            "notes.xyz",
            b"plain words\n",
            Domain.CODE,
            "unsupported file type for code (extension .xyz)",
        ),
        (
            "tool",
            b"#!/usr/bin/env lua\nprint(1)\n",
            Domain.DOCS,
            "unsupported file type for docs (no extension)",
        ),
        (
            "image.png",
            b"\x89PNG\r\n\x1a\n",
            Domain.DOCS,
            "unsupported file type for docs (extension .png)",
        ),
    ],
)
def test_a_skipped_file_says_what_it_is(
    tmp_path: Path, name: str, content: bytes, domain: Domain, reason: str
) -> None:
    """Fresh-user report: a binary file without an extension was 'unsupported file type',
    and a script for an interpreter we do not parse did not say which."""
    (tmp_path / name).write_bytes(content)
    found = discover([tmp_path], domain, 1_000_000)
    assert found.files == [] and [s.reason for s in found.skipped] == [reason]


def test_a_byte_order_mark_before_the_shebang_is_skipped(tmp_path: Path) -> None:
    """Fresh-user report: a UTF-8 BOM (some Windows editors write one) hid the shebang."""
    (tmp_path / "tool").write_bytes(b"\xef\xbb\xbf#!/usr/bin/env python3\nprint(1)\n")
    assert detect_format(tmp_path / "tool", Domain.CODE) == ("code", "python")


def test_names_and_extensions_come_before_the_shebang(tmp_path: Path) -> None:
    (tmp_path / "build.sh").write_text("#!/usr/bin/env python3\nprint(1)\n")
    (tmp_path / "Makefile").write_text("#!/usr/bin/make -f\nall:\n\ttrue\n")
    (tmp_path / "notes").write_text("#!/bin/bash\necho docs only\n")
    found = discover([tmp_path], Domain.CODE, 1_000_000)
    assert {f.rel_path: f.language for f in found.files} == {
        "build.sh": "shell", "Makefile": "make", "notes": "shell"
    }  # fmt: skip
    docs = discover([tmp_path], Domain.DOCS, 1_000_000)  # docs and legal never read shebangs
    assert "notes" not in {f.rel_path for f in docs.files}


def test_a_script_that_cannot_be_read_is_an_error_and_is_never_pruned() -> None:
    if not permissions_bite():
        pytest.skip("file permissions are not enforced for any user this test can run as")
    with open_tempdir() as root:
        (root / "deploy").write_text("#!/usr/bin/env python3\nprint(1)\n")
        (root / "deploy").chmod(0)
        found = as_unprivileged(lambda: discover([root], Domain.CODE, 1_000_000))
        assert [(Path(s.path).name, s.kind, s.reason) for s in found.skipped] == [
            ("deploy", "error", "cannot read: permission denied")
        ]
        assert f"{root}/deploy" in found.present  # found, so not gone
        assert found.gone([f"{root}/deploy"]) == ([], [])


def test_a_fifo_in_place_of_a_script_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "deploy")  # as if swapped in after the listing: opened, never blocks

    def probe() -> str:
        try:
            return f"taken: {shebang_language(tmp_path / 'deploy')}"
        except UnreadableSource as error:
            return f"{error.kind}: {error}"

    assert as_unprivileged(probe, drop=False) == "error: replaced by a FIFO after it was listed"


@pytest.mark.parametrize(
    ("name", "taken"),
    [
        ("README", "text"),
        ("README.Debian", "text"),
        ("README.api", "text"),
        ("NEWS.Debian", "text"),
        ("changelog.Debian", "text"),
        ("INSTALL-unix", "text"),
        ("CONTRIBUTING", "text"),
        ("RELEASE-NOTES.2", "text"),
        ("README.md", "markdown"),
        ("HISTORY.rst", "rst"),
        ("readme.py", None),  # code's, not a document
        ("CHANGELOG.json", None),
        ("READMEFIRST", None),  # not the name followed by a separator
        ("notes", None),
    ],
)
def test_project_documents_are_docs_by_their_name(
    tmp_path: Path, name: str, taken: str | None
) -> None:
    """Fresh-user report: README.Debian, README.api, NEWS.Debian (13 files of /usr/share/doc)
    were skipped as unsupported by docs, which took only README, README.md and README.txt."""
    (tmp_path / name).write_text("Plain words about the package.\n")
    found = discover([tmp_path], Domain.DOCS, 1_000_000)
    assert [f.format for f in found.files] == ([taken] if taken else [])
    if taken:  # legal also takes any file of no type as text
        found = discover([tmp_path], Domain.LEGAL, 1_000_000)
        assert [f.format for f in found.files] == [taken]
