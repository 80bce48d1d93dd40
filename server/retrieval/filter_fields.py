"""Derived payload fields that turn prefix and glob filters into exact Qdrant matches.

Qdrant matches keyword fields exactly; it has no prefix or glob match. So at index time each
point also stores the path prefixes of its source and the prefixes of its legal section path
as keyword arrays (a point matches when any element equals the value asked for):

- ``path_prefixes``: every ancestor directory of ``source`` and the file itself, plus the same
  for ``rel_path`` (``/r/docs/a.md`` with rel_path ``docs/a.md`` gives ``/r``, ``/r/docs``,
  ``/r/docs/a.md``, ``docs``, ``docs/a.md``). A prefix filter therefore matches whole path
  segments: ``docs`` selects ``docs/a.md`` but not ``docsets/b.md``.
- ``section_prefixes``: every run of consecutive labels of ``section_path`` (``12``,
  ``12 > 12.3``, ``12.3 > (b)``, ``(b)``, ...; ``12.3(b)`` for a run of parenthesised labels),
  in citation form and with their aliases (:func:`section_prefixes`), so a section filter
  selects that section and everything under it however it is cited; the same for each path in
  ``sections_within`` (the sub-clauses a chunk holds whole, packed into their parent's chunk),
  so ``section=12.3`` also finds the chunk of ``12`` that holds 12.3's text.

Globs (``src/**/*.py``) cannot be indexed this way: the browse layer lists the tenant's files
(one point per file, narrowed through ``path_prefixes`` to the glob's literal leading
directories, :func:`glob_literal_prefix`), matches them with :func:`glob_matches`, and the
search then filters on the exact list of matching sources.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from functools import lru_cache
from itertools import product
from typing import Any, Protocol, cast

import re2  # type: ignore[import-untyped]  # no stubs

from server.retrieval.types import FilterValue

PATH_PREFIXES_FIELD = "path_prefixes"
SECTION_PREFIXES_FIELD = "section_prefixes"
SECTIONS_WITHIN_FIELD = "sections_within"
"""Chunk metadata from the legal chunker: section paths of the sub-clauses the chunk holds
whole. Read into ``section_prefixes`` here, not stored on its own."""
SECTION_SEPARATOR = " > "
MAX_SECTION_KEYS = 64
"""At most this many values one section filter matches (a path of six numbered CJK labels has
3^6 spellings; the first ones are the path as written, then the labels respelled in turn)."""
_WILDCARDS = set("*?[")


def normalize_path(path: str) -> str:
    """A POSIX path without duplicate or trailing slashes and without ``./`` segments, in
    Unicode NFC: macOS and zip archives write names decomposed (``Bu\u0308ro``), users type
    them composed (``Büro``), and both must name the same folder."""
    absolute = path.startswith("/")
    path = unicodedata.normalize("NFC", path)
    parts = [p for p in path.replace("\\", "/").split("/") if p and p != "."]
    joined = "/".join(parts)
    return "/" + joined if absolute else joined


def path_forms(path: str) -> FilterValue:
    """The normalised path as a filter value matching both Unicode forms: NFC (how paths are
    stored now) and NFD (how stores indexed before NFC paths may hold a decomposed name)."""
    norm = normalize_path(path)
    decomposed = unicodedata.normalize("NFD", norm)
    return norm if decomposed == norm else [norm, decomposed]


_GLOB_ESCAPE = re.compile(r"\\([\[\]*?])")


def unescape_glob(pattern: str) -> str:
    """``\\[``, ``\\]``, ``\\*``, ``\\?`` as one-character classes (``[[]``), the escape form
    that survives the backslash-to-slash normalisation of Windows paths."""
    return _GLOB_ESCAPE.sub(lambda m: f"[{m.group(1)}]", pattern)


def path_prefixes(path: str) -> list[str]:
    """Every leading directory of ``path`` and the path itself (normalised)."""
    norm = normalize_path(path)
    if not norm or norm == "/":
        return []
    absolute = norm.startswith("/")
    parts = norm.strip("/").split("/")
    lead = "/" if absolute else ""
    return [lead + "/".join(parts[: i + 1]) for i in range(len(parts))]


SECTION_KEYWORDS = {
    "article": "Art.",
    "art.": "Art.",
    "art": "Art.",
    "section": "Section",
    "sec.": "Section",
    "sec": "Section",
    "clause": "Clause",
    "§": "§",
    "§§": "§",
    "part": "Part",
    "chapter": "Chapter",
    "title": "Title",
    "schedule": "Schedule",
    "annex": "Annex",
    "appendix": "Appendix",
    "exhibit": "Exhibit",
    "attachment": "Attachment",
}
"""The words a section label starts with (any case) -> the form citations use (the legal
chunker labels ``ARTICLE 4`` as ``Art. 4``); a filter reads them the same way."""
_KEYWORD_LABEL = re.compile(
    r"^(?P<kw>articles?|art\.?|sections?|sec\.?|clauses?|§§?|parts?|chapters?|titles?|"
    r"schedules?|annex(?:es)?|appendix|exhibits?|attachments?)\s*"
    r"(?P<num>(?:[0-9]+|[IVXLC]+|[A-Z])\b.*)$",
    re.IGNORECASE,
)
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


_KANJI_DIGITS = {ch: n for n, ch in enumerate("〇一二三四五六七八九")} | {"零": 0}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}
_NUMERAL = r"[0-9〇零一二三四五六七八九十百千]+"
_CJK_CITED = re.compile(
    rf"第{_NUMERAL}[編编章節节条條項项款号號](?:[の之]{_NUMERAL})?|제[0-9]+[편장절조항호](?:의[0-9]+)?"
)
"""One label of a CJK citation written run together (第3条第2項第一号, 제2조제1항제3호)."""


def _cjk_labels(part: str) -> list[str]:
    """A run-together CJK citation as the labels the chunker records (제3호 is item ``3``,
    as Korean items are numbered ``3.``); ``[part]`` when it is not one."""
    compact = "".join(part.split())
    labels = [m.group() for m in _CJK_CITED.finditer(compact)]
    if len(labels) < 2 or "".join(labels) != compact:
        return [part]
    return [
        label[1:-1] if label.startswith("제") and label.endswith("호") else label
        for label in labels
    ]


_CJK_NUMBERED = re.compile(
    rf"第(?P<num>{_NUMERAL})(?P<kind>[編编章節节条條項项款号號])"
    rf"(?:(?P<link>[の之])(?P<sub>{_NUMERAL}))?"
)
"""A Japanese or Chinese label with a number: 第二条, 第12条の2, 第二十三条之一, 第一号."""


def _numeral_value(numeral: str) -> int | None:
    """``12``, ``十二``, ``百二``, ``千二百三十四`` or positional ``二〇二`` as a number; None
    when it is none of these (``十十``)."""
    if numeral.isascii():
        return int(numeral)
    if not any(ch in _KANJI_UNITS for ch in numeral):
        return int("".join(str(_KANJI_DIGITS[ch]) for ch in numeral if ch in _KANJI_DIGITS))
    total, digit, last_unit = 0, None, 10_000
    for ch in numeral:
        if ch in _KANJI_DIGITS:
            if digit is not None:
                return None
            digit = _KANJI_DIGITS[ch]
            continue
        unit = _KANJI_UNITS.get(ch)
        if unit is None or unit >= last_unit:
            return None
        total += (1 if digit is None else digit) * unit
        digit, last_unit = None, unit
    return total + (digit or 0)


def _kanji(number: int) -> str:
    """``number`` (0-9999) in kanji as statutes number their articles: 十, 十二, 二十三, 百二."""
    if number == 0:
        return "〇"
    digits = "〇一二三四五六七八九"
    out = []
    for unit, mark in ((1000, "千"), (100, "百"), (10, "十")):
        count, number = divmod(number, unit)
        if count:
            out.append(("" if count == 1 else digits[count]) + mark)
    if number:
        out.append(digits[number])
    return "".join(out)


def _respell(numeral: str | None, spell: Callable[[int], str]) -> str | None:
    value = _numeral_value(numeral) if numeral else None
    return None if value is None or value > 9999 else spell(value)


def _numeral_forms(label: str) -> list[str]:
    """``label`` and the same label with its Japanese or Chinese numbered parts numbered the
    other way: ``第二条`` <-> ``第2条``, ``第十二条の二`` <-> ``第12条の2``, ``第1条(一)`` ->
    ``第一条(一)``. Statutes write kanji numerals and contracts Arabic ones, a Japanese statute
    numbers its paragraphs ``２`` (第2項) and its items ``一`` (第一号), and a reader cites
    either way."""
    if "第" not in label:
        return [label]
    forms = [label]
    for spell in (str, _kanji):

        def respell(m: re.Match[str], spell: Callable[[int], str] = spell) -> str:
            number, sub = _respell(m["num"], spell), _respell(m["sub"], spell)
            if number is None or (m["sub"] and sub is None):
                return m.group()
            return f"第{number}{m['kind']}{m['link'] or ''}{sub or ''}"

        forms.append(_CJK_NUMBERED.sub(respell, label))
    # a Chinese item cited by its number (第一项 is the item written （一）, recorded as (一))
    item = _CJK_NUMBERED.fullmatch(label)
    if item is not None and item["kind"] == "项" and not item["sub"]:
        number = _respell(item["num"], _kanji)
        if number is not None:
            forms.append(f"({number})")
    return list(dict.fromkeys(forms))


_SCRIPTS = (
    str.maketrans("條項號節編", "条项号节编"),  # simplified Chinese
    str.maketrans("条项号节编", "條項號節編"),  # traditional Chinese
    str.maketrans("條项號节编", "条項号節編"),  # Japanese
)
"""The words CJK labels end in as each script writes them (第一条 / 第一條, 第2項 / 第2项)."""


def normalize_section(section: str) -> str:
    """``12>12.3 >(b)`` -> ``12 > 12.3 > (b)`` (whitespace around separators collapsed), in
    Unicode NFKC: ``第２条`` (full-width digits, as a Japanese text may write them) is
    ``第2条``, the label the chunker records; a CJK citation written run together is split
    into its labels (``第2条第2項`` -> ``第2条 > 第2項``)."""
    parts = [" ".join(p.split()) for p in unicodedata.normalize("NFKC", section).split(">")]
    return SECTION_SEPARATOR.join(label for p in parts if p for label in _cjk_labels(p))


def section_label(label: str) -> str:
    """One label as citations write it: ``ARTICLE 4`` / ``article 4`` -> ``Art. 4``, ``§3`` ->
    ``§ 3``, curly quotes straight (``“License”`` -> ``"License"``)."""
    label = " ".join(unicodedata.normalize("NFKC", label).translate(_QUOTES).split())
    m = _KEYWORD_LABEL.match(label)
    if m is None:
        return label
    word = m["kw"].lower()
    word = word[:-1] if word.endswith("s") and word[:-1] in SECTION_KEYWORDS else word
    word = "annex" if word == "annexes" else word
    return f"{SECTION_KEYWORDS.get(word, m['kw'])} {m['num']}"


def _unquoted(value: str) -> str:
    """``value`` with every defined term's quotes dropped (``1 > "Personal Data"`` ->
    ``1 > Personal Data``, ``"Personal Data"(a)`` -> ``Personal Data(a)``; labels hold no
    other double quotes, curly ones being straight by now)."""
    return value.replace('"', "")


_CLAUSE_WORDS = frozenset({"Art.", "Section", "Clause", "§"})
"""Keywords (:func:`section_label` form) naming a clause by its number, so ``Section 4.2`` is
the clause numbered ``4.2``. Not ``Schedule 1``, ``Exhibit 2``, ``Part 4`` or ``Chapter 3``:
those are divisions of their own, and the body's clause 2 is no Exhibit 2."""


