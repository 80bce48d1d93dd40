"""Per-language tree-sitter specs: which nodes are definitions, containers, wrappers, comments.

Each grammar comes from its own PyPI wheel (``tree-sitter-c``, ``tree-sitter-kotlin``, ...);
the wheels carry the compiled parser, so nothing is fetched at run time. Names are qualified
by their container with dots whatever the language writes (``Foo::bar`` -> ``Foo.bar``,
``App\\Billing`` -> ``App.Billing``); the traversal itself is in ``code_treesitter``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Node = Any
"""A ``tree_sitter.Node`` (the binding ships no type stubs that mypy can use here)."""

Namer = Callable[[Node, bytes], "str | None"]
"""(definition node, source) -> its own name, or None when the node defines nothing."""


def text_of(node: Node, source: bytes) -> str:
    """The source text of ``node``."""
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def dotted(name: str) -> str:
    """``a::b``, ``A\\B`` and ``a.b`` all become ``a.b`` (one separator for every language)."""
    return name.replace("::", ".").replace("\\", ".").strip(".")


def field_name(node: Node, source: bytes) -> str | None:
    """The ``name`` field's text (the common case for most grammars)."""
    name = node.child_by_field_name("name")
    return dotted(text_of(name, source)) if name is not None else None


@dataclass(frozen=True)
class LanguageSpec:
    """Which node types are definitions in one grammar, and how to read them."""

    module: str
    """Python module of the grammar wheel."""
    loader: str
    """Function of that module returning the language pointer."""
    definitions: dict[str, str]
    """node type -> symbol kind: ``function`` / ``method`` (callables) or ``class`` (types,
    namespaces, modules). Callables are re-kinded by place: ``method`` inside a type or
    when the name is qualified (``Foo::bar``, a receiver), else ``function``."""
    containers: frozenset[str]
    """Definition types whose members are chunked separately (the header is its own chunk)."""
    wrappers: frozenset[str] = frozenset()
    """Parent node types that belong to the definition (``export``, ``template <...>``)."""
    comment_types: frozenset[str] = frozenset({"comment"})
    """Comment node types; comments alone on the lines directly above a definition join it."""
    leading_types: frozenset[str] = frozenset()
    """Other nodes that sit above a definition as its siblings and belong to it like a doc
    comment (Rust ``#[derive]`` attributes, decorators of TypeScript class members)."""
    namespaces: frozenset[str] = frozenset()
    """Containers that only group names (namespaces, modules): callables inside stay
    functions, and a header holding nothing but the opening line joins the first member."""
    transparent: dict[str, str | None] = field(default_factory=dict)
    """Blocks searched for definitions under the current prefix (``#ifdef``, ``extern "C"``,
    ``class << self``, companion objects; parse errors always are): type -> the field holding
    the members (None: the body found as for a container, else the node's own children)."""
    scope_statements: frozenset[str] = frozenset()
    """Body-less namespace statements (``namespace A;``) qualifying the definitions after them."""
    body_types: frozenset[str] = frozenset()
    """Body node types for grammars whose bodies carry no ``body`` field (Kotlin)."""
    trivial_types: frozenset[str] = frozenset()
    """Members-level nodes that say nothing alone (``private:``); a stretch between members
    holding only these and comments joins a neighbouring member instead of its own chunk."""
    signature_skip: frozenset[str] = frozenset()
    """Leading children left out of a signature (attributes, annotations, decorators)."""
    namer: Namer = field_name
    """Name of a definition node (None: the node defines nothing, e.g. a C variable)."""


# -- C and C++ ------------------------------------------------------------------------------

_C_DECLARATOR_WRAPPERS = frozenset(
    {
        "pointer_declarator",
        "reference_declarator",
        "parenthesized_declarator",
        "attributed_declarator",
        "array_declarator",
        "init_declarator",
        "function_declarator",
    }
)


