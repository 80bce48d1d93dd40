"""Python through ``ast``: functions, classes and methods with signature and real line numbers."""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import replace

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.code_common import Symbol, line_window_pieces, symbol_pieces

_Def = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _start_line(node: _Def) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _lead(lines: list[str], start: int, after: int) -> int:
    """``start`` moved up over the comment lines straight above it (no blank line between),
    none at or before line ``after`` (1-based): a comment above a definition describes it, as
    the tree-sitter languages attach theirs."""
    while start - 1 > after and lines[start - 2].lstrip().startswith("#"):
        start -= 1
    return start


def _signature(lines: list[str], node: _Def) -> str:
    """The ``def``/``class`` header as written (multi-line headers joined)."""
    first = node.lineno - 1
    body_start = node.body[0].lineno - 1 if node.body else first
    header_lines = lines[first:body_start] if body_start > first else [lines[first]]
    header = " ".join(line.strip() for line in header_lines)
    # Cut at the colon that ends the header (one-line bodies such as `def f(): pass`).
    depth = 0
    for i, ch in enumerate(header):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == ":" and depth == 0 and header[i + 1 : i + 2] != "=":
            return header[:i].strip()
    return header.rstrip(":").strip()


_TOP_DEFINITION = re.compile(r"(?:async[ \t]+def|def|class)[ \t]")
_TOP_STATEMENT = re.compile(r"[^\s#)\]}'\"]")
"""A line at column 0 that may open a top-level statement (not a comment, nor the closing
bracket or string end of the statement above)."""
_CONTINUATION = re.compile(r"(?:else|elif|except|finally)\b")
"""Column-0 keywords that continue the statement above (``if``/``try`` at the top level)."""


def _block_starts(lines: list[str]) -> list[int]:
    """Lines where a top-level statement may start: a definition with the decorators above it,
    or other code at column 0 (a half-typed line after a definition is a block of its own,
    not the definition's)."""
    starts: list[int] = []
    decorating = False  # inside the decorators of a definition still to come
    for i, line in enumerate(lines):
        if not _TOP_STATEMENT.match(line) or _CONTINUATION.match(line):
            continue
        if line.startswith("@"):
            if not decorating:
                starts.append(i)
            decorating = True
        elif _TOP_DEFINITION.match(line) and decorating:
            decorating = False  # the definition its decorators started
        else:
            starts.append(i)
            decorating = False
    return starts


_MAX_LEFT_OUT = 8
"""Lines (or broken definitions) of one top-level block left out, one per failed parse, before
the block is given up."""
_MEMBER = re.compile(r"[ \t]+(?:async[ \t]+def|def|class)[ \t]")


def _without_error_line(block: list[str], row: int) -> list[str] | None:
    """``block`` with the line the parser stopped at (``row``) left out: a definition's header
    with the definition's body, any other indented line alone, each replaced by ``pass`` and
    blank lines (line numbers kept); None for the block's own first line or a line at column 0
    (nothing to leave out)."""
    if not 0 < row < len(block):
        return None
    line = block[row]
    indent = len(line) - len(line.lstrip())
    if not indent:
        return None
    end = row + 1
    if _MEMBER.match(line):  # a broken header: the whole definition goes
        while end < len(block):
            below = block[end]
            stripped = below.lstrip()
            if stripped and not stripped.startswith("#") and len(below) - len(stripped) <= indent:
                break
            end += 1
    return [*block[:row], " " * indent + "pass", *[""] * (end - row - 1), *block[end:]]


def _parse(text: str) -> ast.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return ast.parse(text)


def _statements(text: str) -> list[ast.stmt]:
    """The module's top-level statements; for a file that does not parse (a save mid-edit),
    those of each top-level statement that parses alone (:func:`_block_starts`), with its real
    line numbers: the definitions away from the error keep their symbols. Raises SyntaxError
    when no definition parses."""
    try:
        return _parse(text).body
    except SyntaxError:
        pass
    lines = text.split("\n")
    starts = _block_starts(lines)
    body: list[ast.stmt] = []
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        block: list[str] | None = lines[start:end]
        for _ in range(_MAX_LEFT_OUT + 1):
            if block is None:
                break
            try:  # blank lines ahead keep the line numbers of the whole file
                body.extend(_parse("\n" * start + "\n".join(block)).body)
                break
            except SyntaxError as exc:
                # the line holding the error left out: the definitions around it, in a
                # class its other methods, keep their symbols
                block = _without_error_line(block, (exc.lineno or 0) - start - 1)
    if not any(isinstance(stmt, _Def) for stmt in body):
        raise SyntaxError("no definition parses")
    return body


