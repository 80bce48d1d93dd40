"""JavaScript, TypeScript, Go, Java and Rust through tree-sitter and the official grammar wheels.

Grammars come from the per-language PyPI wheels (``tree-sitter-javascript`` and friends), which
carry compiled parsers and work offline.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.code_common import Symbol, line_window_pieces, symbol_pieces


@dataclass(frozen=True)
class LanguageSpec:
    """Which node types are definitions in one grammar, and what kind each one is."""

    module: str
    loader: str
    definitions: dict[str, str]
    """node type -> symbol kind (function / method / class)."""
    containers: frozenset[str]
    """Definition types whose members are chunked separately (the header is its own chunk)."""
    wrappers: frozenset[str] = frozenset()
    """Parent node types that belong to the definition (``export``), included in its lines."""
    comment_types: frozenset[str] = frozenset({"comment"})


_JS_DEFINITIONS = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "class_declaration": "class",
    "class": "class",  # `export default class { ... }`
    "method_definition": "method",
}
_TS_DEFINITIONS = {
    **_JS_DEFINITIONS,
    "abstract_class_declaration": "class",
    "interface_declaration": "class",
    "enum_declaration": "class",
    "type_alias_declaration": "class",
    "function_signature": "function",
    "abstract_method_signature": "method",
}
_JS_CONTAINERS = frozenset({"class_declaration", "abstract_class_declaration", "class"})

LANGUAGES: dict[str, LanguageSpec] = {
    "javascript": LanguageSpec(
        "tree_sitter_javascript",
        "language",
        _JS_DEFINITIONS,
        _JS_CONTAINERS,
        frozenset({"export_statement"}),
    ),
    "typescript": LanguageSpec(
        "tree_sitter_typescript",
        "language_typescript",
        _TS_DEFINITIONS,
        _JS_CONTAINERS,
        frozenset({"export_statement"}),
    ),
    "tsx": LanguageSpec(
        "tree_sitter_typescript",
        "language_tsx",
        _TS_DEFINITIONS,
        _JS_CONTAINERS,
        frozenset({"export_statement"}),
    ),
    "go": LanguageSpec(
        "tree_sitter_go",
        "language",
        {
            "function_declaration": "function",
            "method_declaration": "method",
            "type_declaration": "class",
        },
        frozenset(),
    ),
    "java": LanguageSpec(
        "tree_sitter_java",
        "language",
        {
            "class_declaration": "class",
            "interface_declaration": "class",
            "enum_declaration": "class",
            "record_declaration": "class",
            "method_declaration": "method",
            "constructor_declaration": "method",
        },
        frozenset(
            {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}
        ),
        comment_types=frozenset({"line_comment", "block_comment"}),
    ),
    "rust": LanguageSpec(
        "tree_sitter_rust",
        "language",
        {
            "function_item": "function",
            "function_signature_item": "function",
            "struct_item": "class",
            "enum_item": "class",
            "trait_item": "class",
            "impl_item": "class",
            "mod_item": "class",
            "macro_definition": "function",
        },
        frozenset({"impl_item", "trait_item", "mod_item"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
    ),
}
"""Languages parsed with tree-sitter (``tsx`` shares the TypeScript wheel)."""

_BODY_FIELDS = ("body", "declaration_list")
_VARIABLE_FUNCTIONS = {"arrow_function", "function_expression", "function", "generator_function"}


@cache
def _parser(language: str) -> Any:
    import tree_sitter

    spec = LANGUAGES[language]
    module = importlib.import_module(spec.module)
    loader: Callable[[], Any] = getattr(module, spec.loader)
    return tree_sitter.Parser(tree_sitter.Language(loader()))


def _name(node: Any, source: bytes) -> str:
    """The defined name; Go methods and Rust impls are qualified by their type."""
    if node.type == "impl_item":
        type_node = node.child_by_field_name("type")
        trait = node.child_by_field_name("trait")
        base = _text(type_node, source) if type_node else "impl"
        return f"{base}" if trait is None else f"{base} ({_text(trait, source)})"
    if node.type == "type_declaration":
        for child in node.named_children:
            name = child.child_by_field_name("name")
            if name is not None:
                return _text(name, source)
    name = node.child_by_field_name("name")
    if name is None:
        return "<anonymous>"
    text = _text(name, source)
    if node.type == "method_declaration" and node.child_by_field_name("receiver") is not None:
        receiver = _text(node.child_by_field_name("receiver"), source)
        type_name = receiver.strip("()").split()[-1].lstrip("*") if receiver.strip("()") else ""
        if type_name:
            return f"{type_name}.{text}"
    return text


def _text(node: Any, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def _signature(node: Any, source: bytes) -> str:
    """Source from the definition's start to its body, on one line."""
    body = None
    for field_name in _BODY_FIELDS:
        body = node.child_by_field_name(field_name)
        if body is not None:
            break
    end = body.start_byte if body is not None else node.end_byte
    header = source[node.start_byte : end].decode("utf-8", errors="replace")
    if body is None:
        header = header.split("\n", 1)[0]
    return " ".join(header.split()).rstrip("{ ").strip()


