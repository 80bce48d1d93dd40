"""Contracts, statutes and licences: clause- and section-aware chunks with a citable path.

Headings recognised at the start of a line: ``Part``/``Chapter``, ``Article``/``Section``/
``Clause``/``§``, numbered clauses (``1.``, ``1.1``, ``12.3(b)``), parenthesised sub-clauses
(``(a)``, ``(2)``, ``(iv)``) and definition paragraphs (``"Licensor" shall mean ...``); in a
text written in Markdown, the same behind heading marks and emphasis (``## 2. Term``,
``2.2 **Termination.**``), and Markdown headings without a number rank by level as underlined
ones do. A clause
whose whole subtree fits the budget is one chunk; a larger one is split into its own text and
its sub-clauses, and prose is only split between sentences (unless one sentence is too long).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.base import Piece
from server.ingest.chunkers.text import RULE, paragraphs
from server.retrieval.filter_fields import SECTION_KEYWORDS, SECTIONS_WITHIN_FIELD

_KEYWORD_TOP = re.compile(
    r"^(?P<kw>PART|Part|CHAPTER|Chapter|TITLE|Title)\s+(?P<num>[0-9]+|[IVXLC]+)\b\.?(?P<rest>.*)$"
)
_KEYWORD = re.compile(
    r"^(?P<kw>ARTICLE|Article|Art\.|SECTION|Section|Sec\.|CLAUSE|Clause|§§?)\s*"
    r"(?P<num>(?:[0-9]+[a-z]?|[IVXLC]+)(?:\.[0-9]+)*)\b\.?(?P<rest>.*)$"
)
_NUMBERED = re.compile(
    r"^(?P<num>\d{1,3}(?:\.\d{1,3})*)(?P<dot>\.)?(?P<paren>\([a-z0-9]{1,4}\))?"
    r"(?:\s+(?P<rest>\S.*))?$"
)
_ANNEX = re.compile(
    r"^(?P<kw>SCHEDULE|Schedule|ANNEX|Annex|APPENDIX|Appendix|EXHIBIT|Exhibit|ATTACHMENT|"
    r"Attachment)(?:\s+(?P<num>[0-9]+|[A-Z]{1,2}|[IVXLC]+))?\b\s*[.:\-–—]?(?P<rest>.*)$"
)
"""A schedule, annex, appendix, exhibit or attachment: a part of its own after the clauses
(``SCHEDULE 1``, ``Exhibit A - Notice``, ``APPENDIX: How to apply``)."""
_ANNEX_LABELS = frozenset({"Schedule", "Annex", "Appendix", "Exhibit", "Attachment"})
_CJK = re.compile(
    r"^(?P<label>(?:第\s*[0-9〇一二三四五六七八九十百千]+\s*(?P<kw>[編编章節节条條])"
    r"|제\s*[0-9]+\s*(?P<ko>[편장절조]))(?:\s*(?:の|之|의)\s*[0-9一二三四五六七八九十]+)?)"
    r"(?P<rest>.*)$"
)
"""A Japanese, Chinese or Korean statute or contract heading: 第一章 総則, 第3条（目的）,
第十二条の二, 第五条 ..., 제1조(목적). The written label is kept (kanji numerals as written)."""
_CJK_RANKS = {"編": 0, "编": 0, "편": 0, "章": 0.25, "장": 0.25, "節": 0.5, "节": 0.5, "절": 0.5}
"""Part > chapter > section above the article (条/條/조, ranked as ``Section``)."""
_CJK_ARTICLE = frozenset("条條조")
_CJK_PARAGRAPH = re.compile(r"^(?P<num>[０-９]{1,3}|[①-⑳])[ \u3000]*(?P<rest>\S.*)?$")
"""A paragraph of an article, numbered as statutes number them: full-width digits (Japanese
２, ３; the first paragraph is unnumbered) or circled ones (Korean ①, ②)."""
_CJK_ITEM = re.compile(
    r"^(?:(?P<num>[一二三四五六七八九十]{1,4})[ \u3000]+"
    r"|(?P<paren>[（(][一二三四五六七八九十]{1,4}[）)]))(?P<rest>\S.*)$"
)
"""An item of an article or paragraph: a kanji numeral and a space (Japanese 一　..., 号) or in
brackets (Chinese （一）..., 项)."""
_KO_FIRST_PARAGRAPH = re.compile(
    r"^제\s*[0-9]+\s*조(?:\s*의\s*[0-9]+)?\s*(?:\([^)]*\))?\s*(?P<num>[①-⑳])"
)
"""A Korean article whose first paragraph starts on its heading line (제2조(정의) ① ...)."""
_KO_ITEM = re.compile(r"^(?P<num>[0-9]{1,3})\.[ \t]*\S")
"""A Korean item (호) of an article or paragraph: ``1. 안전 교육의 실시``."""
_RANK_CJK_PARAGRAPH = 1.5
"""Between the article (``_RANK_SECTION``) and its items (``_RANK_NUMBERED``: Korean ``1.``)."""
_PAREN = re.compile(r"^\((?P<lab>[a-z]{1,2}|[ivxlc]{1,6}|\d{1,3}|[A-Z])\)\s*(?P<rest>.*)$")
_DEFINITION = re.compile(
    r"^[\"“](?P<term>[^\"”]{1,60})[\"”]\s+(?:shall\s+mean|means|has\s+the\s+meaning|"
    r"includes|refers\s+to|shall\s+include)\b"
)
_ROMAN = re.compile(r"^[ivxlc]+$")
_ATX = re.compile(r"^ {0,3}(?P<marks>#{1,6})(?:\s+(?P<text>.*?))?(?:\s+#+)?\s*$")
_EMPHASIS = re.compile(r"\*{1,3}|_{2,3}|`+")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark backslash escapes: "5\." is "5."
_LINK = re.compile(r"!?\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_REFERRING = re.compile(
    r"(?:^|\s)(?:sections?|articles?|art\.|clauses?|(?:sub)?paragraphs?|para\.|subsections?|"
    r"sec\.|schedules?|annex(?:es)?|exhibits?|appendix|appendices|attachments?|parts?|"
    r"chapters?|titles?|§§?|of|in|under|to|with|by|per|see|from|at|than|and/or|"
    r"(?:[a-z]+-)?(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"(?:thir|four|fif|six|seven|eigh|nine)teen|(?:twen|thir|for|fif|six|seven|eigh|nine)ty|"
    r"hundred|thousand))$",
    re.IGNORECASE,
)
"""A line ending in a word that names what follows it (``... under section``, ``... set out
in``) or a number in words (``sixty`` / ``(60) days``): the label starting the next line
belongs to the sentence (``7.  This requirement``)."""
_RANK_TOP, _RANK_SECTION, _RANK_NUMBERED = 0, 1, 2
_RANK_PAREN = {"digit": 10, "letter": 11, "roman": 12, "upper": 13}
_RANK_DEFINITION = 20

_JURISDICTION = re.compile(
    r"governed by(?:,? and construed in accordance with,?)? the laws? of (?:the )?"
    r"(?P<place>(?:State of |Commonwealth of |Republic of |Federal Republic of )?"
    r"[A-Z][A-Za-z]+(?: (?:and |of |the )?[A-Z][A-Za-z]+){0,3})"
)


@dataclass
class Clause:
    """A node of the clause tree: its label, heading, own paragraphs and sub-clauses."""

    rank: float
    label: str
    heading: str
    lines: list[str] = field(default_factory=list)
    children: list[Clause] = field(default_factory=list)

    def own_text(self) -> list[str]:
        """Own paragraphs, hard-wrapped lines joined (so sentences can be found)."""
        return [" ".join(p.split()) for p in paragraphs("\n".join(self.lines))]

    def full_text(self) -> str:
        """Own text and every sub-clause, in order."""
        parts = ["\n\n".join(self.own_text())]
        parts.extend(child.full_text() for child in self.children)
        return "\n\n".join(p for p in parts if p)


def _heading_title(label: str, rest: str, wraps: bool = False) -> str:
    """``label`` plus the heading words when the rest of the line looks like a title
    (``Termination``, or a run-in heading such as ``Grant of Copyright License. Subject ...``).
    When the line's sentence ``wraps`` onto the next line, only a run-in heading is a title
    (``2.1 Either party may`` is the start of a sentence)."""
    rest = rest.strip().lstrip(".:-–— ")
    run_in = re.match(r"^([A-Z][^.;:]{0,60}?)\.\s+\S", rest)
    if run_in and len(run_in[1].split()) <= 6:
        return f"{label} {run_in[1]}"
    words = rest.split()
    if (
        not wraps
        and words
        and len(words) <= 8
        and rest[0].isupper()
        and not re.search(r"[.;:,]\s", rest)
        and (not rest.endswith((".", ":", ";", ",")) or (rest.endswith(".") and len(words) <= 4))
    ):
        return f"{label} {rest.rstrip('.')}"
    return label


def _cjk_title(label: str, rest: str) -> str:
    """``label`` plus the heading words of a CJK heading: a title in brackets (第3条（目的）,
    제1조(목적)), or a short rest without sentence punctuation (第一章 総則)."""
    rest = rest.strip()
    bracketed = re.match(r"^[(（【〔]([^)）】〕]{1,30})[)）】〕]", rest)
    if bracketed:
        return f"{label} {bracketed[1].strip()}"
    if rest and len(rest) <= 30 and not re.search(r"[。、，,.;；:：]", rest):
        return f"{label} {rest}"
    return label


def _title_below(lines: list[str], i: int) -> str | None:
    """The title on the line after heading line ``i`` (``ARTICLE 1`` / ``DEFINITIONS``,
    ``SCHEDULE 2`` / ``PRICES``): a short line in capitals or title case, no heading itself,
    with a blank line (or the end) after it."""
    below = markdown_plain(lines[i + 1])[1].strip() if i + 1 < len(lines) else ""
    after = lines[i + 2].strip() if i + 2 < len(lines) else ""
    words = below.split()
    if (
        not words
        or after
        or len(words) > 8
        or _match_heading(below, [])
        or re.search(r"[,;:]", below)
        or not all(w[0].isupper() or not w[0].isalpha() or len(w) <= 3 for w in words)
    ):
        return None
    return " ".join(words).rstrip(".")


def _continues(previous: str, width: int) -> bool:
    """Whether a line after ``previous`` (no blank line between) continues its sentence, so a
    label starting it is text, not a heading: ``previous`` ends in a word that takes the
    label as its object (:data:`_REFERRING`), or is a line of a wrapped paragraph (at least
    0.7 of the text's ``width``) ending mid-sentence, in a lower-case word (``including
    without limitation`` / ``Section 2.2. The Source Code ...``)."""
    previous = previous.rstrip()
    if _REFERRING.search(previous) is not None:
        return True
    return previous[-1:].islower() and len(previous) >= 0.7 * width


def _wrap_width(lines: list[str]) -> int:
    """The width a text's paragraphs are wrapped at: the 90th percentile of its line lengths
    (a text of long unwrapped lines has no wrapped line short of it)."""
    lengths = sorted(len(line.rstrip()) for line in lines if line.strip())
    return lengths[int(0.9 * (len(lengths) - 1))] if lengths else 0


def _inline_list(label: str, rest: str) -> bool:
    """Whether a ``(1)`` line lists its items inline (``(1) assert copyright, and (2) offer
    this License``): the next label of its style follows in the same line, and not as a
    reference (``paragraph (b)``)."""
    inner = label[1:-1]
    if inner.isdigit():
        following = [str(int(inner) + 1)]
    elif len(inner) == 1:  # a letter, or i/v/x read as a roman numeral
        following = [chr(ord(inner) + 1), _ROMANS.get(inner, "")]
    else:
        following = [_ROMANS.get(inner, "")]
    for f in filter(None, following):
        at = rest.find(f"({f})")
        if at >= 0 and not _REFERRING.search(rest[:at].rstrip()):
            return True
    return False


_NUMERALS = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "xiii"]
_ROMANS = dict(itertools.pairwise(_NUMERALS))
"""A lower-case roman numeral -> the next one."""


def _paren_style(label: str, stack: list[Clause]) -> str:
    if label.isdigit():
        return "digit"
    if label.isupper():
        return "upper"
    if _ROMAN.match(label):
        # (i) after (h), (v) after (u), (x) after (w) is a letter, not a roman numeral.
        letters = [c for c in stack if c.rank == _RANK_PAREN["letter"]]
        previous = letters[-1].label.strip("()") if letters else ""
        if len(label) == 1 and previous and ord(label) == ord(previous[-1]) + 1:
            return "letter"
        if label in {"i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x"} or len(label) > 1:
            return "roman"
    return "letter"


def _circled(number: str) -> str:
    """A full-width or circled number as ASCII digits (２ -> 2, ⑫ -> 12)."""
    return unicodedata.normalize("NFKC", number)


def _is_cjk_article(label: str) -> bool:
    m = _CJK.match(label)
    return m is not None and (m["kw"] or m["ko"] or "") in _CJK_ARTICLE


def _cjk_subclause(line: str, *, korean: bool) -> tuple[float, str, str] | None:
    """A paragraph (第2項, 제2항) or an item (第一号, (一)) opening ``line`` within a CJK
    article, labelled as the language cites it: Japanese 第3条第2項第一号, Korean 제3조제2항."""
    m = _CJK_PARAGRAPH.match(line)
    if m:
        number = _circled(m["num"])
        label = f"제{number}항" if korean else f"第{number}項"
        return (_RANK_CJK_PARAGRAPH, label, label)
    if korean:  # items 1., 2. (호) whatever their text opens with: Hangul is no capital
        m = _KO_ITEM.match(line)
        return (_RANK_NUMBERED, m["num"], m["num"]) if m else None
    m = _CJK_ITEM.match(line)
    if m:
        label = f"第{m['num']}号" if m["num"] else unicodedata.normalize("NFKC", m["paren"])
        return (_RANK_NUMBERED, label, label)
    return None


def _match_heading(
    line: str, stack: list[Clause], wraps: bool = False
) -> list[tuple[float, str, str]]:
    """Headings that start ``line``: [(rank, label, heading title)], outermost first; ``wraps``:
    the line's sentence goes on in the next line (see :func:`_heading_title`)."""
    stripped = line.strip()
    if not stripped:
        return []
    m = _CJK.match(unicodedata.normalize("NFKC", stripped))
    if m:
        label = "".join(m["label"].split())
        rank = _CJK_RANKS.get(m["kw"] or m["ko"], _RANK_SECTION)
        headings = [(rank, label, _cjk_title(label, m["rest"]))]
        inline = _KO_FIRST_PARAGRAPH.match(stripped)
        if inline:  # 제2조(정의) ① ...: the article's first paragraph starts on its line
            first = f"제{_circled(inline['num'])}항"
            headings.append((_RANK_CJK_PARAGRAPH, first, first))
        return headings
    article = next((c.label for c in reversed(stack) if _is_cjk_article(c.label)), None)
    if article is not None:
        sub = _cjk_subclause(stripped, korean=article.startswith("제"))
        if sub is not None:
            return [sub]
    m = _ANNEX.match(stripped)
    if m and (not m["rest"].strip() or m["rest"].strip()[0].isupper()):
        kw = SECTION_KEYWORDS[m["kw"].lower()]
        label = f"{kw} {m['num']}" if m["num"] else kw
        return [(_RANK_TOP, label, _heading_title(label, m["rest"], wraps))]
    m = _KEYWORD_TOP.match(stripped)
    if m and (not m["rest"].strip() or not m["rest"].strip()[0].islower()):
        label = f"{SECTION_KEYWORDS[m['kw'].lower()]} {m['num']}"
        return [(_RANK_TOP, label, _heading_title(label, m["rest"], wraps))]
    m = _KEYWORD.match(stripped)
    if m and (not m["rest"].strip() or not m["rest"].strip()[0].islower()):
        label = f"{SECTION_KEYWORDS[m['kw'].lower()]} {m['num']}"
        return [(_RANK_SECTION, label, _heading_title(label, m["rest"], wraps))]
    m = _NUMBERED.match(stripped)
    if m and (m["dot"] or "." in m["num"] or m["paren"]):
        rest = m["rest"] or ""
        if rest and not (rest[0].isupper() or rest[0] in "(\"“'"):
            return []
        num = m["num"]
        found: list[tuple[float, str, str]] = [
            (_RANK_NUMBERED + num.count("."), num, _heading_title(num, rest, wraps))
        ]
        if m["paren"]:
            found.append(
                (_RANK_PAREN[_paren_style(m["paren"][1:-1], stack)], m["paren"], m["paren"])
            )
        return found
    m = _PAREN.match(stripped)
    if m and not _inline_list(f"({m['lab']})", m["rest"]):
        label = f"({m['lab']})"
        return [(_RANK_PAREN[_paren_style(m["lab"], stack)], label, label)]
    m = _DEFINITION.match(stripped)
    if m:
        term = m["term"].strip()
        return [(_RANK_DEFINITION, f"“{term}”", f"“{term}”")]
    return []