_ATTACHMENT_WORDS = frozenset({"Schedule", "Annex", "Appendix", "Exhibit", "Attachment"})
"""Divisions attached to a document that number their items afresh (``Schedule 1 > 2``)."""


def _clause_number(value: str) -> str | None:
    """``value`` without its first label's keyword, when that keyword names a clause."""
    m = _KEYWORD_LABEL.match(value)
    return m["num"] if m is not None and value.split(" ", 1)[0] in _CLAUSE_WORDS else None


def _aliases(value: str) -> list[str]:
    """``value`` and the forms a reader may cite it by: without the first label's keyword
    when it names a clause (``Section 4.2`` for a clause numbered ``4.2``; ``Art. 4 > 4.2`` as
    ``4 > 4.2``: :data:`_CLAUSE_WORDS`) and each of those with its defined terms' quotes
    dropped (``Personal Data``). A filter's :func:`section_keys` drops them too, so quoting
    some terms and not others still matches."""
    out = [value]
    number = _clause_number(value)
    if number is not None:
        out.append(number)
    return list(dict.fromkeys(out + [_unquoted(v) for v in out]))


def section_prefixes(section_path: str, section: str | None = None) -> list[str]:
    """The values a section filter matches a chunk at ``section_path`` by: every run of
    consecutive labels of the path (``12``, ``12 > 12.3``, ``12.3 > (b)``, ``(b)``, ...), a run
    whose later labels are parenthesised also written as one (``12.3(b)``), each with its
    :func:`_aliases`; labels in :func:`section_label` form. De-duplicated. Under an attachment
    (``Schedule 1 > 2``: :data:`_ATTACHMENT_WORDS`) only the runs from its own label: its items
    are numbered afresh, so ``section=2`` means the body's clause 2, not the schedule's item."""
    norm = normalize_section(section_path)
    labels = [section_label(label) for label in norm.split(SECTION_SEPARATOR)] if norm else []
    values: list[str] = []
    # an attachment numbers its items afresh: its item 2 is cited with it, never as clause 2
    attached = bool(labels) and labels[0].split(" ", 1)[0] in _ATTACHMENT_WORDS
    for start in range(1 if attached else len(labels)):
        for end in range(start + 1, len(labels) + 1):
            run = labels[start:end]
            values.append(SECTION_SEPARATOR.join(run))
            if len(run) > 1 and all(label.startswith("(") for label in run[1:]):
                values.append("".join(run))
    if section and not attached:
        values.append(section_label(section))
    return list(dict.fromkeys(alias for v in values for alias in _aliases(v) if alias))


