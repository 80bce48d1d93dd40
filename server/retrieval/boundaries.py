"""Where a text may be cut: sentence ends (the one sentence splitter), and the best boundary
for cutting a text too long for one chunk.

Positions are character offsets into the text; a cut at ``c`` ends a window at ``text[:c]``.
Prose prefers line ends, then sentence ends (Latin ``. ! ? ;`` followed by whitespace, CJK
``。！？`` with no space after), then whitespace. Code prefers line ends, then whitespace and
the punctuation after which a statement or argument ends (``; , { } )``), so identifiers stay
whole. Every boundary kind here is also a word-piece boundary of BERT-style tokenizers (they
split on whitespace and punctuation), so token counts of the pieces add up exactly.
"""

from __future__ import annotations

import re

_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|cf|vs|No|Nos|Art|Arts|Sec|Secs|para|Para|Mr|Mrs|Ms|Dr|Inc|Ltd|Co|"
    r"Corp|St|U\.S|p|pp|ch|Ch|vol|Vol|ibid|al)\.|\b[A-Z]\.)$"
)
"""A full stop after these does not end a sentence."""
_LIST_NUMBER = re.compile(r"(?:^|(?<=\s))\(?[0-9ivxIVX]{1,5}(?:\.[0-9]+)*\.$")
"""``1.``, ``2.3.``, ``(iv).``: a list number, not a sentence, when it opens one."""
_LATIN_ENDS = ".!?;"
_CJK_ENDS = "。！？"
_CJK_CLOSERS = "」』）”’〕】"
_END_MARK = re.compile(r"[.!?;。！？][」』）”’〕】]*")
_CODE_SOFT = frozenset(";,{})(=")
"""Code is cut after these when a line has no space to cut at: never inside an identifier,
and after ``(`` and ``=`` a header keeps its name when an argument's default is a long
literal (``def warm_cache(key="<40 KB>")`` had a window holding only ``def``)."""
_LOOKBACK = 24


def _is_sentence_end(text: str, c: int, lo: int) -> bool:
    """True when a sentence ends just before position ``c`` (``lo`` is where the text opens)."""
    k = c
    while k > lo and text[k - 1] in _CJK_CLOSERS:
        k -= 1
    if k <= lo:
        return False
    mark = text[k - 1]
    if mark in _CJK_ENDS:
        return True
    if mark not in _LATIN_ENDS or k != c or c >= len(text) or not text[c].isspace():
        return False
    if _ABBREVIATION.search(text, max(lo, c - _LOOKBACK), c):
        return False
    number = _LIST_NUMBER.search(text, max(lo, c - _LOOKBACK), c)
    if number is None:
        return True
    before = text[lo : number.start()].rstrip()
    # A list number opening the text or following a sentence end is a label, not a sentence.
    return bool(before) and before[-1] not in _LATIN_ENDS + _CJK_ENDS


def sentence_ends(text: str, lo: int = 0, hi: int | None = None) -> list[int]:
    """Positions in ``(lo, hi]`` just after a sentence end, ascending."""
    hi = len(text) if hi is None else hi
    marks = _END_MARK.finditer(text, lo, hi)
    return [m.end() for m in marks if _is_sentence_end(text, m.end(), lo)]


def last_cut(text: str, lo: int, hi: int, *, code: bool, start: int = 0) -> int | None:
    """The best cut position ``c`` with ``lo < c <= hi``, or None when there is none.

    The highest-ranked boundary kind present wins, and within it the last one (greedy packing).
    ``start`` is where the text being split opens (sentence rules look no further back).
    """
    newline = text.rfind("\n", lo + 1, hi + 1)
    if newline > lo:
        return newline
    if not code:
        for mark in reversed(list(_END_MARK.finditer(text, lo, hi))):
            if _is_sentence_end(text, mark.end(), start):
                return mark.end()
    for c in range(hi, lo, -1):
        if c < len(text) and text[c].isspace():
            return c
        if code and text[c - 1] in _CODE_SOFT:
            return c
    return None


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, whitespace-trimmed; a blank line ends one too (a heading or a
    list item without a full stop is its own sentence). Abbreviations (``e.g.``, ``Art.``,
    ``1.``) do not end a sentence, and CJK sentences end at ``。！？`` without a following
    space. The one sentence splitter: chunk overlap, part vectors and passage packing use it.
    """
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = paragraph.strip()
        start = 0
        for end in sentence_ends(paragraph):
            sentence = paragraph[start:end].strip()
            if sentence:
                sentences.append(sentence)
                start = end
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return sentences
