"""Chunk budgets counted in the embedding model's own word-pieces.

The text that is embedded is ``title + "\\n" + text`` (see RetrievalPipeline), so the title
counts toward the budget. BERT-style tokenizers split on whitespace first, so the token count
of whitespace-joined pieces is the sum of their counts; packing relies on that and every
emitted chunk is checked once more with a full count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

TokenCounter = Callable[[str], int]

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_ABBREVIATIONS = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|cf|vs|No|Nos|Art|Arts|Sec|Secs|para|Para|Mr|Mrs|Ms|Dr|Inc|Ltd|Co|"
    r"Corp|St|U\.S|p|pp|ch|Ch|vol|Vol|ibid|al)\.|\b[A-Z]\.|^\(?[0-9ivxIVX]{1,5}(?:\.[0-9]+)*\.)$"
)
_MIN_TITLE_SHARE = 2
"""A title may use at most 1/_MIN_TITLE_SHARE of the budget; longer titles are cut."""


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; abbreviations (``e.g.``, ``Art.``, ``1.``) do not end one."""
    parts = _SENTENCE_END.split(text.strip())
    sentences: list[str] = []
    for part in parts:
        if not part:
            continue
        if sentences and _ABBREVIATIONS.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {part}"
        else:
            sentences.append(part)
    return sentences


class TokenBudget:
    """Packs text units into chunks that fit the model window (title included)."""

    def __init__(self, count: TokenCounter, max_tokens: int, overlap_tokens: int = 0) -> None:
        if max_tokens < 16:
            raise ValueError(f"a chunk budget of {max_tokens} tokens is too small")
        self.count = count
        self.max_tokens = max_tokens
        self.overlap_tokens = min(overlap_tokens, max_tokens // 4)

    # -- measuring -----------------------------------------------------------------------------

    def embedded_tokens(self, title: str, text: str) -> int:
        """Word-pieces of what the pipeline embeds for (title, text)."""
        return self.count(f"{title}\n{text}" if title else text)

    def fits(self, title: str, text: str) -> bool:
        """True when (title, text) fits the budget."""
        return self.embedded_tokens(title, text) <= self.max_tokens

    def fit_title(self, title: str) -> str:
        """The title, cut so that it leaves at least half the budget for text."""
        limit = self.max_tokens // _MIN_TITLE_SHARE
        if self.count(title) <= limit:
            return title
        return self.cut_to(title, limit).rstrip() + " …"

    def room(self, title: str) -> int:
        """Tokens left for text once the title is prepended."""
        return self.max_tokens - (self.count(title) if title else 0)

    # -- packing -------------------------------------------------------------------------------

    def pack(self, units: Sequence[str], title: str = "", sep: str = "\n\n") -> list[str]:
        """Greedily join units (paragraphs, clauses) into chunks within budget.

        A unit too large for one chunk is split at sentences, then words, then word-pieces.
        When a chunk is closed, its trailing sentences (up to ``overlap_tokens``) start the
        next one.
        """
        room = self.room(title)
        pieces: list[tuple[str, int]] = []
        for unit in units:
            unit = unit.strip()
            if not unit:
                continue
            n = self.count(unit)
            if n <= room:
                pieces.append((unit, n))
            else:
                pieces.extend((s, self.count(s)) for s in self.split_oversized(unit, room))
        chunks: list[str] = []
        current: list[str] = []
        used = 0
        for text, n in pieces:
            if current and used + n > room:
                chunks.append(sep.join(current))
                current, used = self._overlap(current[-1], room - n)
            current.append(text)
            used += n
        if current:
            chunks.append(sep.join(current))
        return [part for chunk in chunks for part in self._enforce(title, chunk)]

    def _overlap(self, last: str, space: int) -> tuple[list[str], int]:
        """Trailing sentences of ``last`` worth at most overlap_tokens (and ``space``)."""
        limit = min(self.overlap_tokens, space)
        if limit <= 0:
            return [], 0
        carried: list[str] = []
        used = 0
        for sentence in reversed(split_sentences(last)):
            n = self.count(sentence)
            if used + n > limit:
                break
            carried.insert(0, sentence)
            used += n
        if not carried or " ".join(carried) == last.strip():
            return [], 0
        return [" ".join(carried)], used

    def split_oversized(self, text: str, room: int) -> list[str]:
        """Split one unit that exceeds ``room``: at lines (multi-line units such as code),
        sentences, words, then word-pieces."""
        if "\n" in text.strip():
            return self._split_lines(text.strip(), room)
        return self._pack(split_sentences(text), room, " ", lambda s: self._split_words(s, room))

    def _split_lines(self, text: str, room: int) -> list[str]:
        out = self._pack(text.split("\n"), room, "\n", lambda s: self.split_oversized(s, room))
        return [chunk for chunk in out if chunk.strip()]

    def _split_words(self, text: str, room: int) -> list[str]:
        return self._pack(text.split(), room, " ", lambda word: self._cut_word(word, room))

    def _cut_word(self, word: str, room: int) -> list[str]:
        pieces: list[str] = []
        rest = word
        while rest:
            head = self.cut_to(rest, room)
            pieces.append(head)
            rest = rest[len(head) :]
        return pieces

    def _pack(
        self,
        pieces: Iterable[str],
        room: int,
        joiner: str,
        split_piece: Callable[[str], list[str]],
    ) -> list[str]:
        """Greedily join consecutive pieces into runs of at most ``room`` tokens; a piece that
        alone exceeds ``room`` goes through ``split_piece``."""
        out: list[str] = []
        current: list[str] = []
        used = 0
        for piece in pieces:
            n = self.count(piece)
            if n > room:
                if current:
                    out.append(joiner.join(current))
                    current, used = [], 0
                out.extend(split_piece(piece))
                continue
            if current and used + n > room:
                out.append(joiner.join(current))
                current, used = [], 0
            current.append(piece)
            used += n
        if current:
            out.append(joiner.join(current))
        return out

    def cut_to(self, text: str, limit: int) -> str:
        """Longest prefix of ``text`` with at most ``limit`` tokens (at least one character)."""
        lo, hi = 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count(text[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo]

    def _enforce(self, title: str, text: str) -> list[str]:
        """Final check with a full count; re-split in the rare case the sum was off."""
        if self.fits(title, text):
            return [text]
        room = self.room(title) - 2
        return [p for p in self._split_words(text, max(room, 1)) if p]

    def line_windows(
        self, lines: Sequence[str], title: str, overlap_lines: int = 0
    ) -> list[tuple[int, int]]:
        """Half-open line ranges [start, end) whose joined text fits with ``title``.

        Newlines are kept (code). A single line too long for the budget becomes its own window
        and is cut by :meth:`cut_line_window` by the caller.
        """
        room = self.room(title)
        counts = [self.count(line) for line in lines]
        windows: list[tuple[int, int]] = []
        start = 0
        n = len(lines)
        while start < n:
            end, used = start, 0
            while end < n and (end == start or used + counts[end] <= room):
                used += counts[end]
                end += 1
            windows.append((start, end))
            if end >= n:
                break
            start = max(end - overlap_lines, start + 1)
        return windows