def _declarator_leaf(node: Node) -> tuple[Node | None, bool]:
    """(innermost named declarator, whether the outermost callable part is a function).

    ``int *f(void)`` is a function returning a pointer; ``int (*f)(void)`` is a pointer
    variable: a pointer *inside* the function declarator makes it a variable.
    """
    current = node.child_by_field_name("declarator")
    is_function = False
    pointer_below_function = False
    while current is not None and current.type in _C_DECLARATOR_WRAPPERS:
        if current.type == "function_declarator" and not is_function:
            is_function = True
        elif current.type == "pointer_declarator" and is_function:
            pointer_below_function = True
        inner = current.child_by_field_name("declarator")
        if inner is None:  # reference_declarator has no field: its declarator is a child
            inner = next((c for c in current.named_children if c.type != "type_qualifier"), None)
        current = inner
    return current, is_function and not pointer_below_function


def _cpp_qualified(node: Node, source: bytes) -> str:
    """``ns::Foo<T>::bar`` -> ``ns.Foo.bar`` (template arguments dropped)."""
    if node.type in ("qualified_identifier", "nested_namespace_specifier"):
        parts = []
        for child in node.named_children:
            parts.append(_cpp_qualified(child, source))
        return ".".join(p for p in parts if p)
    if node.type in ("template_type", "template_function", "template_method"):
        name = node.child_by_field_name("name")
        return text_of(name, source) if name is not None else text_of(node, source)
    return text_of(node, source)


def _c_name(node: Node, source: bytes) -> str | None:
    kind = node.type
    if kind in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
        name = node.child_by_field_name("name")
        if node.child_by_field_name("body") is None or name is None:
            return None  # a forward declaration or an anonymous type
        return _cpp_qualified(name, source)
    if kind in ("namespace_definition", "preproc_function_def", "concept_definition"):
        name = node.child_by_field_name("name")
        return _cpp_qualified(name, source) if name is not None else None
    leaf, is_function = _declarator_leaf(node)
    if leaf is None:
        return None
    if kind in ("declaration", "field_declaration") and not is_function:
        return None  # a variable or a field, not a prototype
    if kind == "type_definition" or is_function:
        return _cpp_qualified(leaf, source)
    return None


_C_DEFINITIONS = {
    "function_definition": "function",
    "declaration": "function",  # prototypes only (see _c_name)
    "type_definition": "class",
    "struct_specifier": "class",
    "union_specifier": "class",
    "enum_specifier": "class",
    "preproc_function_def": "function",
}
_PREPROCESSOR_BLOCKS: dict[str, str | None] = {
    "preproc_ifdef": None,
    "preproc_if": None,
    "preproc_else": None,
    "preproc_elif": None,
    "preproc_elifdef": None,
}

_CPP_HEADER = re.compile(
    r"^\s*#\s*include\s*<(cstdint|string|vector|map|list|array|bitset|queue|stack"
    r"|forward_list|unordered_map|unordered_set|(i|o|io)stream)>"
    r"|^\s*template\s*<"
    r"|^[ \t]*(class|(using[ \t]+)?namespace)\s+\w+"
    r"|^[ \t]*(private|public|protected):$"
    r"|std::\w+",
    re.MULTILINE,
)
"""C++-only lines (GitHub Linguist's ``.h`` heuristic)."""


def header_language(text: str) -> str:
    """``cpp`` for a ``.h`` file with C++-only lines, else ``c``.

    Measured on real headers: the C grammar finds 2 % more names than the C++ one in C
    headers (48,680 vs 47,823 over 1,804 files) but 6x fewer in C++ headers (1,705 vs
    10,979 over 300), so each header gets the grammar its content calls for.
    """
    return "cpp" if _CPP_HEADER.search(text) else "c"


# -- Kotlin, Swift, Scala, Ruby, C#, PHP ------------------------------------------------------