def section_keys(section: str) -> list[str]:
    """The values a section filter ``section`` matches (see :func:`section_prefixes`): the
    section in citation form, and without its first keyword when it names a clause
    (``Section 4.2`` also finds a clause numbered ``4.2``; ``Exhibit 2`` never finds clause
    2), each also with its defined terms unquoted."""
    norm = normalize_section(section)
    if not norm:
        return []
    value = SECTION_SEPARATOR.join(section_label(p) for p in norm.split(SECTION_SEPARATOR))
    number = _clause_number(value)
    keys = [value] if number is None else [value, number]
    # every term unquoted: '1 > "Personal Data" > Personal Data' finds the path whose terms
    # are all quoted (stored unquoted too, by _aliases)
    keys = list(dict.fromkeys(keys + [_unquoted(k) for k in keys]))
    # each CJK label numbered either way (第2条 finds 第二条 as stored, and the reverse)
    numbered: list[str] = []
    for key in keys:
        forms = [_numeral_forms(label) for label in key.split(SECTION_SEPARATOR)]
        numbered.extend(SECTION_SEPARATOR.join(path) for path in product(*forms))
    # and in each script, the whole path at once (第一條 is 第一条: one text, one script)
    numbered += [key.translate(script) for script in _SCRIPTS for key in numbered]
    return list(dict.fromkeys(numbered))[:MAX_SECTION_KEYS]


