"""File discovery: folders walked with ``.gitignore`` rules, hidden files skipped, types detected.

Only metadata is read here (names, types, sizes; for a code file of no known type, its first
line, for a shebang); contents are read once by the ingest job with
:func:`server.ingest.source_io.read_source`, which hashes them and detects binary files.

Invariants (property-tested in tests/test_ingest_walk.py):

1. Nothing is dropped silently. Every entry of a listed folder is ingested, counted as
   hidden/ignored, or skipped with a short reason (:class:`Skip`). Every file-system error is a
   skip of kind ``error``, never a traceback: a folder that cannot be listed, a file whose type
   or size cannot be read, an entry that vanished or was replaced by another kind of entry
   between being listed and being opened, a ``.gitignore`` that cannot be read (its folder is
   then not walked, so files it would exclude never leak in).
2. Prune only what the walk proves gone (:meth:`Discovery.gone`): a stored source under an
   ingested folder is gone only when it was not found, no folder on its path failed to be
   listed and neither it nor a folder on its path is now a symlink (links are not followed, so
   what is behind one is unproven). Entries found but not ingested (unreadable, too large,
   wrong type) are present.
3. Each file is taken at most once per run, under its real path; a second path to the same
   inode (a hard link) is skipped as a link, and so is a new name of a file already stored
   under another path, in this walk or not (one file, one stored copy). Symbolic links inside
   a walk are never followed, and each one is skipped with the reason (kind ``link``):

   - the target is a file or folder inside the ingested folders: it is taken under its own
     path (following the link would only ingest it twice);
   - the target is the link's own folder or a folder above it: a loop;
   - the target is outside every ingested folder: not followed (pass that path to ingest it);
   - the link is broken, or its chain of links never ends.

   A path named on the command line is resolved first, so a symlink given explicitly is
   followed.
4. Nothing blocks: only folders and regular files are ever opened; FIFOs, sockets and devices
   are skipped by the type the listing reports.
"""

from __future__ import annotations

import errno
import io
import os
import re
import stat
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec
from identify.identify import parse_shebang, tags_from_interpreter

from server.ingest.chunkers.base import binary_reason, is_binary
from server.ingest.source_io import (
    SkipKind,
    UnreadableSource,
    cannot_read,
    kind_name,
    os_reason,
    read_head,
    read_source,
    too_large,
)
from server.settings import Domain

DOC_FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".mdx": "markdown",
    ".rst": "rst",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}
"""Document formats (docs and legal domains) by file extension."""

CODE_LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".java": "java",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",  # parsed as cpp when it has C++-only lines (code_languages.header_language)
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".ipp": "cpp",
    ".inl": "cpp",
    ".cs": "csharp",
    ".csx": "csharp",
    ".rb": "ruby",
    ".rake": "ruby",
    ".gemspec": "ruby",
    ".php": "php",
    ".swift": "swift",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".scala": "scala",
    ".sc": "scala",
    ".sbt": "scala",
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".ksh": "shell",
    # Line windows (no parser): common source and config formats.
    ".sql": "sql",
    ".lua": "lua",
    ".r": "r",
    ".pl": "perl",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".ini": "ini",
    ".cfg": "ini",
    ".css": "css",
    ".scss": "css",
    ".html": "html",
    ".md": "markdown",
    ".rst": "rst",
    ".txt": "text",
}
"""Code-domain languages by file extension."""