def _kotlin_name(node: Node, source: bytes) -> str | None:
    if node.type == "secondary_constructor":
        return "constructor"
    name = node.child_by_field_name("name")
    own = text_of(name, source) if name is not None else ""
    if not own:
        return None  # a half-typed declaration (the parser inserted a missing name)
    if node.type == "function_declaration":
        # An extension function's receiver type comes before its name: `fun Duration.f()`.
        for child in node.named_children:
            if child.start_byte >= name.start_byte:
                break
            if child.type in ("user_type", "nullable_type", "parenthesized_type"):
                receiver = child.named_children[0] if child.named_children else child
                return f"{text_of(receiver, source).split('<')[0]}.{own}"
    return own


def _swift_name(node: Node, source: bytes) -> str | None:
    fixed = {"init_declaration": "init", "deinit_declaration": "deinit"}
    if node.type in fixed:
        return fixed[node.type]
    if node.type == "subscript_declaration":
        return "subscript"
    name = node.child_by_field_name("name")
    if name is None:
        return None
    return dotted(text_of(name, source).split("<")[0])  # `extension Array<Int>` -> Array


def _scala_name(node: Node, source: bytes) -> str | None:
    if node.type == "extension_definition":
        # `extension (s: String)` groups methods on String: name it after the receiver type.
        parameters = node.child_by_field_name("parameters")
        for parameter in parameters.named_children if parameters is not None else []:
            receiver = parameter.child_by_field_name("type")
            if receiver is not None:
                return text_of(receiver, source).split("[")[0]
        return "extension"
    return field_name(node, source)


def _ruby_name(node: Node, source: bytes) -> str | None:
    own = field_name(node, source)
    if own is None:
        return None
    if node.type == "singleton_method":
        target = node.child_by_field_name("object")
        if target is not None and target.type != "self":  # `def Foo.bar`
            return f"{dotted(text_of(target, source))}.{own}"
    return own


def _csharp_name(node: Node, source: bytes) -> str | None:
    if node.type == "destructor_declaration":
        own = field_name(node, source)
        return f"~{own}" if own else None
    if node.type == "operator_declaration":
        operator = node.child_by_field_name("operator")
        return f"operator {text_of(operator, source)}" if operator is not None else None
    return field_name(node, source)


# -- JavaScript, TypeScript, Go, Rust (kept as they were) -------------------------------------


def _go_name(node: Node, source: bytes) -> str | None:
    """Go methods are qualified by their receiver type (``Server.Start``)."""
    if node.type == "type_declaration":
        for child in node.named_children:
            name = child.child_by_field_name("name")
            if name is not None:
                return text_of(name, source)
        return None
    own = field_name(node, source)
    receiver = node.child_by_field_name("receiver")
    if own is None or node.type != "method_declaration" or receiver is None:
        return own
    inner = text_of(receiver, source).strip("()")
    type_name = inner.split()[-1].lstrip("*").split("[")[0] if inner else ""
    return f"{type_name}.{own}" if type_name else own


def _rust_name(node: Node, source: bytes) -> str | None:
    """``impl Type`` is named after the type, ``impl Trait for Type`` as ``Type (Trait)``;
    generic arguments dropped (``impl<T> RingBuffer<T>`` is ``RingBuffer``, as its struct)."""
    if node.type == "impl_item":
        type_node = node.child_by_field_name("type")
        trait = node.child_by_field_name("trait")
        base = text_of(type_node, source).split("<")[0] if type_node is not None else "impl"
        return base if trait is None else f"{base} ({text_of(trait, source).split('<')[0]})"
    return field_name(node, source)


def _name_or_anonymous(node: Node, source: bytes) -> str | None:
    return field_name(node, source) or "<anonymous>"


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
    "method_signature": "method",  # a declared class's `run(): void;`
    "internal_module": "class",  # namespace Legacy.Billing { ... }
    "module": "class",  # declare module "legacy-lib" { ... }
}
_JS_CONTAINERS = frozenset({"class_declaration", "abstract_class_declaration", "class"})
_TS_NAMESPACES = frozenset({"internal_module", "module"})
_JS_SKIP = frozenset({"decorator"})
_JAVA_COMMENTS = frozenset({"line_comment", "block_comment"})