def derived_filter_fields(source: str, metadata: Mapping[str, Any]) -> dict[str, list[str]]:
    """The extra payload fields for one chunk (empty lists are left out)."""
    fields: dict[str, list[str]] = {}
    prefixes = path_prefixes(source) if source.startswith("/") else []
    rel_path = metadata.get("rel_path")
    if isinstance(rel_path, str) and rel_path:
        prefixes += path_prefixes(rel_path)
    if prefixes:
        fields[PATH_PREFIXES_FIELD] = list(dict.fromkeys(prefixes))
    section_path = metadata.get("section_path")
    if isinstance(section_path, str) and section_path.strip():
        label = metadata.get("section")
        sections = section_prefixes(section_path, label if isinstance(label, str) else None)
        within = metadata.get(SECTIONS_WITHIN_FIELD)
        for path in within if isinstance(within, list) else []:
            sections.extend(section_prefixes(str(path)))
        fields[SECTION_PREFIXES_FIELD] = list(dict.fromkeys(sections))
    return fields


def glob_literal_prefix(pattern: str) -> str:
    """The leading directories of a glob before the first wildcard segment ('' if none)."""
    norm = normalize_path(unescape_glob(pattern))
    absolute = norm.startswith("/")
    parts = norm.strip("/").split("/")
    literal: list[str] = []
    for part in parts[:-1]:  # the last segment is the file name pattern
        if _WILDCARDS & set(part):
            break
        literal.append(part)
    if not literal:
        return "/" if absolute else ""
    return ("/" if absolute else "") + "/".join(literal)