_DOC_NAME = re.compile(
    r"^(?:README|READ\.ME|CHANGELOG|CHANGES|NEWS|HISTORY|INSTALL|UPGRADING|CONTRIBUTING|"
    r"AUTHORS|THANKS|CREDITS|MAINTAINERS|TODO|BUGS|FAQ|USAGE|NOTICE|PATENTS|SECURITY|SUPPORT|"
    r"CODE_OF_CONDUCT|RELEASE[-_]?NOTES)(?:[-._][\w.-]*)?$",
    re.IGNORECASE,
)
"""A project's plain-text document by its name, whatever follows it (``README``,
``README.Debian``, ``NEWS.api``, ``changelog.Debian``, ``INSTALL-unix``), in the docs and legal
domains: text unless its extension names a document format (``README.md``, ``HISTORY.rst``)
or a code or data language (``readme.py`` stays code's)."""
_LICENCE_NAME = re.compile(
    r"^(?:LICEN[CS]E|COPYING|COPYRIGHT|NOTICE|PATENTS)(?:[-._][\w.-]*)?$", re.IGNORECASE
)
"""A licence text by its name, whatever follows it (``COPYRIGHT``, Debian's ``copyright``,
``LICENSE-MIT``, ``COPYING.LESSER``, ``LICENSE.APACHE``), in the docs and legal domains."""
_VERSION_SUFFIX = re.compile(r"^\.\d+$")

CODE_FILENAMES = {"Makefile": "make", "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake"}
ALWAYS_IGNORED_DIRS = {"node_modules", "__pycache__"}


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest: where it is, how it is cited, how it is parsed."""

    path: Path
    root: Path
    rel_path: str
    format: str
    """markdown | rst | text | html | pdf | code | notebook"""
    language: str | None = None
    size: int = 0

    @property
    def source(self) -> str:
        """The stored ``source``: the absolute resolved POSIX path."""
        return self.path.as_posix()


@dataclass(frozen=True)
class Skip:
    """An entry not ingested: its path as walked (a link's own path, not its target's), a short
    readable reason, and its kind (see :data:`~server.ingest.source_io.SkipKind`)."""

    path: str
    reason: str
    kind: SkipKind = "file"


@dataclass
class Discovery:
    """What a walk found: files to ingest, entries skipped with a reason, the prune evidence."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    ignored: int = 0
    """Hidden, ``.gitignore``'d and always-ignored entries (node_modules, __pycache__)."""
    roots: list[Path] = field(default_factory=list)
    """The path arguments that exist, resolved (files and folders)."""
    folders: list[Path] = field(default_factory=list)
    """The roots that are folders: the scope of ``--prune``."""
    unlisted: list[Path] = field(default_factory=list)
    """Folders that were not listed completely (each also has a skip of kind ``error``)."""
    present: set[str] = field(default_factory=set)
    """Real POSIX paths of the files found, ingested or skipped (links and duplicates excepted)."""
    unfollowed: list[Path] = field(default_factory=list)
    """Symlinks met in the walk (never followed): a stored source at or under one may still be
    on disk behind it (a file moved away and linked back, a folder moved to another disk), so
    the walk cannot prove it gone: kept, never pruned."""
    refused: dict[str, Skip] = field(default_factory=dict)
    """Entries found and not taken for what they are (an unsupported type, over the size
    limit, a pipe or socket): source -> its skip. A stored one's chunks are an older
    version's."""
    linked: dict[str, str] = field(default_factory=dict)
    """Names skipped because the same file is taken or stored under another path (hard links,
    and symlinks to a file taken under its own path): name -> that path. On disk, so never
    "gone"; a stored one is a second copy of that file."""

    def gone(self, stored: Iterable[str]) -> tuple[list[str], list[str]]:
        """Split stored sources that this walk did not find into ``(gone, kept)``, both sorted.

        Only sources under an ingested folder are considered. ``gone``: every folder on the
        path was listed and the source was not among the entries (safe to prune). ``kept``: a
        folder on the path could not be listed, or the path (or a folder on it) is now a
        symlink, which the walk does not follow, so the source may still exist; never pruned.
        """
        gone: list[str] = []
        kept: list[str] = []
        for source in sorted(set(stored)):
            if source in self.present or source in self.linked:
                continue
            if not under_roots(source, self.folders):
                continue
            unproven = under_roots(source, self.unlisted) or under_roots(source, self.unfollowed)
            (kept if unproven else gone).append(source)
        return gone, kept