_UNDERLINE = RULE
_BOX_SIDE = re.compile(r"^\s*\*(?:\s(?P<inner>.*?))?\s*\*\s*$")


def _unbox(line: str) -> str:
    """A line of an asterisk box frame (``*  6. Disclaimer  *``) without the frame."""
    match = _BOX_SIDE.match(line)
    if match is None or _UNDERLINE.match(line):
        return line
    return (match["inner"] or "").strip()


def layout_lines(text: str) -> list[str]:
    """The lines of a legal text without its layout, which is not text.

    Layout is: rule lines (three or more of one of ``= - ~ * _ #`` alone on a line, spaced or
    not, such as heading underlines and asterisk box tops), which become empty lines, and the
    ``*`` frame of a boxed line (``*  text  *`` keeps ``text``). Everything else is kept as it
    is.
    """
    out: list[str] = []
    for line in text.split("\n"):
        line = _unbox(line)
        out.append("" if _UNDERLINE.match(line) else line)
    return out


def strip_layout(text: str) -> str:
    """The legal text the chunks hold: ``text`` without layout (see :func:`layout_lines`)."""
    return "\n".join(layout_lines(text))


def markdown_plain(line: str) -> tuple[int, str]:
    """(heading level, text) of a line of a legal text written in Markdown: an ATX heading's
    level (``## 2. Term`` is 2; 0 for other lines) and the line without its heading marks and
    emphasis, code spans and link targets (``**Termination.**``, ``[Fees](fees.md)``), so clause
    headings and titles read as in plain text."""
    level = 0
    match = _ATX.match(line)
    if match:
        level, line = len(match["marks"]), match["text"] or ""
    return level, _ESCAPED.sub(r"\1", _EMPHASIS.sub("", _LINK.sub(r"\1", line)))


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _layout_styles(raw: list[str], lines: list[str]) -> list[str]:
    """Per line, the layout that makes it a heading: ``"#" * level`` for a Markdown heading,
    the underline's character for a line underlined with ``===`` / ``---``, else ""."""
    styles: list[str] = []
    for i, line in enumerate(lines):
        level, _ = markdown_plain(line)
        underline = _UNDERLINE.match(raw[i + 1]) if i + 1 < len(raw) else None
        is_rule = _UNDERLINE.match(raw[i]) is not None
        styles.append("" if is_rule else underline[1] if underline else "#" * level)
    return styles