MAX_BRACKET_READINGS = 64
"""Readings of a glob's brackets tried at most (each ``[...]`` as a class or as written)."""


def _brackets(norm: str) -> list[tuple[int, int]]:
    """Spans ``[start, end]`` of the bracket groups of a normalised glob that read as a class."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(norm):
        if norm.startswith("**", i):
            i += 2
        elif norm[i] == "[":
            end = norm.find("]", i + 2)
            if end == -1:
                break
            spans.append((i, end))
            i = end + 1
        else:
            i += 1
    return spans


def _glob_regex(norm: str, classes: frozenset[int] = frozenset()) -> str:
    """Regex source for a normalised glob; the bracket groups starting at ``classes`` are
    character classes (``[!...]`` and ``[^...]`` negated), the others literal."""
    out: list[str] = []
    i = 0
    while i < len(norm):
        c = norm[i]
        if norm.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif norm.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and i in classes:
            end = norm.find("]", i + 2)
            body = norm[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            # each member literal except a single '-' (ranges): '[', '&', '~', '|' and '--' are
            # set operators to come in Python's re and warn today
            members = re.escape(body).replace("\\-", "-").replace("--", "-\\-")
            out.append("[" + ("^" if negate else "") + members + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


class Glob(Protocol):
    """A compiled glob (an RE2 regular expression)."""

    def fullmatch(self, text: str) -> object | None: ...


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> Glob:
    """The glob as a regular expression: ``*`` and ``?`` stay within a segment, ``**`` spans
    segments.

    ``[...]`` matches both ways: as a character class (``[ab].md``) and as written, because
    folder names with brackets are common (Next.js routes ``app/[id]/page.tsx``,
    ``[...slug]``) and a class reading of them never means what the user typed. A pattern
    without ``/`` matches the file name in any directory. Compiled by RE2, whose matching is
    linear in the path's length whatever the glob: Python's backtracking ``re`` took
    exponential time on ``**/*a*a*a*a*a*a*a*a*b`` against a long name, and one such filter
    held the server for every tenant. Raises ValueError for an empty or invalid glob.
    """
    norm = normalize_path(unescape_glob(pattern))
    if not norm:
        raise ValueError("the glob is empty")
    if "/" not in norm:
        norm = "**/" + norm
    # each bracket group both ways: a Next.js folder `[id]` beside a class `[ik]*.py`
    groups = [start for start, _ in _brackets(norm)]
    if len(groups) > 6:  # 2^6 readings at most: all literal, or all classes
        choices: list[frozenset[int]] = [frozenset(), frozenset(groups)]
    else:
        choices = [
            frozenset(g for g, on in zip(groups, picks, strict=True) if on)
            for picks in product((False, True), repeat=len(groups))
        ]
    readings = []
    for classes in choices:
        reading = _glob_regex(norm, classes)
        try:
            re2.compile(reading)
        except re2.error:
            continue  # not a valid class (`[z-a]`): that group only reads as written
        readings.append(reading)
    source = readings[0] if len(readings) == 1 else "|".join(f"(?:{r})" for r in readings)
    try:
        return cast(Glob, re2.compile(source))
    except re2.error as exc:
        raise ValueError(f"invalid glob {pattern!r}: {exc}") from None


def glob_matches(pattern: str, source: str, rel_path: str | None) -> bool:
    """Whether a file matches: an absolute glob against the source path, a relative one
    against the path relative to the ingest root (``rel_path``; no match without one)."""
    regex = compile_glob(pattern)
    path = source if normalize_path(unescape_glob(pattern)).startswith("/") else rel_path
    if not path:
        return False
    try:
        return regex.fullmatch(normalize_path(path)) is not None
    except UnicodeEncodeError:  # a name Python read as undecodable bytes: no glob names it
        return False