SHEBANG_LANGUAGES = ("python", "javascript", "ruby", "php", "perl", "shell")
"""Languages a shebang can name (``identify``'s interpreter tags), in the order tags are tried."""
_SHEBANG_PROBE = 1024
_BINARY_PROBE = 8192
"""Bytes read to tell a skipped file's binary content (chunkers.base.is_binary sniffs as many)."""
MORE_INTERPRETERS = {
    **dict.fromkeys(("deno", "ts-node", "tsx", "bun"), "typescript"),
    **dict.fromkeys(("pypy", "pypy3", "uv"), "python"),  # uv: ``uv run --script`` (PEP 723)
}
"""Interpreters ``identify``'s table lacks, by the language of the scripts they run."""
LAUNCHERS = frozenset({"npx", "pnpx", "bunx"})
"""Commands that run the program named after them (``#!/usr/bin/env -S npx tsx``)."""
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shebang_language(path: Path) -> str | None:
    """The language a script's shebang names (``#!/usr/bin/env python3``, ``#!/bin/bash``,
    ``#!/usr/bin/env -S node --flag``, ``#!/usr/bin/env PYTHONPATH=. python3``, ``deno``,
    ``uv run --script``, ``npx tsx``: :data:`MORE_INTERPRETERS`, :data:`LAUNCHERS`), or None:
    no shebang, or an interpreter of no language in :data:`SHEBANG_LANGUAGES`. Reads at most
    the first 1 KiB.

    Parsing and the interpreter table are pre-commit's ``identify`` (versioned names such as
    ``python3.12`` included). Raises :class:`UnreadableSource` when the file cannot be read
    or is no longer a regular file (opened as the ingest opens it: a FIFO never blocks).
    """
    interpreter = shebang_interpreter(read_head(path, _SHEBANG_PROBE))
    name = interpreter
    while name:  # pypy3.10 -> pypy3, as identify tries versioned names
        if name in MORE_INTERPRETERS:
            return MORE_INTERPRETERS[name]
        name = name.rpartition(".")[0]
    tags = tags_from_interpreter(interpreter) if interpreter else set()
    return next((lang for lang in SHEBANG_LANGUAGES if lang in tags), None)


def shebang_interpreter(head: bytes) -> str:
    """The interpreter a file's first bytes name in a shebang (``python3`` for
    ``#!/usr/bin/env -S PYTHONPATH=. python3``), or "" when they hold none."""
    head = head.removeprefix(b"\xef\xbb\xbf")  # an editor's BOM
    if not head.startswith(b"#!") or (len(head) >= _SHEBANG_PROBE and b"\n" not in head):
        return ""  # none, or a first line longer than any shebang
    command = list(parse_shebang(io.BytesIO(head)))
    if command and command[0].rpartition("/")[2] == "env":  # an env identify does not know
        command = command[1:]
    while command:
        word = command.pop(0)
        # env's options and assignments (env -S PYTHONPATH=. python3), a launcher and its own
        if word.startswith("-") or _ASSIGNMENT.match(word) or word.rpartition("/")[2] in LAUNCHERS:
            continue
        return str(word.rpartition("/")[2])
    return ""


def unsupported_reason(path: Path, domain: Domain) -> str:
    """Why a file :func:`detect_format` gives no format is skipped: binary content
    (chunkers.base.binary_reason), a shebang naming an interpreter of no language the code
    domain parses, or its extension (or its having none). Reads at most 8 KiB."""
    suffix = path.suffix.lower()
    reason = f"unsupported file type for {domain.value}"
    named = f"extension {suffix}" if suffix else "no extension"
    try:
        head = read_head(path, _BINARY_PROBE)
    except UnreadableSource:
        return f"{reason} ({named})"
    if is_binary(head):
        return binary_reason(head)
    interpreter = shebang_interpreter(head[:_SHEBANG_PROBE])  # as detect_format reads it
    if domain is Domain.CODE and interpreter:
        known = ", ".join(dict.fromkeys([*SHEBANG_LANGUAGES, *MORE_INTERPRETERS.values()]))
        return f"{reason}: its shebang runs {interpreter!r}, which runs none of {known}"
    return f"{reason} ({named})"