def _leading_comment_row(node: Any, spec: LanguageSpec) -> int:
    """First row of the doc comments directly above ``node`` (or its own start row)."""
    row: int = node.start_point[0]
    sibling = node.prev_named_sibling
    while sibling is not None and sibling.type in spec.comment_types:
        if sibling.end_point[0] < row - 1:
            break
        row = sibling.start_point[0]
        sibling = sibling.prev_named_sibling
    return row


def treesitter_symbols(text: str, language: str) -> list[Symbol]:
    """Definitions in ``text`` with qualified names, kinds and 1-based inclusive lines."""
    spec = LANGUAGES[language]
    source = text.encode("utf-8")
    tree = _parser(language).parse(source)

    def add(node: Any, outer: Any, name: str, kind: str, prefix: str, out: list[Symbol]) -> None:
        start = _leading_comment_row(outer, spec) + 1
        end = outer.end_point[0] + 1
        qualified = f"{prefix}{name}"
        signature = _signature(node, source)
        if node.type in spec.containers:
            members: list[Symbol] = []
            body = next(
                (node.child_by_field_name(f) for f in _BODY_FIELDS if node.child_by_field_name(f)),
                None,
            )
            if body is not None:
                visit(body, f"{qualified}.", members)
            if members:
                first_member = min(m.start_line for m in members)
                out.append(Symbol(qualified, kind, signature, start, first_member - 1))
                out.extend(members)
                return
        out.append(Symbol(qualified, kind, signature, start, end))

    def add_variable_function(declaration: Any, outer: Any, prefix: str, out: list[Symbol]) -> None:
        """``const f = () => ...`` and ``let g = function () {...}`` count as functions."""
        for declarator in declaration.named_children:
            value = declarator.child_by_field_name("value")
            name = declarator.child_by_field_name("name")
            if value is not None and name is not None and value.type in _VARIABLE_FUNCTIONS:
                out.append(
                    Symbol(
                        f"{prefix}{_text(name, source)}",
                        "function",
                        " ".join(_text(outer, source).split("\n", 1)[0].split())[:200],
                        _leading_comment_row(outer, spec) + 1,
                        outer.end_point[0] + 1,
                    )
                )
                return

    def visit(node: Any, prefix: str, out: list[Symbol]) -> None:
        for child in node.named_children:
            target = child
            if child.type in spec.wrappers:
                inner = child.child_by_field_name("declaration") or next(
                    (c for c in child.named_children if c.type in spec.definitions), None
                )
                if inner is None:
                    continue
                target = inner
            if target.type in ("lexical_declaration", "variable_declaration"):
                add_variable_function(target, child, prefix, out)
                continue
            kind = spec.definitions.get(target.type)
            if kind is None:
                continue
            if kind == "function" and prefix and language == "rust":
                kind = "method"
            add(target, child, _name(target, source), kind, prefix, out)

    top: list[Symbol] = []
    visit(tree.root_node, "", top)
    return top


def chunk_treesitter(
    text: str, *, language: str, rel_path: str, budget: TokenBudget, overlap_lines: int
) -> list[Piece]:
    """Symbol chunks plus module chunks (imports, top-level code)."""
    try:
        symbols = treesitter_symbols(text, language)
    except (ImportError, OSError, ValueError) as exc:  # grammar missing or unusable
        import logging

        logging.getLogger(__name__).warning("no %s grammar (%s); using line windows", language, exc)
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