def _style_ranks(lines: list[str], styles: list[str]) -> dict[str, float]:
    """The rank of each heading layout (a Markdown level, an underline): a layout whose headings
    include numbered clauses (``## 4. Liability``, ``## ARTICLE V``) ranks as the outermost of
    them, so every heading of that layout (``## Confidentiality``, ``## 10.``) is a sibling of
    the others, not their parent; a deeper Markdown level ranks below a shallower one unless
    both number alike (one kind, one depth: ``## 1.`` and ``### 2.``), so ``### Section 1.1``
    nests under ``## 1. General``; a Markdown level without numbered headings ranks between
    the numbered levels around it. Empty when no heading of any layout is numbered (layouts
    then rank in the order they appear, above numbered clauses)."""
    numbered: dict[str, float] = {}
    kinds: dict[str, str] = {}  # "1." numbering or the keyword (Art., Section, ...), depth
    for line, style in zip(lines, styles, strict=True):
        found = _match_heading(markdown_plain(line)[1], []) if style else []
        if found and found[0][1].split()[0] in _ANNEX_LABELS:
            found = []  # an exhibit says nothing of its layout's rank: it follows any clauses
        if found:
            numbered[style] = min(numbered.get(style, found[0][0]), found[0][0])
            label = found[0][1]  # "1.2", "Art. V", "Section 1.01": the kind and its depth
            kind = "1." if label[:1].isdigit() else label.split()[0]
            kinds.setdefault(style, f"{kind} {label.split()[-1].count('.')}")
    ranks = dict(numbered)
    levels: dict[int, float] = {}
    for level in sorted(len(style) for style in numbered if style.startswith("#")):
        # a deeper Markdown level nests when its numbering ranks no lower (## 1. General over
        # ### Section 1.1; ## ARTICLE I over ### Section 1.01); numbers of one kind and depth
        # at two levels (## 1. and ### 2.) stay siblings: the numbers say so
        style, rank = "#" * level, numbered["#" * level]
        above = [lv for lv in levels if lv < level]
        if above:
            nearest = max(above)
            outer = levels[nearest]
            if rank < outer or (rank == outer and kinds[style] != kinds["#" * nearest]):
                rank = outer + 0.5
        levels[level] = ranks[style] = rank
    for level in range(1, 7):
        if level in levels or not levels:
            continue
        above = [lv for lv in levels if lv < level]
        if above:  # deeper than the nearest numbered level above, shallower than its clauses
            nearest = max(above)
            ranks["#" * level] = levels[nearest] + 1 - 0.5 ** (level - nearest)
        else:
            nearest = min(levels)
            ranks["#" * level] = levels[nearest] - 1 + 0.5 ** (nearest - level)
    return ranks