def detect_format(
    path: Path, domain: Domain, *, strict: bool = False
) -> tuple[str, str | None] | None:
    """(format, language) for a file in a domain, or None when the type is not supported.

    A code file whose name and extension name no language is a script when its shebang names
    one (:func:`shebang_language`): ``bin/deploy`` with ``#!/usr/bin/env python3`` is Python.
    A file that cannot be read for that is unsupported, unless ``strict``: then
    :class:`UnreadableSource`.
    """
    suffix = path.suffix.lower()
    if suffix == ".ipynb":  # a Jupyter notebook: code and docs (chunkers/notebook.py)
        return ("notebook", None) if domain is not Domain.LEGAL else None
    if domain is Domain.CODE:
        language = CODE_FILENAMES.get(path.name) or CODE_LANGUAGES.get(suffix)
        if language is None:
            try:
                language = shebang_language(path)
            except UnreadableSource:
                if strict:
                    raise
        return ("code", language) if language else None
    fmt = DOC_FORMATS.get(suffix)
    if fmt is None and _DOC_NAME.match(path.name) and suffix not in CODE_LANGUAGES:
        fmt = "text"
    if fmt is None and _LICENCE_NAME.match(path.name):
        fmt = "text"
    if fmt is None and domain is Domain.LEGAL and (not suffix or _VERSION_SUFFIX.match(suffix)):
        # a legal folder's file without a type is a text (Debian's common-licenses: GPL-3,
        # Apache-2.0, MPL-1.1); one that is not is skipped as binary, with its reason
        fmt = "text"
    return (fmt, None) if fmt else None


def discover(
    paths: Sequence[Path | str],
    domain: Domain,
    max_file_bytes: int,
    prefer: Collection[str] = (),
    exclude: Collection[Path] = (),
) -> Discovery:
    """Files under ``paths`` worth ingesting for ``domain``; everything else has a reason.

    Folders are walked depth-first in name order; see the module docstring for what is
    guaranteed. Of several hard links to one file, the first in that order is taken, unless
    another one is in ``prefer`` (the sources already stored), walked or not: a new link never
    moves a stored file to a new path nor stores it twice. ``exclude``: folders never walked,
    counted as ignored (the store, which may live under an ingested folder). Never raises for
    anything found on disk: problems become skips.
    """
    walk = _Walk(domain, max_file_bytes, frozenset(prefer))
    walk.exclude = frozenset(Path(os.path.realpath(p)) for p in exclude)
    for raw in paths:
        walk.add_root(raw)
    walk.classify_links()
    return walk.found


def under_roots(source: str, roots: Iterable[Path]) -> bool:
    """True when the stored source is one of ``roots`` or lies under one of them."""
    for root in roots:
        posix = root.as_posix()
        if source == posix or source.startswith(posix.rstrip("/") + "/"):
            return True
    return False


# -- .gitignore ----------------------------------------------------------------------------------

_GITIGNORE_MAX_BYTES = 1_000_000