def _ts_name(node: Node, source: bytes) -> str | None:
    """A declaration's name; an ambient module's without its quotes (``"legacy-lib"``)."""
    name = _name_or_anonymous(node, source)
    return name.strip("\"'`") if name and node.type == "module" else name


def _js_like(loader: str, module: str, definitions: dict[str, str]) -> LanguageSpec:
    typescript = "internal_module" in definitions
    return LanguageSpec(
        module,
        loader,
        definitions,
        _JS_CONTAINERS | _TS_NAMESPACES if typescript else _JS_CONTAINERS,
        # TypeScript: a top-level `namespace` is an expression statement, `declare ...` an
        # ambient declaration
        wrappers=frozenset({"export_statement"})
        | (frozenset({"expression_statement", "ambient_declaration"}) if typescript else set()),
        leading_types=_JS_SKIP,
        namespaces=_TS_NAMESPACES if typescript else frozenset(),
        signature_skip=_JS_SKIP,
        namer=_ts_name if typescript else _name_or_anonymous,
    )


LANGUAGES: dict[str, LanguageSpec] = {
    "javascript": _js_like("language", "tree_sitter_javascript", _JS_DEFINITIONS),
    "typescript": _js_like("language_typescript", "tree_sitter_typescript", _TS_DEFINITIONS),
    "tsx": _js_like("language_tsx", "tree_sitter_typescript", _TS_DEFINITIONS),
    "go": LanguageSpec(
        "tree_sitter_go",
        "language",
        {
            "function_declaration": "function",
            "method_declaration": "method",
            "type_declaration": "class",
        },
        frozenset(),
        namer=_go_name,
    ),
    "java": LanguageSpec(
        "tree_sitter_java",
        "language",
        {
            "class_declaration": "class",
            "interface_declaration": "class",
            "enum_declaration": "class",
            "record_declaration": "class",
            "annotation_type_declaration": "class",
            "method_declaration": "method",
            "constructor_declaration": "method",
        },
        frozenset(
            {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}
        ),
        comment_types=_JAVA_COMMENTS,
        transparent={"enum_body_declarations": None},
        signature_skip=frozenset({"marker_annotation", "annotation"}),
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
        comment_types=_JAVA_COMMENTS,
        leading_types=frozenset({"attribute_item"}),
        namespaces=frozenset({"mod_item"}),
        namer=_rust_name,
    ),
    "c": LanguageSpec(
        "tree_sitter_c",
        "language",
        _C_DEFINITIONS,
        frozenset(),
        transparent={**_PREPROCESSOR_BLOCKS, "linkage_specification": "body"},
        namer=_c_name,
    ),
    "cpp": LanguageSpec(
        "tree_sitter_cpp",
        "language",
        {
            **_C_DEFINITIONS,
            "class_specifier": "class",
            "namespace_definition": "class",
            "field_declaration": "method",  # member function declarations only (see _c_name)
            "concept_definition": "class",
        },
        frozenset(
            {"class_specifier", "struct_specifier", "union_specifier", "namespace_definition"}
        ),
        wrappers=frozenset({"template_declaration"}),
        namespaces=frozenset({"namespace_definition"}),
        transparent={**_PREPROCESSOR_BLOCKS, "linkage_specification": "body"},
        trivial_types=frozenset({"access_specifier"}),
        signature_skip=frozenset({"attribute_declaration"}),
        namer=_c_name,
    ),
    "csharp": LanguageSpec(
        "tree_sitter_c_sharp",
        "language",
        {
            "namespace_declaration": "class",
            "class_declaration": "class",
            "struct_declaration": "class",
            "interface_declaration": "class",
            "enum_declaration": "class",
            "record_declaration": "class",
            "record_struct_declaration": "class",
            "delegate_declaration": "class",
            "method_declaration": "method",
            "constructor_declaration": "method",
            "destructor_declaration": "method",
            "operator_declaration": "method",
        },
        frozenset(
            {
                "namespace_declaration",
                "class_declaration",
                "struct_declaration",
                "interface_declaration",
                "record_declaration",
                "record_struct_declaration",
            }
        ),
        namespaces=frozenset({"namespace_declaration"}),
        scope_statements=frozenset({"file_scoped_namespace_declaration"}),
        transparent={"preprocessor_call": None},
        signature_skip=frozenset({"attribute_list"}),
        namer=_csharp_name,
    ),
    "ruby": LanguageSpec(
        "tree_sitter_ruby",
        "language",
        {
            "module": "class",
            "class": "class",
            "method": "method",
            "singleton_method": "method",
        },
        frozenset({"module", "class"}),
        transparent={"singleton_class": "body", "begin_block": None},
        # A bare `private` / `protected` line is a method call parsed as an identifier.
        trivial_types=frozenset({"identifier"}),
        namer=_ruby_name,
    ),
    "php": LanguageSpec(
        "tree_sitter_php",
        "language_php",
        {
            "namespace_definition": "class",
            "class_declaration": "class",
            "interface_declaration": "class",
            "trait_declaration": "class",
            "enum_declaration": "class",
            "function_definition": "function",
            "method_declaration": "method",
        },
        frozenset(
            {
                "namespace_definition",
                "class_declaration",
                "interface_declaration",
                "trait_declaration",
                "enum_declaration",
            }
        ),
        namespaces=frozenset({"namespace_definition"}),
        scope_statements=frozenset({"namespace_definition"}),
        signature_skip=frozenset({"attribute_list"}),
    ),
    "kotlin": LanguageSpec(
        "tree_sitter_kotlin",
        "language",
        {
            "class_declaration": "class",
            "object_declaration": "class",
            "function_declaration": "function",
            "secondary_constructor": "method",
        },
        frozenset({"class_declaration", "object_declaration"}),
        comment_types=frozenset({"line_comment", "block_comment"}),
        transparent={"companion_object": None},
        body_types=frozenset({"class_body", "enum_class_body", "function_body"}),
        signature_skip=frozenset({"annotation"}),
        namer=_kotlin_name,
    ),
    "swift": LanguageSpec(
        "tree_sitter_swift",
        "language",
        {
            "class_declaration": "class",  # class, struct, enum, actor and extension
            "protocol_declaration": "class",
            "function_declaration": "function",
            "protocol_function_declaration": "method",
            "init_declaration": "method",
            "deinit_declaration": "method",
            "subscript_declaration": "method",
        },
        frozenset({"class_declaration", "protocol_declaration"}),
        comment_types=frozenset({"comment", "multiline_comment"}),
        signature_skip=frozenset({"attribute"}),
        namer=_swift_name,
    ),
    "scala": LanguageSpec(
        "tree_sitter_scala",
        "language",
        {
            "class_definition": "class",
            "object_definition": "class",
            "trait_definition": "class",
            "enum_definition": "class",
            "extension_definition": "class",
            "function_definition": "function",
            "function_declaration": "function",
        },
        frozenset(
            {
                "class_definition",
                "object_definition",
                "trait_definition",
                "enum_definition",
                "extension_definition",
            }
        ),
        comment_types=frozenset({"comment", "block_comment"}),
        signature_skip=frozenset({"annotation"}),
        namer=_scala_name,
    ),
    "shell": LanguageSpec(
        "tree_sitter_bash",
        "language",
        {"function_definition": "function"},
        frozenset(),
    ),
}
"""Languages parsed with tree-sitter, keyed as ``walker.CODE_LANGUAGES`` names them."""