def parse_clauses(text: str, title: str | None = None, *, titles: Collection[str] = ()) -> Clause:
    """The clause tree of a legal text; the root holds the preamble.

    Lines underlined with ``===`` / ``---`` are headings too (ranked above numbered clauses,
    in the order their styles appear); the underlines themselves are layout (dropped). So are
    Markdown headings; headings of one layout rank alike (:func:`_style_ranks`). A heading
    line reading as ``title`` or one of ``titles`` is the document's title, not a clause.
    """
    not_clauses = {title, *titles}
    root = Clause(rank=-1, label="", heading="")
    stack: list[Clause] = [root]
    raw = [_unbox(line) for line in text.split("\n")]
    lines = layout_lines(text)
    layouts = _layout_styles(raw, lines)
    style_ranks = _style_ranks(lines, layouts)
    seen: list[str] = []
    previous = ""  # the line before as text; "" after a blank line, a rule or a heading mark
    width = _wrap_width(lines)
    for i, line in enumerate(lines):
        if _UNDERLINE.match(raw[i]):
            previous = ""  # a rule ends the paragraph above it
            continue
        plain = markdown_plain(line)[1]
        style = layouts[i]
        # a wrapped sentence's next line may start with a label it refers to ("section\n7.")
        continued = not style and _continues(previous, width)
        following = markdown_plain(lines[i + 1])[1].strip() if i + 1 < len(lines) else ""
        wraps = bool(following) and (following[0].islower() or _continues(plain, width))
        headings = [] if continued else _match_heading(plain, stack[1:], wraps)
        previous = "" if style else plain  # a clause's first line may wrap too
        name = " ".join(plain.split())
        if headings and style in style_ranks:  # one layout, one rank: siblings
            headings[0] = (style_ranks[style], *headings[0][1:])
        elif style and _has_word(name) and not headings and name not in not_clauses:
            if style not in seen:
                seen.append(style)
            rank = style_ranks.get(style, min(seen.index(style), _RANK_SECTION))
            label = name if len(name) <= 60 else name[:57].rstrip() + "..."
            headings = [(rank, label, label)]
        if len(headings) == 1 and headings[0][0] <= _RANK_SECTION and len(name.split()) <= 2:
            # ARTICLE 1 / DEFINITIONS: a keyword heading's title on the line under it
            rank, label, heading = headings[0]
            title = _title_below(lines, i)
            headings = [(rank, label, f"{label} {title}" if title else heading)]
        for rank, label, heading in headings:
            while len(stack) > 1 and stack[-1].rank >= rank:
                stack.pop()
            clause = Clause(rank=rank, label=label, heading=heading)
            stack[-1].children.append(clause)
            stack.append(clause)
        stack[-1].lines.append(line)
    return root