class _IgnoreRules:
    """``.gitignore`` files found on the way down, each applied below its own folder."""

    def __init__(self) -> None:
        self._specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def load(self, directory: Path) -> tuple[str | None, list[Skip]]:
        """Read ``directory/.gitignore`` if there is one and apply it below ``directory``.

        Returns ``(unreadable, notes)``: why it exists but cannot be read (the caller must
        then not walk the folder: the files it excludes would leak in), and skips for a
        symlinked file (not read, as in git) and for invalid patterns (the rest apply).
        """
        path = directory / ".gitignore"
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return None, []
        except OSError as exc:
            return os_reason(exc), []
        if stat.S_ISLNK(mode):
            return None, [Skip(_display(path), "symlinked .gitignore not read (as in git)", "link")]
        if not stat.S_ISREG(mode):
            return None, []
        try:
            data = read_source(path, _GITIGNORE_MAX_BYTES)
        except UnreadableSource as exc:
            return str(exc).removeprefix("cannot read: "), []
        spec, notes = _compile(path, data.decode("utf-8", errors="replace").splitlines())
        self._specs.append((directory, spec))
        return None, notes

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec in self._specs:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + "/" if is_dir else rel):
                return True
        return False


def gitignore_spec(directory: Path) -> pathspec.GitIgnoreSpec | None:
    """The rules of ``directory/.gitignore`` exactly as a walk applies them below
    ``directory`` (invalid lines dropped); None when there is none, or it cannot be read, or
    it is a symlink."""
    rules = _IgnoreRules()
    rules.load(directory)
    return rules._specs[0][1] if rules._specs else None


def repo_folders_above(start: Path) -> list[Path]:
    """The folders above ``start`` whose ``.gitignore`` a walk of ``start`` applies (up to the
    enclosing repository's root, outermost first; none outside a repository)."""
    return _enclosing_repo(start)


def _compile(path: Path, lines: list[str]) -> tuple[pathspec.GitIgnoreSpec, list[Skip]]:
    """The spec of the valid lines; each invalid one is skipped with a reason (git ignores
    them too)."""
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines), []
    except ValueError:
        pass
    valid: list[str] = []
    problems: list[Skip] = []
    for number, line in enumerate(lines, 1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except ValueError:
            reason = f"invalid pattern {line!r} on line {number} not applied"
            problems.append(Skip(path.as_posix(), reason, "error"))
            continue
        valid.append(line)
    return pathspec.GitIgnoreSpec.from_lines(valid), problems


# -- the walk ------------------------------------------------------------------------------------

_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)  # a folder swapped for a link after listing is refused
    | getattr(os, "O_CLOEXEC", 0)
)

_Identity = tuple[int, int]
"""(st_dev, st_ino): what a path was when it was listed."""


@dataclass
class _Entry:
    """One name of a folder listing, typed while the folder is open."""

    name: str
    kind: str
    """dir | file | link | other | hidden | unknown (its type could not be read)"""
    stat: os.stat_result | None = None
    error: OSError | None = None


