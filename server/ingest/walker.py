"""File discovery: folders walked with ``.gitignore`` rules, hidden files skipped, types detected.

Only metadata is read here (names, sizes); contents are read once by the runner, which hashes
them and detects binary or undecodable files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

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

TEXT_FILENAMES = {"LICENSE", "LICENCE", "COPYING", "NOTICE", "PATENTS", "README", "AUTHORS"}
"""Extension-less text files (licence texts above all) taken by the docs and legal domains."""

CODE_FILENAMES = {"Makefile": "make", "Dockerfile": "dockerfile", "CMakeLists.txt": "cmake"}
ALWAYS_IGNORED_DIRS = {"node_modules", "__pycache__"}


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest: where it is, how it is cited, how it is parsed."""

    path: Path
    root: Path
    rel_path: str
    format: str
    """markdown | rst | text | html | pdf | code"""
    language: str | None = None
    size: int = 0

    @property
    def source(self) -> str:
        """The stored ``source``: the absolute resolved POSIX path."""
        return self.path.as_posix()


@dataclass
class Discovery:
    """What a walk found: files to ingest, files skipped with a reason, ignored count."""

    files: list[SourceFile] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0
    roots: list[Path] = field(default_factory=list)


def detect_format(path: Path, domain: Domain) -> tuple[str, str | None] | None:
    """(format, language) for a file in a domain, or None when the type is not supported."""
    suffix = path.suffix.lower()
    if domain is Domain.CODE:
        language = CODE_FILENAMES.get(path.name) or CODE_LANGUAGES.get(suffix)
        return ("code", language) if language else None
    fmt = DOC_FORMATS.get(suffix)
    if fmt is None and path.stem.upper() in TEXT_FILENAMES and suffix in ("", ".md", ".txt"):
        fmt = "text" if suffix != ".md" else "markdown"
    return (fmt, None) if fmt else None


class _IgnoreRules:
    """``.gitignore`` files found on the way down, each applied below its own folder."""

    def __init__(self) -> None:
        self._specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def load(self, directory: Path) -> None:
        gitignore = directory / ".gitignore"
        if gitignore.is_file():
            try:
                lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                return
            self._specs.append((directory, pathspec.GitIgnoreSpec.from_lines(lines)))

    def ignored(self, path: Path, is_dir: bool) -> bool:
        for base, spec in self._specs:
            try:
                rel = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + "/" if is_dir else rel):
                return True
        return False


def _find_repo_rules(start: Path, rules: _IgnoreRules) -> None:
    """Load ``.gitignore`` files of enclosing folders up to the repository root."""
    parents: list[Path] = []
    for parent in start.parents:
        parents.append(parent)
        if (parent / ".git").exists():
            break
    else:
        return
    for parent in reversed(parents):
        rules.load(parent)


def discover(paths: Sequence[Path | str], domain: Domain, max_file_bytes: int) -> Discovery:
    """Files under ``paths`` worth ingesting for ``domain``; everything else has a reason."""
    found = Discovery()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            found.skipped.append((str(raw), "no such file or directory"))
            continue
        path = path.resolve()
        if path.is_file():
            found.roots.append(path)
            _consider(path, path.parent, domain, max_file_bytes, found, seen)
            continue
        found.roots.append(path)
        rules = _IgnoreRules()
        _find_repo_rules(path, rules)
        for directory, dirnames, filenames in os.walk(path, onerror=None):
            here = Path(directory)
            rules.load(here)
            keep = []
            for name in sorted(dirnames):
                child = here / name
                if (
                    name.startswith(".")
                    or name in ALWAYS_IGNORED_DIRS
                    or rules.ignored(child, is_dir=True)
                ):
                    found.ignored += 1
                else:
                    keep.append(name)
            dirnames[:] = keep
            for name in sorted(filenames):
                child = here / name
                if name.startswith(".") or rules.ignored(child, is_dir=False):
                    found.ignored += 1
                    continue
                _consider(child, path, domain, max_file_bytes, found, seen)
    return found


def _consider(
    path: Path,
    root: Path,
    domain: Domain,
    max_file_bytes: int,
    found: Discovery,
    seen: set[Path],
) -> None:
    if path in seen:
        return
    seen.add(path)
    shown = path.as_posix()
    resolved = path.resolve()
    if path.is_symlink() and not resolved.is_relative_to(root):
        found.skipped.append((shown, "symlink out of the ingested folder"))
        return
    try:
        size = path.stat().st_size
    except OSError as exc:
        found.skipped.append((shown, f"unreadable: {exc.strerror or exc}"))
        return
    if not path.is_file():
        found.skipped.append((shown, "not a regular file"))
        return
    detected = detect_format(path, domain)
    if detected is None:
        found.skipped.append((shown, f"unsupported file type for {domain.value}"))
        return
    if size > max_file_bytes:
        found.skipped.append(
            (shown, f"too large ({_human(size)} > {_human(max_file_bytes)} limit)")
        )
        return
    fmt, language = detected
    found.files.append(
        SourceFile(
            path=resolved,
            root=root,
            rel_path=path.relative_to(root).as_posix(),
            format=fmt,
            language=language,
            size=size,
        )
    )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def under_roots(source: str, roots: Iterable[Path]) -> bool:
    """True when the stored source lies under one of the ingested roots (for --prune)."""
    for root in roots:
        posix = root.as_posix()
        if source == posix or source.startswith(posix.rstrip("/") + "/"):
            return True
    return False