def python_symbols(text: str) -> list[Symbol]:
    """Top-level functions and classes, methods, and nested classes (qualified names); in a
    file with a syntax error, those of the definitions that parse (:func:`_statements`).
    Raises SyntaxError when none does."""
    statements = _statements(text)
    lines = text.split("\n")
    symbols: list[Symbol] = []

    def end_of(stmt: ast.stmt) -> int:
        """Last line of ``stmt``; for a definition, with the comment lines after its last
        statement that are indented deeper than its header (blank lines between them): its
        trailing notes, which ``ast`` leaves out."""
        end = stmt.end_lineno or stmt.lineno
        if not isinstance(stmt, _Def):
            return end
        last, row = end, end
        while row < len(lines):
            line = lines[row]
            stripped = line.lstrip()
            if stripped.startswith("#") and len(line) - len(stripped) > stmt.col_offset:
                last = row + 1
            elif stripped:
                break
            row += 1
        return last

    def leads(body: list[ast.stmt], after: int, in_class: bool) -> dict[int, int]:
        """First line of each definition in ``body``, the comment lines straight above it
        included (none before line ``after``: they follow the statement before it). In a
        class, a member straight after another member (nothing but comments and blank lines
        between them) starts right after it, as the tree-sitter languages join such a stretch
        to the member below: no class line is left to a ``module`` chunk."""
        found: dict[int, int] = {}
        follows_member = False
        for stmt in body:
            if isinstance(stmt, _Def):
                start = _lead(lines, _start_line(stmt), after)
                found[id(stmt)] = after + 1 if in_class and follows_member else start
            follows_member = isinstance(stmt, _Def)
            after = end_of(stmt)
        return found

    def stretches(node: ast.ClassDef, name: str, signature: str, starts: dict[int, int]) -> None:
        """The class's own code between and after its members (attributes, assignments,
        nested statements) as chunks of the class, not of the module; comment lines after
        its last member and nothing else join that member."""
        opened: int | None = None  # first line of a stretch of class code after a member
        member_end: int | None = None
        for stmt in node.body:
            if isinstance(stmt, _Def):
                if opened is not None:
                    symbols.append(Symbol(name, "class", signature, opened, starts[id(stmt)] - 1))
                    opened = None
                member_end = end_of(stmt)
            elif member_end is not None and opened is None:
                opened = member_end + 1
        end = end_of(node)
        if opened is not None:
            symbols.append(Symbol(name, "class", signature, opened, end))
        elif member_end is not None and end > member_end:
            last = max(i for i, s in enumerate(symbols) if s.end_line == member_end)
            symbols[last] = replace(symbols[last], end_line=end)

    def visit(body: list[ast.stmt], prefix: str, in_class: bool, after: int) -> None:
        starts = leads(body, after, in_class)
        for node in body:
            if not isinstance(node, _Def):
                continue
            name = f"{prefix}{node.name}"
            start = starts[id(node)]
            end = end_of(node)
            signature = _signature(lines, node)
            if isinstance(node, ast.ClassDef):
                members = [n for n in node.body if isinstance(n, _Def)]
                inner = leads(node.body, node.lineno, in_class=True)
                header_end = inner[id(members[0])] - 1 if members else end
                symbols.append(Symbol(name, "class", signature, start, header_end))
                visit(node.body, f"{name}.", in_class=True, after=node.lineno)
                stretches(node, name, signature, inner)
            else:
                kind = "method" if in_class else "function"
                symbols.append(Symbol(name, kind, signature, start, end))

    visit(statements, "", in_class=False, after=0)
    return symbols


def chunk_python(
    text: str, *, rel_path: str, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Symbol chunks plus module chunks (docstring, imports); line windows if it won't parse."""
    try:
        symbols = python_symbols(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # MemoryError: the
        # parser's own stack overflow on deep nesting ("-" * 100_000 + "1"), not the process's
        return line_window_pieces(
            text, language="python", rel_path=rel_path, budget=budget, overlap_lines=overlap_lines
        )
    return symbol_pieces(
        text,
        symbols,
        language="python",
        rel_path=rel_path,
        budget=budget,
        overlap_lines=overlap_lines,
    )