class _Walk:
    """The state of one :func:`discover` call: what was found, walked and linked."""

    def __init__(
        self, domain: Domain, max_file_bytes: int, prefer: frozenset[str] = frozenset()
    ) -> None:
        self.domain = domain
        self.max_file_bytes = max_file_bytes
        self.prefer = prefer
        self.exclude: frozenset[Path] = frozenset()
        """Folders never walked (the store, when it lives under an ingested folder)."""
        self.found = Discovery()
        self.walked: set[Path] = set()
        self.taken: dict[_Identity, Path] = {}
        self._stored_links: dict[_Identity, str] | None = None
        """Identities of the stored sources with several names (stored_elsewhere), by need."""
        self.links: list[tuple[Path, Path, Path]] = []
        """(link, the real folder holding it, its root): classified once every root is walked."""

    def stored_elsewhere(
        self, source: str, identity: _Identity, info: os.stat_result
    ) -> str | None:
        """The stored source (``prefer``) that keeps this very file under another name: the
        first in sorted order of its stored names, which this one is not (a file stored under
        two names, in separate runs, keeps the first); None when there is none. The stored
        sources are looked at (one stat each, once per walk) only when a file with several
        names turns up."""
        if info.st_nlink < 2 or not info.st_ino:
            return None
        if self._stored_links is None:
            self._stored_links = {}
            for stored in sorted(self.prefer):
                try:
                    known = os.stat(stored, follow_symlinks=False)
                except OSError:
                    continue  # gone: the prune evidence is the walk's, not this
                if stat.S_ISREG(known.st_mode) and known.st_nlink > 1:
                    self._stored_links.setdefault((known.st_dev, known.st_ino), stored)
        keeper = self._stored_links.get(identity)
        return None if keeper == source else keeper

    def skip(self, path: Path | str, reason: str, kind: SkipKind) -> None:
        shown = _display(path) if isinstance(path, Path) else path
        self.found.skipped.append(Skip(shown, reason, kind))

    def refuse(self, source: str, path: Path, reason: str) -> None:
        """Skip a readable file for what it is (``Discovery.refused``)."""
        self.skip(path, reason, "file")
        self.found.refused[source] = self.found.skipped[-1]

    def add_root(self, raw: Path | str) -> None:
        path = Path(raw).expanduser()
        try:
            real = Path(os.path.realpath(path, strict=True))
            info = os.stat(real)
        except OSError as exc:
            self.skip(_display(raw), _root_reason(path, exc), "error")
            return
        if stat.S_ISDIR(info.st_mode):
            self.found.roots.append(real)
            self.found.folders.append(real)
            self.walk_folder(real, (info.st_dev, info.st_ino))
        elif stat.S_ISREG(info.st_mode):
            self.found.roots.append(real)
            self.add_file(real, real.parent, info)
        else:
            self.skip(_display(raw), f"not a regular file ({kind_name(info.st_mode)})", "file")

    def walk_folder(self, root: Path, identity: _Identity) -> None:
        rules = _IgnoreRules()
        for parent in _enclosing_repo(root):
            unreadable, notes = rules.load(parent)
            self.found.skipped.extend(notes)
            if unreadable:
                where = _display(parent / ".gitignore")
                self.not_listed(root, f"not walked: {where} cannot be read ({unreadable})")
                return
        stack: list[tuple[Path, _Identity | None]] = [(root, identity)]
        while stack:
            here, expected = stack.pop()
            if here in self.walked:  # overlapping roots
                continue
            listing = _list(here, expected)
            if isinstance(listing, str):
                self.not_listed(here, listing)
                continue
            if any(e.name == ".gitignore" for e in listing):
                unreadable, notes = rules.load(here)
                self.found.skipped.extend(notes)
                if unreadable:
                    self.not_listed(
                        here, f"not walked: its .gitignore cannot be read ({unreadable})"
                    )
                    continue
            self.walked.add(here)
            folders = self.take_listing(here, root, listing, rules)
            stack.extend(reversed(folders))

    def not_listed(self, folder: Path, reason: str) -> None:
        self.skip(folder, reason, "error")
        self.found.unlisted.append(folder)

    def take_listing(
        self, here: Path, root: Path, listing: list[_Entry], rules: _IgnoreRules
    ) -> list[tuple[Path, _Identity | None]]:
        """Sort one folder's entries out; returns the subfolders to walk, in name order."""
        folders: list[tuple[Path, _Identity | None]] = []
        for entry in sorted(listing, key=lambda e: e.name):
            child = here / entry.name
            if entry.kind == "hidden":
                self.found.ignored += 1
                continue
            if not _is_utf8(entry.name):
                self.skip(child, "name is not valid UTF-8 (rename it to ingest it)", "file")
                continue
            if entry.kind == "unknown":  # it may be a file or a folder: protect both
                reason = os_reason(entry.error) if entry.error else "unknown type"
                self.skip(child, f"cannot read its type: {reason}", "error")
                self.found.present.add(child.as_posix())
                self.found.unlisted.append(child)
                continue
            is_dir = entry.kind == "dir"
            if (
                (entry.kind in ("dir", "link") and entry.name in ALWAYS_IGNORED_DIRS)
                or (is_dir and child in self.exclude)
                or rules.ignored(child, is_dir=is_dir)
            ):
                self.found.ignored += 1
            elif entry.kind == "link":
                self.links.append((child, here, root))
                self.found.unfollowed.append(child)
            elif is_dir:
                info = entry.stat
                folders.append((child, (info.st_dev, info.st_ino) if info else None))
            elif entry.kind == "file" and entry.stat is not None:
                self.add_file(child, root, entry.stat)
            elif entry.kind == "file":
                reason = cannot_read(entry.error) if entry.error else "cannot read its size"
                self.skip(child, reason, "error")
                self.found.present.add(child.as_posix())
            else:
                what = kind_name(entry.stat.st_mode) if entry.stat else "special file"
                # a stored file replaced by a pipe or socket holds no version of its text
                self.refuse(child.as_posix(), child, f"not a regular file ({what})")
                self.found.present.add(child.as_posix())
        return folders

    def add_file(self, path: Path, root: Path, info: os.stat_result) -> None:
        """A regular file at its real ``path``: taken, or skipped with the reason."""
        source = path.as_posix()
        if source in self.found.present:  # reached again through an overlapping root
            return
        identity = (info.st_dev, info.st_ino)
        first = self.taken.get(identity) if info.st_ino else None
        if first is not None:
            shown = _show(first, root)
            self.skip(path, f"hard link to {shown} (same file), ingested under that path", "link")
            self.found.linked[source] = first.as_posix()
            return
        stored = self.stored_elsewhere(source, identity, info)
        if stored is not None:
            # a new name of a file stored under another (later in this walk, or outside it):
            # the stored path keeps it, so a new link never moves or duplicates a stored file
            shown = _show(Path(stored), root)
            self.skip(path, f"hard link to {shown} (same file), ingested there", "link")
            self.found.linked[source] = stored
            return
        self.found.present.add(source)
        try:
            detected = detect_format(path, self.domain, strict=True)
        except UnreadableSource as error:  # read for its shebang (stays present: never pruned)
            self.skip(path, str(error), error.kind)
            return
        if detected is None:
            self.refuse(source, path, unsupported_reason(path, self.domain))
            return
        if info.st_size > self.max_file_bytes:
            self.refuse(source, path, too_large(info.st_size, self.max_file_bytes))
            return
        self.taken[identity] = path
        fmt, language = detected
        self.found.files.append(
            SourceFile(
                path=path,
                root=root,
                rel_path=path.relative_to(root).as_posix(),
                format=fmt,
                language=language,
                size=info.st_size,
            )
        )

    # -- links ---------------------------------------------------------------------------------

    def classify_links(self) -> None:
        """Skip every symlink met in a walk with its reason (none is followed)."""
        for link, here, root in self.links:
            self.skip(link, self.link_reason(link, here, root), "link")

    def link_reason(self, link: Path, here: Path, root: Path) -> str:
        try:
            target = Path(os.path.realpath(link, strict=True))
            info = os.stat(target)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symlink loop: its chain of links never ends"
            if isinstance(exc, FileNotFoundError | NotADirectoryError):
                return f"broken symlink: {_readlink(link)} does not exist"
            return f"symlink cannot be followed: {os_reason(exc)}"
        if stat.S_ISDIR(info.st_mode):
            return self.folder_link_reason(target, here, root)
        if not stat.S_ISREG(info.st_mode):
            return f"symlink to a {kind_name(info.st_mode)}, not followed"
        first = self.taken.get((info.st_dev, info.st_ino)) if info.st_ino else None
        shown = _show(target, root)
        if first is not None:  # stored under this link's path before: a second copy now
            self.found.linked[link.as_posix()] = first.as_posix()
        if first == target:
            return f"symlink to {shown}, ingested under its own path"
        if first is not None:
            return f"symlink to {shown}, same file as {_show(first, root)}, ingested there"
        if target.as_posix() in self.found.present:
            return f"symlink to {shown}, skipped under its own path"
        if not under_roots(target.as_posix(), self.found.folders):
            return f"symlink to a file outside the ingested folders, not followed: {target}"
        if under_roots(target.as_posix(), self.found.unlisted):
            return f"symlink to {shown}, in a folder that could not be listed"
        return f"symlink to {shown}, which is hidden or ignored"

    def folder_link_reason(self, target: Path, here: Path, root: Path) -> str:
        if target == here:
            return "symlink loop: points to its own folder"
        if target in here.parents:
            return "symlink loop: points to a folder above it"
        if not under_roots(target.as_posix(), self.found.folders):
            return f"symlink to a folder outside the ingested folders, not followed: {target}"
        if target in self.walked:
            return f"symlink to folder {_show(target, root)}, walked under its own path"
        if under_roots(target.as_posix(), self.found.unlisted):
            return f"symlink to folder {_show(target, root)}, which could not be listed"
        return f"symlink to folder {_show(target, root)}, which is hidden or ignored"


