"""Symbol chunks for every language with a tree-sitter grammar wheel (specs in code_languages).

A definition's chunk runs from the comments alone on the lines directly above it (its doc
comment) to its last token. A container (class, namespace, module, impl block) is cut into its
header (from its start to its first member), its members (each its own chunk, named
``Container.member``) and the stretches between members: a stretch with code in it (fields,
properties, initialisers) is a chunk of the container; one with nothing but comments, blank
lines and access labels joins the member below it, and the closing lines join the last member.
So no chunk is a lone ``end`` or ``}``, and in a file that parses cleanly every line inside a
definition lands in exactly one chunk. Parse errors are searched like any block (tree-sitter
recovers), though a container left unclosed by an error loses its members' qualifiers.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.code_common import Point, Symbol, line_window_pieces, symbol_pieces
from server.ingest.chunkers.code_languages import (
    LANGUAGES,
    LanguageSpec,
    Node,
    header_language,
    text_of,
)

__all__ = ["LANGUAGES", "chunk_treesitter", "treesitter_symbols"]

log = logging.getLogger(__name__)

_VARIABLE_FUNCTIONS = {"arrow_function", "function_expression", "function", "generator_function"}
_SIGNATURE_END = re.compile(r"\s*[{=;]\s*$")
_SIGNATURE_MAX_LINES = 6
_ERROR = "ERROR"


@cache
def _parser(language: str) -> Any:
    import tree_sitter

    spec = LANGUAGES[language]
    module = importlib.import_module(spec.module)
    loader: Callable[[], Any] = getattr(module, spec.loader)
    return tree_sitter.Parser(tree_sitter.Language(loader()))


class _Walker:
    """One parsed file: finds its definitions and turns them into symbols."""

    def __init__(self, spec: LanguageSpec, source: bytes, root: Node) -> None:
        self.spec = spec
        self.source = source
        self.comment_above: dict[int, int] = {}
        """End row -> start row of each comment that is alone on its lines."""
        self._index_comments(root)

    # -- rows ------------------------------------------------------------------------------

    def _index_comments(self, root: Node) -> None:
        stack = [root]
        leading = self.spec.comment_types | self.spec.leading_types
        while stack:
            node = stack.pop()
            if node.type in leading:
                if self._alone_on_its_lines(node):
                    start, end = node.start_point[0], self._end_row(node)
                    self.comment_above[end] = min(start, self.comment_above.get(end, start))
                continue
            stack.extend(node.children)

    def _alone_on_its_lines(self, node: Node) -> bool:
        line_start = self.source.rfind(b"\n", 0, node.start_byte) + 1
        if self.source[line_start : node.start_byte].strip():
            return False
        if self.source[node.end_byte - 1 : node.end_byte] == b"\n":
            return True  # the node holds its line's end (Rust's `///` comments)
        line_end = self.source.find(b"\n", node.end_byte)
        after = self.source[node.end_byte : line_end if line_end >= 0 else len(self.source)]
        return not after.strip()

    def _leading_row(self, node: Node) -> int:
        """First row of the comments directly above ``node`` (or its own first row)."""
        row: int = node.start_point[0]
        while row - 1 in self.comment_above:
            row = self.comment_above[row - 1]
        return row

    def _points(self, node: Node) -> tuple[Point, Point | None]:
        """Where ``node`` starts and ends, as Symbol.head and Symbol.tail (1-based line, UTF-8
        byte column); no tail when its last line ends at a trailing comment (_end_row)."""
        row, column = node.start_point
        end_row, end_column = node.end_point
        head = (int(row) + 1, int(column))
        if self._end_row(node) != end_row:
            return head, None
        return head, (int(end_row) + 1, int(end_column))

    def _end_row(self, node: Node) -> int:
        """Row of the last token of ``node`` that is neither a comment nor empty.

        Some grammars stretch a node over the blank lines and comments after it (Scala's
        indented blocks end at the next token), which would overlap the next definition.
        """
        last = node
        while True:
            children = [
                c
                for c in last.children
                if c.end_byte > c.start_byte and c.type not in self.spec.comment_types
            ]
            if not children:
                break
            last = children[-1]
        row: int = last.end_point[0]
        if last.end_point[1] == 0 and row > last.start_point[0]:
            row -= 1  # the token ends with its line's newline (preprocessor lines, heredocs)
        return row

    # -- node shapes -------------------------------------------------------------------------

    def _body(self, node: Node) -> Node | None:
        body = node.child_by_field_name("body")
        if body is not None:
            return body
        return next((c for c in node.named_children if c.type in self.spec.body_types), None)

    def _inner(self, node: Node) -> Node:
        """What a transparent block holds: its member field, its body, or itself."""
        field = self.spec.transparent.get(node.type)
        inner = node.child_by_field_name(field) if field else self._body(node)
        return inner if inner is not None else node

    def _members(self, body: Node) -> list[Node]:
        if body.type in self.spec.definitions or body.type in self.spec.wrappers:
            return [body]  # `extension (s: String) def f = ...`: the body is the definition
        return list(body.named_children)

    def _transparent(self, node: Node) -> bool:
        """Parse errors, the spec's transparent blocks, and nameless containers
        (``namespace { ... }``): their definitions belong to the enclosing scope."""
        if node.type == _ERROR or node.type in self.spec.transparent:
            return True
        return (
            node.type in self.spec.containers
            and self._body(node) is not None
            and not self.spec.namer(node, self.source)
        )

    def significant(self, node: Node, lo: int, hi: int, *, comments: bool = False) -> bool:
        """Whether rows lo..hi (0-based) of ``node``'s members hold code of their own.

        Comments (unless ``comments``), access labels and the opening and closing lines of
        transparent blocks do not count.
        """
        for child in node.named_children:
            first, last = child.start_point[0], child.end_point[0]
            if last < lo or first > hi:
                continue
            if child.type in self.spec.comment_types:
                if comments and first >= lo:
                    return True
                continue
            if child.type in self.spec.trivial_types:
                continue
            if self._transparent(child):
                inner = self._inner(child)
                if self.significant(inner, lo, hi, comments=comments):
                    return True
                continue
            if first >= lo or self.significant(child, lo, hi, comments=comments):
                return True
        return False

    def signature(self, node: Node) -> str:
        """The definition's header on one line: from its first keyword to its body."""
        start = self._signature_start(node)
        body = self._body(node)
        # A comment between the header and the body (Ruby's first body line) is not header.
        comment = next(
            (
                c.start_byte
                for c in node.children
                if c.type in self.spec.comment_types and c.start_byte > start
            ),
            None,
        )
        if body is not None and body.start_byte > start:
            end = min(body.start_byte, comment or body.start_byte)
            header = self.source[start:end].decode("utf-8", errors="replace")
        else:
            # No body (a prototype, an abstract method): its lines until brackets balance.
            text = self.source[start : node.end_byte].decode("utf-8", errors="replace")
            kept: list[str] = []
            for line in text.split("\n")[:_SIGNATURE_MAX_LINES]:
                kept.append(line)
                joined = "\n".join(kept)
                if joined.count("(") <= joined.count(")"):
                    break
            header = "\n".join(kept)
        return _SIGNATURE_END.sub("", " ".join(header.split()))

    def _signature_start(self, node: Node) -> int:
        """First byte after leading attributes, annotations and decorators."""
        skip = self.spec.signature_skip | self.spec.comment_types
        for child in node.children:
            if child.type in skip:
                continue
            if child.type == "modifiers":  # Java, Kotlin, Swift keep annotations in here
                kept = [c for c in child.children if c.type not in skip]
                if not kept:
                    continue
                return int(kept[0].start_byte)
            return int(child.start_byte)
        return int(node.start_byte)

    # -- definitions -----------------------------------------------------------------------

    def visit(self, nodes: Sequence[Node], prefix: str, in_type: bool, out: list[Symbol]) -> None:
        """Symbols of the definitions among ``nodes`` (and inside transparent blocks)."""
        scope = prefix
        for child in nodes:
            if child.type in self.spec.scope_statements and self._body(child) is None:
                name = self.spec.namer(child, self.source)
                scope = f"{prefix}{name}." if name else prefix  # `namespace A\B;` to the end
                continue
            if self._transparent(child):
                self.visit(self._inner(child).named_children, scope, in_type, out)
                continue
            target = child
            while target.type in self.spec.wrappers:  # `export declare class` wraps twice
                inner = target.child_by_field_name("declaration") or next(
                    (
                        c
                        for c in target.named_children
                        if c.type in self.spec.definitions or c.type in self.spec.wrappers
                    ),
                    None,
                )
                if inner is None:
                    break
                target = inner
            if target.type in self.spec.wrappers:
                continue
            if target.type in ("lexical_declaration", "variable_declaration"):
                self._variable_function(target, child, scope, out)
                continue
            kind = self.spec.definitions.get(target.type)
            if kind is None:
                continue
            name = self.spec.namer(target, self.source)
            if not name:
                continue
            self._add(target, child, name, kind, scope, in_type, out)

    def _add(
        self,
        node: Node,
        outer: Node,
        name: str,
        kind: str,
        prefix: str,
        in_type: bool,
        out: list[Symbol],
    ) -> None:
        if kind in ("function", "method"):
            # A callable in a type, or qualified by one (`Foo::bar`, a receiver), is a method.
            kind = "method" if in_type or "." in name else "function"
        whole = Symbol(
            f"{prefix}{name}",
            kind,
            self.signature(node),
            self._leading_row(outer) + 1,
            self._end_row(outer) + 1,
            *self._points(outer),
        )
        body = self._body(node) if node.type in self.spec.containers else None
        members: list[Symbol] = []
        if body is not None:
            in_members_type = node.type not in self.spec.namespaces
            self.visit(self._members(body), f"{whole.name}.", in_members_type, members)
        if not members:
            out.append(whole)
            return
        out.extend(self._split_container(node, outer, body, whole, members))

    def _split_container(
        self, node: Node, outer: Node, body: Node, whole: Symbol, members: list[Symbol]
    ) -> list[Symbol]:
        """Header, members and the stretches between them (see the module docstring)."""
        members = sorted(members, key=lambda s: (s.start_line, -s.end_line))
        result: list[Symbol] = []
        first = members[0].start_line
        header_rows = (whole.start_line - 1, first - 2)
        bare_header = (
            node.type in self.spec.namespaces
            and whole.start_line - 1 == outer.start_point[0]  # no doc comment of its own
            and not self.significant(body, *header_rows, comments=True)
        )
        if bare_header:
            members[0] = replace(members[0], start_line=whole.start_line)
        else:
            result.append(replace(whole, end_line=first - 1))
        covered = members[0].end_line
        result.append(members[0])
        for member in members[1:]:
            if member.start_line > covered + 1:
                gap = (covered, member.start_line - 2)  # 0-based rows between the two
                if self.significant(body, *gap):
                    result.append(replace(whole, start_line=covered + 1, end_line=gap[1] + 1))
                else:
                    # The closing line of a block the member above sat in (`}  // namespace`,
                    # Ruby's `end`) stays with that member; the rest joins the member below.
                    closing = self._closing_row(body, *gap)
                    if closing is not None:
                        covered = self._extend_last(result, covered, closing + 1)
                    member = replace(member, start_line=covered + 1)
            result.append(member)
            covered = max(covered, member.end_line)
        if whole.end_line > covered:
            if self.significant(body, covered, whole.end_line - 1):
                result.append(replace(whole, start_line=covered + 1))
            else:
                self._extend_last(result, covered, whole.end_line)
        return result

    @staticmethod
    def _extend_last(symbols: list[Symbol], covered: int, end_line: int) -> int:
        """Stretch the last symbol ending at line ``covered`` to ``end_line``; the new cover."""
        last = max(i for i, s in enumerate(symbols) if s.end_line == covered)
        symbols[last] = replace(symbols[last], end_line=end_line)
        return end_line

    def _closing_row(self, node: Node, lo: int, hi: int) -> int | None:
        """Last row in lo..hi where a transparent block opened above lo ends."""
        found: int | None = None
        for child in node.named_children:
            first, last = child.start_point[0], child.end_point[0]
            if first >= lo or last < lo or not self._transparent(child):
                continue
            if last <= hi:
                found = last if found is None else max(found, last)
            inner = self._closing_row(self._inner(child), lo, hi)
            if inner is not None:
                found = inner if found is None else max(found, inner)
        return found

    def _variable_function(
        self, declaration: Node, outer: Node, prefix: str, out: list[Symbol]
    ) -> None:
        """``const f = () => ...`` and ``let g = function () {...}`` count as functions."""
        for declarator in declaration.named_children:
            value = declarator.child_by_field_name("value")
            name = declarator.child_by_field_name("name")
            if value is not None and name is not None and value.type in _VARIABLE_FUNCTIONS:
                first_line = text_of(outer, self.source).split("\n", 1)[0]
                out.append(
                    Symbol(
                        f"{prefix}{text_of(name, self.source)}",
                        "function",
                        " ".join(first_line.split())[:200],
                        self._leading_row(outer) + 1,
                        self._end_row(outer) + 1,
                        *self._points(outer),
                    )
                )
                return