_CONTRACT_TITLE = re.compile(
    r"\b(?:agreement|contract|lease|deed|addendum|memorandum of understanding|"
    r"statement of work|terms of (?:service|use|sale))\b",
    re.IGNORECASE,
)
"""A title naming a contract (``SUPPLY AGREEMENT``, ``COMMERCIAL LEASE``, ``SOFTWARE LICENSE
AGREEMENT``): what the parties are called does not matter then."""


def detect_doc_type(text: str) -> str:
    """contract | statute | licence | other, from the title line and the wording of the first
    few pages. A Japanese, Chinese or Korean text in articles (第一条, 제1조) is a statute or,
    when its title names a contract or it names its parties 甲 and 乙 (갑, 을), a contract:
    statutes and company regulations (規程) alike are cited by article."""
    head = text[:6000]
    lower = head.lower()
    title = _title_line(head)
    if title and len(title.split()) <= 10 and _CONTRACT_TITLE.search(title):
        return "contract"
    if (
        re.search(r"\blicen[cs]e\b", lower[:300])
        or re.search(r"permission is hereby granted|redistribution and use in source", lower)
        or (
            re.search(r"\blicen[cs]e\b", lower)
            and re.search(r"permission|licensor|licensee|redistribut|warrant", lower)
        )
    ):
        return "licence"
    if re.search(r"\b(agreement|contract)\b", lower) and re.search(
        r"\bpart(y|ies)\b|hereinafter|\bwhereas\b", lower
    ):
        return "contract"
    if re.search(r"\b(act|statute|regulation|code|directive)\b", lower) and re.search(
        r"§|\barticle\s+\d|\bsection\s+\d|\benacted\b|\bshall enter into force\b", lower
    ):
        return "statute"
    if _CJK_ARTICLE_LINE.search(head):  # a CJK text in articles: 第一条, 第2条, 제1조
        contract = (title and _CJK_CONTRACT_TITLE.search(title)) or _CJK_PARTIES.search(head)
        return "contract" if contract else "statute"
    return "other"