def _list(here: Path, expected: _Identity | None) -> list[_Entry] | str:
    """The entries of one folder, typed and stat'ed while it is open; or why it cannot be
    listed. ``expected``: the folder's identity when its parent was listed (a folder replaced
    since then is not walked: it is not what the parent held)."""
    try:
        fd = os.open(here, _DIR_FLAGS)
    except OSError as exc:
        return f"cannot list folder: {_folder_reason(here, exc)}"
    try:
        info = os.fstat(fd)
        if expected is not None and (info.st_dev, info.st_ino) != expected:
            return "cannot list folder: replaced by another folder after it was listed"
        with os.scandir(fd) as listing:
            return [_typed(entry) for entry in listing]
    except OSError as exc:
        return f"cannot list folder: {os_reason(exc)}"
    finally:
        os.close(fd)


def _typed(entry: os.DirEntry[str]) -> _Entry:
    """The entry's kind from a fresh ``lstat`` (the listing's type may be stale), falling back
    on the listing's type when the entry cannot be stat'ed (no search permission)."""
    if entry.name.startswith("."):
        return _Entry(entry.name, "hidden")
    try:
        if entry.is_symlink():
            return _Entry(entry.name, "link")
        listed = "dir" if entry.is_dir(follow_symlinks=False) else "file"
        if listed == "file" and not entry.is_file(follow_symlinks=False):
            listed = "other"
    except OSError as exc:
        return _Entry(entry.name, "unknown", error=exc)
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError as exc:
        return _Entry(entry.name, listed, error=exc)
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        return _Entry(entry.name, "link")
    kind = "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
    return _Entry(entry.name, kind, stat=info)


