"""Argument errors as one readable line that names the argument and where it belongs.

The SDK validates a call's arguments with the tool's pydantic model (``FuncMetadata.
validate_arguments`` inside ``Tool.run``) and reports a failure as the model's multi-line
``ValidationError`` dump with a documentation URL. :class:`CheckedTool` runs the same
validation first and raises a :class:`ToolError` whose text is one line instead; everything
else (the call, result conversion, other errors) stays the SDK's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from pydantic import PrivateAttr, ValidationError
from pydantic_core import ErrorDetails

from server.errors import not_unicode_message, unicode_problem

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

MAX_NAME_CHARS = 60
"""An argument name longer than this is cut in messages (names come from the caller)."""
MAX_PROBLEMS = 3
"""Problems spelled out in one message; the rest are counted."""


class CheckedTool(Tool):
    """A Tool whose argument errors are one line (see the module docstring)."""

    _elsewhere: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    def know_other_tools(self, tools: Iterable[Tool]) -> None:
        """Remember which other tools take which argument names, so an argument sent to the
        wrong tool is answered with the tool that has it."""
        elsewhere: dict[str, list[str]] = {}
        for tool in tools:
            if tool.name == self.name:
                continue
            for name in argument_names(tool.parameters):
                elsewhere.setdefault(name, []).append(tool.name)
        self._elsewhere = elsewhere

    async def run(
        self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False
    ) -> Any:
        """``Tool.run``, except that arguments the tool's model rejects raise a one-line
        ToolError (the ValidationError as its cause, so the SDK logs the field names), and
        so does text that is not valid Unicode anywhere in them: a reply quoting it could not
        be written as UTF-8, and the call went unanswered."""
        bad = not_unicode(arguments)
        if bad is not None:
            message = not_unicode_message(*bad)
            raise ToolError(f"Error executing tool {self.name}: {message}")
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            explain = describe_errors(self.name, self.parameters, exc.errors(), self._elsewhere)
            raise ToolError(f"Error executing tool {self.name}: {explain}") from exc
        return await super().run(arguments, context, convert_result=convert_result)


def not_unicode(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (or key) in ``value`` that is not valid Unicode: (where, as "argument
    'filters.tags[1]'" or "argument name '...' in 'filters'", and what)."""
    if isinstance(value, str):
        problem = unicode_problem(value)
        return None if problem is None else (f"argument {_quote(path or 'value')}", problem)
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            problem = unicode_problem(name)
            if problem is not None:
                where = f"argument name {_quote(name)}"  # repr escapes the surrogate
                return (f"{where} in {_quote(path)}" if path else where, problem)
            found = not_unicode(item, f"{path}.{name}" if path else name)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = not_unicode(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def argument_names(schema: Mapping[str, Any]) -> set[str]:
    """Top-level argument names plus the keys of object-valued arguments (filters)."""
    names: set[str] = set()
    for name, prop in schema.get("properties", {}).items():
        names.add(name)
        names.update(prop.get("properties", {}))
    return names


def describe_errors(
    tool: str,
    schema: Mapping[str, Any],
    errors: Sequence[ErrorDetails],
    elsewhere: Mapping[str, list[str]] | None = None,
) -> str:
    """One line for pydantic ``errors`` of a call to ``tool`` with input ``schema`` (the
    published, inlined form): unknown arguments first (those without a better place named
    together with what the tool takes), problems of one argument merged, at most
    :data:`MAX_PROBLEMS` spelled out."""
    problems: dict[str, list[str]] = {}
    strays: dict[str, list[str]] = {}  # parent path -> unknown names with no better place
    for error in sorted(errors, key=lambda e: e["type"] != "extra_forbidden"):
        unknown = error["type"] == "extra_forbidden"
        path, parent, name = _path(schema, error["loc"], unknown)
        if unknown:
            line = _misplaced(tool, schema, (path, parent, name), error.get("input"))
            if line is None:
                note = _elsewhere_note(name, elsewhere or {})
                strays.setdefault(parent, []).append(_quote(path) + note)
            else:
                problems.setdefault(line, [])
        elif error["type"] == "missing":
            problems.setdefault(f"missing required argument {_quote(path)}", [])
        else:
            problems.setdefault(f"argument {_quote(path)}", []).append(_one_line(error["msg"]))
    lines = [_strays(tool, schema, parent, names) for parent, names in strays.items()]
    lines += [_merge(head, messages) for head, messages in problems.items()]
    shown = "; ".join(lines[:MAX_PROBLEMS])
    more = len(lines) - MAX_PROBLEMS
    return shown + (f" (and {more} more problem(s))" if more > 0 else "")


def _path(
    schema: Mapping[str, Any], loc: Sequence[int | str], unknown: bool
) -> tuple[str, str, str]:
    """The argument's dotted path (union branch tags skipped, list items as ``[i]``) and
    the object argument it sits in ('' at the top level); with ``unknown`` the last part is
    the unknown key itself. Returns (path, parent path, last name)."""
    path, parent, name = "", "", ""
    node: Mapping[str, Any] = schema
    for index, part in enumerate(loc):
        properties = node.get("properties", {})
        last = unknown and index == len(loc) - 1
        if isinstance(part, int):
            path += f"[{part}]"
            node = node.get("items", {})
        elif part in properties or last or isinstance(node.get("additionalProperties"), dict):
            parent, name = path, part
            path = f"{path}.{part}" if path else part
            node = properties.get(part) or node.get("additionalProperties") or {}
        # else: a union branch tag such as 'str' or 'list[str]'
    return path, parent, name


def _misplaced(
    tool: str, schema: Mapping[str, Any], where: tuple[str, str, str], value: Any
) -> str | None:
    """The line for an unknown argument that belongs somewhere else in this tool, or None."""
    path, parent, name = where
    top = schema.get("properties", {})
    head = f"unknown argument {_quote(path)}"
    if parent:
        inside = f"pass it beside {_quote(parent)}, not inside"
        return f"{head}: it is a top-level argument — {inside}" if name in top else None
    owner = next((arg for arg, prop in top.items() if name in prop.get("properties", {})), None)
    if owner is not None:
        kind = "a filter" if owner == "filters" else f"part of {_quote(owner)}"
        return f"{head}: it is {kind} — pass it inside {_quote(owner)}"
    if isinstance(value, Mapping) and value and all(key in top for key in value):
        keys = ", ".join(_quote(key) for key in value)
        return f"{head}: {tool} takes {keys} as top-level arguments — pass them beside 'query'"
    return None


def _strays(tool: str, schema: Mapping[str, Any], parent: str, names: list[str]) -> str:
    """'unknown argument(s) ...; <tool or object> takes <its arguments>'."""
    head = f"unknown argument{'s' if len(names) > 1 else ''} {', '.join(names)}"
    if not parent:
        return f"{head}; {tool} takes {_listing(schema.get('properties', {}))}"
    inner = _node_at(schema, parent).get("properties", {})
    return f"{head}; {_quote(parent)} takes {', '.join(inner)}"


def _elsewhere_note(name: str, elsewhere: Mapping[str, list[str]]) -> str:
    tools = elsewhere.get(name)
    return f" (an argument of {', '.join(tools)})" if tools else ""


def _listing(properties: Mapping[str, Any]) -> str:
    parts = []
    for arg, prop in properties.items():
        inner = prop.get("properties")
        parts.append(f"{arg} ({', '.join(inner)})" if inner else arg)
    return ", ".join(parts) if parts else "no arguments"


def _node_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node = schema
    for part in path.split("."):
        node = node.get("properties", {}).get(part, {})
    return node


def _merge(head: str, messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    if not unique:
        return head
    prefix = "Input should be "
    if len(unique) > 1 and all(m.startswith(prefix) for m in unique):
        return f"{head}: input should be " + " or ".join(m[len(prefix) :] for m in unique)
    return f"{head}: " + "; ".join(m[:1].lower() + m[1:] for m in unique)


def _quote(name: str) -> str:
    """The caller-supplied name quoted on one line (control and line-break characters
    escaped by repr), cut to :data:`MAX_NAME_CHARS`."""
    cut = name if len(name) <= MAX_NAME_CHARS else name[:MAX_NAME_CHARS] + "…"
    return repr(cut)


def _one_line(text: str) -> str:
    return " ".join(text.split())