_CJK_ARTICLE_LINE = re.compile(
    r"^[ \t\u3000#*]*(?:第[ \t]*[0-9０-９〇一二三四五六七八九十百千]+[ \t]*[条條]"
    r"|제[ \t]*[0-9]+[ \t]*조)",
    re.M,
)
_CJK_CONTRACT_TITLE = re.compile(r"契約|合同|协议|協議|계약|협약|약정서")
"""A CJK title naming a contract (業務委託契約書, 技术服务合同, 용역계약서)."""
_CJK_PARTIES = re.compile(r"以下[「『\"“]?[甲乙]|[甲乙]方[:：]|이하\s*[\"“'‘「]?[갑을]")
"""The parties named as contracts name them: 以下「甲」という, 甲方：, 이하 "갑"이라 한다."""


LEGAL_DOC_TYPE_NAMES = {
    "contract": "contract",
    "agreement": "contract",
    "statute": "statute",
    "act": "statute",
    "regulation": "statute",
    "law": "statute",
    "licence": "licence",
    "license": "licence",
    "other": "other",
}
"""Names an author may give a legal document's type (any case) -> the ``doc_type`` value the
legal_search filter takes (contract | statute | licence | other)."""


def legal_doc_type(value: str) -> str | None:
    """The ``doc_type`` value a declared type names, or None when it names none of them."""
    return LEGAL_DOC_TYPE_NAMES.get(" ".join(value.split()).casefold())


