"""Front matter: a YAML (``---``) or TOML (``+++``) block at the very start of a Markdown or
plain-text file, read as metadata and never chunked as text.

``title`` becomes the document title; ``tags`` (a list, or a comma-separated string) become a
list of strings; keys the domain lets the author declare (legal ``jurisdiction`` and
``doc_type``: chunking.DECLARABLE) become chunk fields of their own; every other key is kept
under ``front_matter`` when it is JSON-safe (dates and times as ISO strings). A block that
does not parse into a mapping, uses YAML aliases, or holds more than
:data:`MAX_FRONT_MATTER_CHARS` of metadata is not front matter: it stays in the text (so
nothing is lost), and a debug line says why; when its first line is data (a key, a table, a
list item), chunking keeps it as plain paragraphs ahead of the document
(:func:`unread_front_matter`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs in the runtime deps

from server.ingest.chunkers.base import valid_unicode_in

logger = logging.getLogger(__name__)

_YAML = re.compile(r"\A---[ \t]*\n(?P<body>.*?)^(?:---|\.\.\.)[ \t]*$\n?", re.S | re.M)
_TOML = re.compile(r"\A\+\+\+[ \t]*\n(?P<body>.*?)^\+\+\+[ \t]*$\n?", re.S | re.M)
FRONT_MATTER_FORMATS = frozenset({"markdown", "text"})
"""File formats whose leading ``---``/``+++`` block is front matter (docs and legal domains)."""


DESCRIPTIVE_KEYS = frozenset(
    {"description", "summary", "abstract", "excerpt", "subtitle", "lead", "teaser", "synopsis"}
)
"""Front matter keys whose value describes the page in words (Hugo, Jekyll, Docusaurus and
MkDocs name them so); the text of a page that has no other."""


@dataclass
class FrontMatter:
    """What a front matter block says about its document."""

    title: str | None = None
    tags: list[str] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    """The other keys, JSON-safe."""

    def summary(self) -> str:
        """What the block says in words, for a document with no text after it: the title and
        each descriptive field (:data:`DESCRIPTIVE_KEYS`) as paragraphs; '' when it has none."""
        described = [
            " ".join(value.split())
            for key, value in self.fields.items()
            if key.casefold() in DESCRIPTIVE_KEYS and isinstance(value, str) and value.strip()
        ]
        return "\n\n".join([self.title, *described] if self.title else described)

    def metadata(
        self, declarable: Mapping[str, Callable[[str], str | None]] | None = None
    ) -> dict[str, Any]:
        """Chunk metadata: ``tags``; each key of ``declarable`` whose value (a string, or a
        list of strings) its reader accepts, as a chunk field of its own; ``front_matter``
        with the other keys (only the ones that are present)."""
        out: dict[str, Any] = {}
        if self.tags:
            out["tags"] = list(self.tags)
        rest = dict(self.fields)
        for key, read in sorted((declarable or {}).items()):
            if key in rest and (value := _field_value(rest[key], read)) is not None:
                out[key] = value
                del rest[key]
        if rest:
            out["front_matter"] = rest
        return out


def _field_value(value: Any, read: Callable[[str], str | None]) -> str | list[str] | None:
    """A declared value as ``read`` gives it: a string, or a list of them (None when any
    item is not a string ``read`` accepts)."""
    items = value if isinstance(value, list) and value else [value]
    if not all(isinstance(item, str) for item in items):
        return None
    read_items = [read(item) for item in items]
    if any(not item for item in read_items):
        return None
    values = list(dict.fromkeys(str(item) for item in read_items))
    return values[0] if len(values) == 1 and not isinstance(value, list) else values


def _json_safe(value: Any) -> Any:
    """``value`` with dates as ISO strings; raises ValueError/TypeError when not JSON-safe."""
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    json.dumps(value, allow_nan=False)  # raises on NaN, bytes, sets and other objects
    return value


def _tags(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str | int | float) for t in value):
        return [str(t).strip() for t in value if str(t).strip()]
    return None


def _parse(kind: str, body: str) -> dict[str, Any]:
    """The block as a mapping; ValueError when it is not one."""
    if kind == "toml":
        try:
            return tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"invalid TOML: {exc}") from None
    try:
        data = yaml.load(body, Loader=_NoAliasLoader)  # a SafeLoader: no arbitrary objects
    except (yaml.YAMLError, RecursionError) as exc:
        reason = f"invalid YAML: {' '.join(str(exc).split())}"
        if "alias" in reason:  # never expanded by hand either
            raise ValueError(reason) from None
        return _plain_mapping(body, reason)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"YAML is a {type(data).__name__}, not a mapping")
    return data


_PLAIN_KEY = re.compile(r"^(?P<key>[A-Za-z_][\w-]*)[ \t]*:(?:[ \t]+(?P<value>.*?))?[ \t]*$")
_PLAIN_ITEM = re.compile(r"^[ \t]+-[ \t]+(?P<item>.*?)[ \t]*$|^-[ \t]+(?P<top>.*?)[ \t]*$")


def _plain_mapping(body: str, reason: str) -> dict[str, Any]:
    """A block strict YAML refuses, read as the flat ``key: value`` lines (and ``- item`` lists
    under a key) it was written as: the slips hand-written front matter makes, an unquoted
    colon (``title: Runbook: failover``), a value opening with ``@`` or a backquote, a list
    indented with tabs. Values are text, quotes around them dropped. ValueError (``reason``)
    when any line is something else, or opens a ``[`` / ``{`` collection YAML could not close:
    then the block stays text."""
    data: dict[str, Any] = {}
    key: str | None = None
    for line in body.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        item = _PLAIN_ITEM.match(line)
        if item and key is not None and (data[key] == "" or isinstance(data[key], list)):
            values = data[key] if isinstance(data[key], list) else []
            values.append(_unquote(item["item"] or item["top"] or ""))
            data[key] = values
            continue
        match = _PLAIN_KEY.match(line)
        if match is None or (match["value"] or "")[:1] in ("[", "{"):  # a broken collection
            raise ValueError(reason)
        key = match["key"]
        data[key] = _unquote(match["value"] or "")
    return data


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


class _NoAliasLoader(yaml.SafeLoader):  # type: ignore[misc]  # no stubs
    """yaml's SafeLoader without aliases: a few hundred bytes of nested ``*alias`` references
    expand to gigabytes (a "billion laughs" block hung ingest and put megabytes of metadata on
    every chunk); front matter has no use for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not read in front matter")
        return super().compose_node(parent, index)


MAX_FRONT_MATTER_CHARS = 8192
"""Front matter whose metadata, as JSON, is longer stays text (still searchable): metadata is
copied onto every chunk of the file and comes back with every hit."""


def read_front_matter(text: str) -> tuple[FrontMatter | None, str]:
    """(front matter, the text after it); (None, text) when there is none or it is malformed.

    The block must open the text (after any BOM) with ``---`` or ``+++`` alone on the first line
    and close with the same marker (``...`` also closes YAML) alone on a line.
    """
    for kind, pattern in (("yaml", _YAML), ("toml", _TOML)):
        match = pattern.match(text)
        if match is None:
            continue
        try:
            data = _parse(kind, match["body"])
        except ValueError as exc:
            logger.debug("front matter kept as text: %s", exc)
            return None, text
        found = _front_matter(data)
        size = len(json.dumps([found.title, found.tags, found.fields]))
        if size > MAX_FRONT_MATTER_CHARS:
            logger.debug("front matter kept as text: %d characters of metadata", size)
            return None, text
        return found, text[match.end() :]
    return None, text


_KEY_LINE = re.compile(r"[ \t]*(?:[\w\"'-]+[ \t]*[:=]|\[[\w.\"' -]+\][ \t]*$)", re.M)
"""A key (``title:``, ``title =``) or a TOML ``[table]``."""
_LIST_LINE = re.compile(r"-[ \t]+\S")
"""A YAML list item (``- one``)."""
_BLANK = re.compile(r"(?:[ \t]*\n)*")
_COMMENTS = re.compile(r"(?:[ \t]*(?:#[^\n]*)?\n)*")


def unread_front_matter(text: str) -> int:
    """Characters of a block opening ``text`` that was meant as front matter but is not read as
    such (malformed, aliased, or over :data:`MAX_FRONT_MATTER_CHARS`); 0 when there is none.

    Call it when :func:`read_front_matter` returned None. The block is delimited as front matter
    is and its first line is data (a key, a TOML table, a YAML list item; a key may follow
    ``#`` comments), so a document that merely opens with a ``---`` rule is not one.
    Chunkers keep such a block as plain text: as Markdown, its closing ``---`` would make its
    last lines a heading (setext), and a legal chunker would read its opening ``---`` as the
    document title.
    """
    for pattern in (_YAML, _TOML):
        match = pattern.match(text)
        if match is None:
            continue
        body = match["body"]
        first = _BLANK.match(body)
        at = first.end() if first else 0
        data = _KEY_LINE.match(body, at) or _LIST_LINE.match(body, at)
        if data is None:  # YAML comments before a key (not before a list: `# Title` may be
            # a Markdown heading over a list, between two rules)
            comments = _COMMENTS.match(body, at)
            data = _KEY_LINE.match(body, comments.end() if comments else at)
        return match.end() if data else 0
    return 0


def _front_matter(data: dict[Any, Any]) -> FrontMatter:
    found = FrontMatter()
    data = valid_unicode_in(data)  # YAML reads "\ud83d\ude00" as two lone surrogates
    for raw_key, value in data.items():
        key = str(raw_key)
        if key == "title" and isinstance(value, str | int | float) and str(value).strip():
            found.title = " ".join(str(value).split())
            continue
        if key == "tags" and (tags := _tags(value)) is not None:
            found.tags = tags
            continue
        try:
            found.fields[key] = _json_safe(value)
        except (TypeError, ValueError, RecursionError):
            logger.debug("front matter key %r dropped: not JSON-serialisable", key)
    return found