def _enclosing_repo(start: Path) -> list[Path]:
    """Folders above ``start`` up to the repository root (holding ``.git``), outermost first;
    none when ``start`` is not inside a repository."""
    parents: list[Path] = []
    for parent in start.parents:
        parents.append(parent)
        if os.path.lexists(parent / ".git"):
            return list(reversed(parents))
    return []


def _root_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: its chain of links never ends"
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return "broken symlink" if os.path.islink(path) else "no such file or directory"
    return os_reason(exc)


def _folder_reason(folder: Path, exc: OSError) -> str:
    """Why a folder did not open; ELOOP or ENOTDIR mean it is no longer a folder (Linux says
    ENOTDIR for a symlink opened with O_DIRECTORY | O_NOFOLLOW): say what it became."""
    if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
        return os_reason(exc)
    try:
        now = kind_name(os.lstat(folder).st_mode)
    except OSError:
        return "replaced after it was listed"
    return f"replaced by a {now} after it was listed"


def _readlink(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return "its target"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
        return False
    return True


def _show(path: Path, root: Path) -> str:
    """A path for reasons: relative to the walk's root when under it, else absolute."""
    if path != root and path.is_relative_to(root):
        return _display(path.relative_to(root))
    return _display(path)


def _display(path: Path | str) -> str:
    """A path as text that prints and serialises (undecodable bytes as ``\\xNN``)."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")