def detect_jurisdiction(text: str) -> str | None:
    """The governing-law jurisdiction named in the text, if any (also where the sentence
    wraps: ``the State of New`` / ``York``)."""
    m = _JURISDICTION.search(" ".join(text.split()))
    return m["place"].strip() if m else None


def chunk_legal(
    text: str, budget: TokenBudget, doc_title: str, *, title_given: bool = False
) -> list[Piece]:
    """Clause-aware chunks; ``section_path`` (the citation) and ``section`` in metadata.

    The chunks hold every character of :func:`strip_layout` of ``text`` except whitespace, in
    order. A clause that is only a heading (``12. Termination``) and has sub-clauses opens its
    first sub-clause's first chunk. The document title is the first line when it looks like
    one, unless ``title_given`` (front matter named it).
    """
    own_title = _title_line(text)
    if not title_given:
        doc_title = own_title or doc_title
    titles = {t for t in (doc_title, own_title) if t}
    packer = _ClausePacker(budget, doc_title, _document_metadata(text), titles)
    # the text's own title line is no clause, also under a title from front matter
    packer.pack(parse_clauses(text, doc_title, titles=[own_title] if own_title else []))
    return packer.pieces


def _title_line(text: str) -> str | None:
    """The first non-blank line when it reads as the document's title: short, and not a clause
    heading, a copyright notice or a numbered item."""
    lines = [line for line in layout_lines(text) if line.strip()]  # a rule above is layout
    first = " ".join(markdown_plain(lines[0])[1].split()) if lines else ""
    if (
        first
        and len(first) <= 100
        and not _match_heading(first, [])
        and not first.lower().startswith(("copyright", "(c)", "©"))
        and not re.match(r"^[A-Z0-9]{1,3}[.)]\s", first)
    ):
        return first
    return None


def _document_metadata(text: str) -> dict[str, Any]:
    """Metadata every chunk of the document carries: ``doc_type`` and, if named,
    ``jurisdiction``."""
    common: dict[str, Any] = {"doc_type": detect_doc_type(text)}
    jurisdiction = detect_jurisdiction(text)
    if jurisdiction:
        common["jurisdiction"] = jurisdiction
    return common


