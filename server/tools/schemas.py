"""Tool input schemas in the subset of JSON Schema every major MCP client converts.

pydantic publishes optional models as ``anyOf: [{$ref: #/$defs/X}, {type: null}]`` with
``default`` and ``additionalProperties: false``. Clients choke on each of these: google-genai's
MCP conversion crashes on a boolean ``additionalProperties`` and Gemini's function declarations
reject ``$ref``/``$defs`` and nullable unions; OpenAI strict mode rejects ``default``. The
published form therefore inlines every reference, drops the null branch (optional means "not in
``required``"), states defaults in the description and leaves ``additionalProperties`` out.

The server still validates every call with the tool's pydantic argument model (unknown keys
forbidden, see :mod:`server.tools.arguments`), so the looser published form rejects nothing
less at call time.
"""

from __future__ import annotations

import copy
import json
from typing import Any

DROPPED_KEYS = frozenset({"title", "additionalProperties", "default", "$defs"})
"""Keys no published input schema carries (see the module docstring for why)."""
_DEFS_PREFIX = "#/$defs/"


def client_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (a pydantic JSON schema of an object) in the client-compatible form.

    Returns a new dict: ``$ref`` resolved against the root's ``$defs`` and inlined (the
    referring node's own keys, such as its description, win), ``anyOf`` without its
    ``{"type": "null"}`` branch (a single remaining branch merged into its parent), a non-null
    ``default`` appended to the description as ``Default <json>.``, and ``title``,
    ``default``, ``$defs`` and boolean ``additionalProperties`` removed. A mapping value schema
    (``additionalProperties: {...}``, free-form dicts) is kept and converted likewise.
    Raises KeyError for a ``$ref`` that does not point into the root's ``$defs``.
    """
    defs = schema.get("$defs", {})
    published = _convert(schema, defs)
    published["type"] = "object"
    published.setdefault("properties", {})
    return published


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _inline_ref(node, defs)
    node = _drop_null_branch(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "additionalProperties" and isinstance(value, dict):
            out[key] = _convert(value, defs)
        elif key in DROPPED_KEYS:
            continue
        elif key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _convert(value, defs)
        elif key == "anyOf":
            out[key] = [_convert(branch, defs) for branch in value]
        else:
            out[key] = copy.deepcopy(value)
    default = node.get("default")
    if default is not None:
        out["description"] = _with_default(out.get("description", ""), default)
    return out


def _inline_ref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = _inline_ref(defs[ref.removeprefix(_DEFS_PREFIX)], defs)
    siblings = {key: value for key, value in node.items() if key != "$ref"}
    return {**target, **siblings}


def _drop_null_branch(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    branches = node.get("anyOf")
    if branches is None:
        return node
    kept = [b for b in branches if b.get("type") != "null"]
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    if len(kept) == 1:
        # the parent's keys (description, default) describe the field: they win
        return {**_inline_ref(kept[0], defs), **rest}
    return {**rest, "anyOf": kept}


def _with_default(description: str, default: Any) -> str:
    stated = f"Default {json.dumps(default)}."
    if not description:
        return stated
    return description.rstrip() + ("" if description.rstrip().endswith(".") else ".") + " " + stated


def schema_keys(schema: Any) -> set[str]:
    """Every key used anywhere in ``schema`` below ``properties`` names (for tests and
    audits: which JSON Schema keywords a published schema relies on)."""
    keys: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    keys |= schema_keys(prop)
                keys.add(key)
            else:
                keys.add(key)
                keys |= schema_keys(value)
    elif isinstance(schema, list):
        for item in schema:
            keys |= schema_keys(item)
    return keys