def treesitter_symbols(text: str, language: str) -> list[Symbol]:
    """Definitions in ``text`` with qualified names, kinds and 1-based inclusive lines.

    Raises ImportError or OSError when the grammar wheel is missing or unusable.
    """
    spec = LANGUAGES[language]
    source = text.encode("utf-8")
    tree = _parser(language).parse(source)
    walker = _Walker(spec, source, tree.root_node)
    symbols: list[Symbol] = []
    walker.visit(tree.root_node.named_children, "", False, symbols)
    return symbols


def chunk_treesitter(
    text: str, *, language: str, rel_path: str, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Symbol chunks plus module chunks (imports, top-level code); line windows without a grammar.

    A ``.h`` file mapped to ``c`` is parsed, and labelled, as ``cpp`` when it has C++-only
    lines (see ``header_language``).
    """
    if language == "c" and rel_path.lower().endswith(".h"):
        language = header_language(text)
    try:
        symbols = treesitter_symbols(text, language)
    except (ImportError, OSError, ValueError) as exc:  # grammar missing or unusable
        log.warning("no %s grammar (%s); using line windows", language, exc)
        symbols = []
    except RecursionError:  # nesting deeper than Python's stack: keep every line anyway
        log.warning("%s nests too deeply for symbol chunks; using line windows", rel_path)
        symbols = []
    if not symbols:
        return line_window_pieces(
            text, language=language, rel_path=rel_path, budget=budget, overlap_lines=overlap_lines
        )
    return symbol_pieces(
        text,
        symbols,
        language=language,
        rel_path=rel_path,
        budget=budget,
        overlap_lines=overlap_lines,
    )