@dataclass
class _ClausePacker:
    """Walks a clause tree depth first and packs it into pieces under the token budget."""

    budget: TokenBudget
    doc_title: str
    common: dict[str, Any]
    titles: Collection[str] = ()
    """The document's title lines (as text): before the first clause, they lead into it."""
    pieces: list[Piece] = field(default_factory=list)

    def pack(self, root: Clause) -> None:
        """Pack the whole tree; a heading left waiting at the end joins the last piece."""
        rest = self._visit(root, [], [], "", is_root=True)
        if not rest:
            return
        if self.pieces and self.budget.fits(
            self.pieces[-1].title, f"{self.pieces[-1].text}\n\n{rest}"
        ):
            self.pieces[-1].text = f"{self.pieces[-1].text}\n\n{rest}"
        else:
            self.pieces.extend(
                Piece(self.doc_title, t, dict(self.common))
                for t in self.budget.pack([rest], self.doc_title)
            )

    def _visit(
        self,
        clause: Clause,
        labels: list[str],
        headings: list[str],
        lead: str,
        *,
        is_root: bool = False,
    ) -> str:
        """Emit the clause's chunks; returns a heading still waiting for text (or "")."""
        full = clause.full_text()
        title = self.budget.fit_title(" > ".join([self.doc_title, *headings]))
        if not is_root and full and self.budget.would_fit(title, _join(lead, full)):
            self._emit(clause, labels, headings, True, lead)
            return ""
        own = clause.own_text()
        heading_only = len(own) == 1 and len(clause.lines) - clause.lines.count("") <= 1
        # the text's title line or title block (``Apache License`` / ``Version 2.0, January
        # 2004`` / ``TERMS AND CONDITIONS``), before the first clause, opens its chunk: a chunk
        # of titles alone matches their words and holds nothing
        title_only = is_root and heading_only and markdown_plain(own[0])[1].strip() in self.titles
        if is_root and own and clause.children and (title_only or _title_block(own)):
            lead = _join(lead, "\n\n".join(own))
        elif own and heading_only and clause.heading != clause.label and clause.children:
            # The heading opens the first sub-clause's chunk instead of standing alone.
            lead = _join(lead, own[0])
        elif own:
            self._emit(clause, labels, headings, False, lead)
            lead = ""
        for child in clause.children:
            lead = self._visit(child, [*labels, child.label], [*headings, child.heading], lead)
        return lead

    def _emit(
        self, clause: Clause, labels: list[str], headings: list[str], whole: bool, lead: str
    ) -> None:
        """Pieces of the clause (its whole subtree, or its own text) under its heading path."""
        path = " > ".join([self.doc_title, *headings]) if self.doc_title else ""
        title = self.budget.fit_title(path)
        metadata: dict[str, Any] = {
            **self.common,
            "section_path": " > ".join(labels),
            "section": labels[-1] if labels else "",
        }
        if whole and clause.children:  # so a filter on a packed sub-clause finds its text
            metadata[SECTIONS_WITHIN_FIELD] = [" > ".join(p) for p in _paths(clause, labels)]
        units = [clause.full_text()] if whole else clause.own_text()
        if len(units) > 1 and _heading_alone(clause, units[0]):
            # a heading paragraph opens the chunk of the text after it, never a chunk alone
            lead, units = _join(lead, units[0]), units[1:]
        for chunk in self.budget.pack(units, title, lead=lead):
            self.pieces.append(Piece(title=title, text=chunk, metadata=dict(metadata)))


def _title_block(paragraphs: list[str]) -> bool:
    """Whether a preamble is titles only: no sentence (no paragraph ends in ``.``, ``!``,
    ``?`` or ``:``) and at most 40 words."""
    words = sum(len(p.split()) for p in paragraphs)
    return words <= 40 and not any(p.rstrip().endswith((".", "!", "?", ":")) for p in paragraphs)


def _heading_alone(clause: Clause, paragraph: str) -> bool:
    """Whether ``paragraph`` (the clause's first) is its heading and nothing else: the label
    (``## Confidentiality``) or the label and title (``2. Delivery and Acceptance``), not a
    run-in heading and its sentence."""
    words = markdown_plain(paragraph)[1].split()
    if " ".join(words) == clause.label:
        return True
    return clause.heading != clause.label and len(words) <= len(clause.heading.split()) + 1


def _paths(clause: Clause, labels: list[str]) -> list[list[str]]:
    """The section paths of every clause under ``clause`` (at ``labels``), depth first."""
    out: list[list[str]] = []
    for child in clause.children:
        out.append([*labels, child.label])
        out.extend(_paths(child, out[-1]))
    return out


def _join(lead: str, text: str) -> str:
    return f"{lead}\n\n{text}" if lead and text else lead or text
