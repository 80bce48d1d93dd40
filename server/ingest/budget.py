"""Chunk budgets counted in the embedding model's own word-pieces.

The text that is embedded is ``title + "\\n" + text`` (see analysis.keyword_text), so the title
counts toward the budget. BERT-style tokenizers split on whitespace and punctuation first, so
the token count of pieces joined at such a boundary is the sum of their counts; packing relies
on that and every emitted chunk is checked once more with a full count.

Text is never cut off: a unit too long for one chunk is split into consecutive windows
(:meth:`TokenBudget.windows`) that together hold every non-whitespace character, in order.
With a fast (Rust) Hugging Face tokenizer the windows come from one tokenization of the unit
and its character offsets; with any other counter they are found by exponential search.

Budget tokens are word-pieces, each charged one token per ``piece_chars`` characters it covers
(rounded up), where ``piece_chars`` is the longest piece of the tokenizer's vocabulary. So no
piece the vocabulary holds costs more than one token, and only an unknown-word piece standing
for a longer run is charged by its length: BERT's WordPiece (MiniLM) reads a word it cannot
split, such as a Thai phrase, or any word over 100 characters (a hex blob, a key, a long
concatenation), as one ``[UNK]``. Counted as one token, a 40 KB run fitted one chunk, so a
chunk held kilobytes the model never saw and an agent received them whole; counted by length,
the run is split into windows like any long text.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any, NamedTuple

from server.retrieval.boundaries import last_cut, split_sentences

TokenCounter = Callable[[str], int]
TokenOffsets = Callable[[str], list[tuple[int, int]]]
"""Character spans ``(start, end)`` of each word-piece of a text, special tokens excluded."""

_MIN_TITLE_SHARE = 2
"""A title may use at most 1/_MIN_TITLE_SHARE of the budget; longer titles are cut."""
_LONG_TEXT = 2048
"""Texts longer than this many characters are measured through the offsets (and cached), so a
large unit is tokenized once for counting and splitting."""
_PROBE_CHARS = 256
"""First step of the exponential search for a window's end when there are no offsets."""

MAX_LABEL_CHARS = 500
"""Characters a chunk's title, or any label a chunker derives for its metadata (a signature, a
symbol, a heading path entry), may hold; longer ones are cut and end in ``…``. Every hit carries
its title and labels outside the output budget (``max_chars`` trims texts only), so they must be
small whatever the source holds (a default argument holding a 40 KB literal, a heading holding a
key blob). The text keeps every character. Measured on 500 Python standard library modules and
300 Debian documents: the longest title is 394 characters and 1 signature in 12,000 is longer
(624), the 99.9th percentile 477."""

DEFAULT_PIECE_CHARS = 18
"""``piece_chars`` when the tokenizer's vocabulary cannot be read: MiniLM's (its longest piece
is ``telecommunications``)."""

__all__ = [
    "DEFAULT_PIECE_CHARS",
    "MAX_LABEL_CHARS",
    "TokenBudget",
    "TokenCounter",
    "TokenOffsets",
    "Window",
    "budget_spans",
    "cut_label",
    "piece_tokens",
    "split_sentences",
]


def cut_label(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    """``label`` when it has at most ``limit`` characters, else its first ``limit - 2``
    (trailing whitespace dropped) and `` …``."""
    if len(label) <= limit:
        return label
    return label[: limit - 2].rstrip() + " …"


def piece_tokens(chars: int, piece_chars: int) -> int:
    """Budget tokens of one word-piece covering ``chars`` characters: at least 1, one per
    ``piece_chars`` characters."""
    return max(1, -(-chars // piece_chars))


def budget_spans(spans: list[tuple[int, int]], piece_chars: int) -> list[tuple[int, int]]:
    """Word-piece spans with each piece longer than ``piece_chars`` cut into its
    :func:`piece_tokens` consecutive character ranges: one span is one budget token."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        n = piece_tokens(end - start, piece_chars)
        if n == 1:
            out.append((start, end))
            continue
        edges = [start + (end - start) * i // n for i in range(n + 1)]
        out.extend(pairwise(edges))
    return out


def tokenizer_piece_chars(count: TokenCounter) -> int | None:
    """Characters of the longest piece in the vocabulary of the tokenizer behind ``count``
    (WordPiece ``##``, SentencePiece ``▁`` and byte-level ``Ġ`` markers not counted), or None
    when there is no readable vocabulary."""
    owner = getattr(count, "__self__", None)
    if owner is None:
        return None
    try:
        vocab = owner._tokenizer.get_vocab()
    except Exception:  # no tokenizer, or one without a vocabulary: the default applies
        return None
    longest = max((len(piece.removeprefix("##").lstrip("▁Ġ")) for piece in vocab), default=0)
    return longest or None


class Window(NamedTuple):
    """Characters ``[start, end)`` of a text, whitespace-trimmed, and their token count."""

    start: int
    end: int
    tokens: int


def tokenizer_offsets(count: TokenCounter) -> TokenOffsets | None:
    """Offsets from the fast Hugging Face tokenizer behind ``count``, when there is one.

    ``count`` is usually an embedder's bound ``count_tokens``; its owner's ``token_offsets``
    method is used if it has one, else its ``_tokenizer`` when that is a fast tokenizer (the
    one ``DenseEmbedder.truncate`` reads offsets from). Returns None for any other counter.
    """
    owner = getattr(count, "__self__", None)
    if owner is None:
        return None
    # Looked up on the class: LazyEmbedder loads its weights for unknown instance attributes.
    if callable(getattr(type(owner), "token_offsets", None)):
        public: TokenOffsets = owner.token_offsets
        return public
    try:
        tokenizer: Any = owner._tokenizer
    except Exception:  # no tokenizer (or it cannot load): counting will say so
        return None
    if not getattr(tokenizer, "is_fast", False):
        return None

    def offsets(text: str) -> list[tuple[int, int]]:
        encoded = tokenizer(
            text,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            truncation=False,
            verbose=False,  # measuring long texts is the point: no "longer than max" warning
        )
        spans: list[tuple[int, int]] = encoded["offset_mapping"]
        return spans

    return offsets


class TokenBudget:
    """Packs text units into chunks that fit the model window (title included).

    ``count`` is the model's word-piece counter; :meth:`count` is the budget's, which charges
    a piece longer than ``piece_chars`` by its length (module docstring). ``offsets`` defaults
    to :func:`tokenizer_offsets` of ``count``, ``piece_chars`` to
    :func:`tokenizer_piece_chars` of it, else ``DEFAULT_PIECE_CHARS``.
    """

    def __init__(
        self,
        count: TokenCounter,
        max_tokens: int,
        overlap_tokens: int = 0,
        *,
        offsets: TokenOffsets | None = None,
        piece_chars: int | None = None,
    ) -> None:
        if max_tokens < 16:
            raise ValueError(f"a chunk budget of {max_tokens} tokens is too small")
        self.model_count = count
        self.max_tokens = max_tokens
        self.overlap_tokens = min(overlap_tokens, max_tokens // 4)
        self.offsets = offsets if offsets is not None else tokenizer_offsets(count)
        if piece_chars is None:
            piece_chars = tokenizer_piece_chars(count) or DEFAULT_PIECE_CHARS
        self.piece_chars = piece_chars
        # Word-pieces never hold whitespace: a text without a longer run of other characters
        # has no piece to charge by length, and is counted by the model's counter alone.
        self._long_run = re.compile(rf"\S{{{piece_chars + 1},}}")
        self._cached: tuple[str, list[tuple[int, int]], list[int]] | None = None

    # -- measuring -----------------------------------------------------------------------------

    def count(self, text: str) -> int:
        """Budget tokens of ``text``: its word-pieces, a long piece charged by its length."""
        if self._long_run.search(text) is None:
            return self.model_count(text)
        if self.offsets is not None:
            return sum(
                piece_tokens(end - start, self.piece_chars) for start, end in self.offsets(text)
            )
        # Without offsets the pieces are unknown: a word (split as BERT's pre-tokenizer splits,
        # at whitespace and punctuation) that the counter charges less than one token per
        # piece_chars was read as one unknown piece, and is charged by its length instead.
        extra = 0
        for run in self._long_run.findall(text):
            for word in _words(run):
                if len(word) > self.piece_chars:
                    charged = piece_tokens(len(word), self.piece_chars)
                    extra += max(0, charged - self.model_count(word))
        return self.model_count(text) + extra

    def embedded_tokens(self, title: str, text: str) -> int:
        """Word-pieces of what the pipeline embeds for (title, text)."""
        return self.count(f"{title}\n{text}" if title else text)

    def fits(self, title: str, text: str) -> bool:
        """True when (title, text) fits the budget (one full count)."""
        return self.embedded_tokens(title, text) <= self.max_tokens

    def measure(self, text: str) -> int:
        """Word-pieces of ``text`` alone; long texts are tokenized once and cached for
        :meth:`windows`."""
        if self.offsets is not None and len(text) > _LONG_TEXT:
            return len(self._token_spans(text)[0])
        return self.count(text)

    def would_fit(self, title: str, text: str) -> bool:
        """Whether (title, text) fits, counting title and text apart (exact for tokenizers that
        split on whitespace) so that a large text is tokenized only once."""
        return (self.count(title) if title else 0) + self.measure(text) <= self.max_tokens

    def fit_title(self, title: str) -> str:
        """The title, cut to :data:`MAX_LABEL_CHARS` characters and so that it leaves at least
        half the budget for text."""
        title = cut_label(title)
        limit = self.max_tokens // _MIN_TITLE_SHARE
        if self.measure(title) <= limit:
            return title
        return self.cut_to(title, limit).rstrip() + " …"

    def room(self, title: str) -> int:
        """Tokens left for text once the title is prepended."""
        return self.max_tokens - (self.count(title) if title else 0)

    def line_token_counts(self, lines: Sequence[str]) -> list[int]:
        """Word-pieces of each line (one tokenization of the whole text when it is long)."""
        text = "\n".join(lines)
        if self.offsets is None or len(text) <= _LONG_TEXT:
            return [self.count(line) for line in lines]
        _, ends = self._token_spans(text)
        counts: list[int] = []
        before = 0
        at = 0
        for line in lines:
            at += len(line)
            upto = bisect_right(ends, at)  # tokens never span a line break
            counts.append(upto - before)
            before = upto
            at += 1
        return counts

    def _token_spans(self, text: str) -> tuple[list[tuple[int, int]], list[int]]:
        """(token offsets, their end positions) of ``text``; the last text is cached."""
        cached = self._cached
        if cached is not None and (cached[0] is text or cached[0] == text):
            return cached[1], cached[2]
        assert self.offsets is not None
        spans = self._spans(text)
        ends = [end for _, end in spans]
        self._cached = (text, spans, ends)
        return spans, ends

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Budget-token spans of ``text`` (requires offsets)."""
        assert self.offsets is not None
        spans = self.offsets(text)
        if self._long_run.search(text) is None:
            return spans
        return budget_spans(spans, self.piece_chars)

    # -- splitting -----------------------------------------------------------------------------

    def windows(
        self,
        text: str,
        room: int,
        *,
        code: bool = False,
        keep: int = 0,
        start: int = 0,
        end: int | None = None,
    ) -> list[Window]:
        """Split ``text[start:end]`` into consecutive windows of at most ``room`` tokens.

        Each window ends at the best boundary before the budget runs out (see
        :func:`server.retrieval.boundaries.last_cut`; ``code`` selects the code rules), else at a
        word-piece edge. The windows hold every non-whitespace character of the range in
        order, each exactly once. No cut is made before character ``keep`` (a heading that
        must open the first window) unless what precedes it alone exceeds ``room``.
        """
        end = len(text) if end is None else end
        if room < 1:
            raise ValueError("a window needs room for at least one token")
        spans: list[tuple[int, int]] | None = None
        ends: list[int] = []
        if self.offsets is not None:
            spans, ends = self._token_spans(text)
        out: list[Window] = []
        pos = _skip_space(text, start, end)
        exact_start = True
        while pos < end:
            if spans is not None:
                first = bisect_right(ends, pos)
                limit = first + room
                if limit >= len(spans) or spans[limit][0] >= end:
                    hard, exact_hard = end, True
                else:
                    hard = spans[limit][0]
                    exact_hard = not _inside_word(text, hard)
            else:
                first = 0
                hard = self._reach(text, pos, end, room)
                exact_hard = False
            if hard >= end:
                cut = end
            else:
                lo = keep if pos < keep < hard else pos
                found = last_cut(text, lo, hard, code=code, start=start)
                cut = hard if found is None else found
            exact = spans is not None and exact_start and (cut != hard or exact_hard)
            cut = _trim_end(text, pos, cut)
            tokens = bisect_right(ends, cut) - first if exact else self.count(text[pos:cut])
            while tokens > room and cut - pos > 1:
                cut = self._shrink(text, pos, cut, spans)
                tokens = self.count(text[pos:cut])
            out.append(Window(pos, cut, tokens))
            nxt = _skip_space(text, cut, end)
            exact_start = nxt > cut or not _inside_word(text, cut)
            pos = nxt
        return out

    def _reach(self, text: str, pos: int, end: int, room: int) -> int:
        """Without offsets: the largest ``e <= end`` with ``text[pos:e]`` within ``room``."""
        good, step = pos, _PROBE_CHARS
        probe = min(end, pos + step)
        while self.count(text[pos:probe]) <= room:
            good = probe
            if probe >= end:
                return end
            step *= 2
            probe = min(end, pos + step)
        bad = probe
        while bad - good > 1:
            mid = (good + bad) // 2
            if self.count(text[pos:mid]) <= room:
                good = mid
            else:
                bad = mid
        return max(good, pos + 1)

    def _shrink(self, text: str, pos: int, cut: int, spans: list[tuple[int, int]] | None) -> int:
        """A cut before ``cut`` (a word-piece edge when offsets are known)."""
        if spans is not None:
            upto = bisect_right(spans, (cut, cut))
            starts = [s for s, _ in spans[max(0, upto - 4) : upto]]
            earlier = [s for s in starts if pos < s < cut]
            if earlier:
                return max(earlier)
        return pos + max(1, (cut - pos) * 3 // 4)

    def split_oversized(self, text: str, room: int) -> list[str]:
        """Split one unit that exceeds ``room``: at lines (multi-line units such as code),
        sentences, words, then word-pieces."""
        return [text[w.start : w.end] for w in self.windows(text, room)]

    # -- packing -------------------------------------------------------------------------------

    def pack(
        self, units: Sequence[str], title: str = "", sep: str = "\n\n", lead: str = ""
    ) -> list[str]:
        """Greedily join units (paragraphs, clauses) into chunks within budget.

        A unit too large for one chunk is split into :meth:`windows`. ``lead`` (headings whose
        sections had no text of their own) opens the first chunk together with the first unit.
        When a chunk is closed, its trailing sentences (up to ``overlap_tokens``) start the
        next one.
        """
        room = self.room(title)
        texts = [u.strip() for u in units if u.strip()]
        keep = 0
        if lead.strip():
            keep = len(lead.strip()) + len(sep)
            texts = [f"{lead.strip()}{sep}{texts[0]}", *texts[1:]] if texts else [lead.strip()]
        pieces: list[tuple[str, int, bool]] = []  # (text, tokens, counted from offsets)
        for index, unit in enumerate(texts):
            n = self.measure(unit)
            if n <= room:
                pieces.append((unit, n, False))
            else:
                found = self.windows(unit, room, keep=keep if index == 0 else 0)
                exact = self.offsets is not None
                pieces.extend((unit[w.start : w.end], w.tokens, exact) for w in found)
        chunks: list[tuple[str, bool]] = []
        current: list[str] = []
        used = 0
        window = False
        for text, n, exact in pieces:
            if current and used + n > room:
                chunks.append((sep.join(current), window and len(current) == 1))
                current, used = self._overlap(current[-1], room - n)
            current.append(text)
            used += n
            window = exact
        if current:
            chunks.append((sep.join(current), window and len(current) == 1))
        out: list[str] = []
        for chunk, counted in chunks:
            # A lone window was counted on the tokenizer's own offsets: no second full pass.
            out.extend([chunk] if counted else self._enforce(title, chunk))
        return out

    def _overlap(self, last: str, space: int) -> tuple[list[str], int]:
        """Trailing sentences of ``last`` worth at most overlap_tokens (and ``space``)."""
        limit = min(self.overlap_tokens, space)
        if limit <= 0:
            return [], 0
        sentences = split_sentences(last)
        if len(sentences) < 2:
            return [], 0  # the whole piece cannot be carried
        carried: list[str] = []
        used = 0
        for sentence in reversed(sentences):
            n = self.count(sentence)
            if used + n > limit:
                break
            carried.insert(0, sentence)
            used += n
        if not carried or " ".join(carried) == last.strip():
            return [], 0
        return [" ".join(carried)], used

    def cut_to(self, text: str, limit: int) -> str:
        """Longest prefix of ``text`` with at most ``limit`` tokens (at least one character)."""
        if self.offsets is not None:
            # Short texts (titles) are not cached: the cache holds the unit being split.
            spans = self._token_spans(text)[0] if len(text) > _LONG_TEXT else self._spans(text)
            if len(spans) <= limit:
                return text
            cut = max(1, spans[limit - 1][1])
            while cut > 1 and self.count(text[:cut]) > limit:
                cut = self._shrink(text, 0, cut, spans)
            return text[:cut]
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
        room = max(self.room(title) - 2, 1)
        return [text[w.start : w.end] for w in self.windows(text, room)]

    def line_windows(
        self,
        lines: Sequence[str],
        title: str,
        overlap_lines: int = 0,
        counts: Sequence[int] | None = None,
    ) -> list[tuple[int, int]]:
        """Half-open line ranges [start, end) whose joined text fits with ``title``.

        Newlines are kept (code). A single line too long for the budget becomes its own window,
        which the caller splits with :meth:`windows`. ``overlap_lines`` lines are repeated at
        the start of the next window when they fit beside its first new line. ``counts`` are
        the lines' token counts when the caller has them.
        """
        room = self.room(title)
        counts = list(counts) if counts is not None else self.line_token_counts(lines)
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
            back = min(overlap_lines, end - start - 1)
            while back > 0 and sum(counts[end - back : end + 1]) > room:
                back -= 1
            start = end - back
        return windows


def _is_punctuation(ch: str) -> bool:
    """BERT's punctuation: every non-alphanumeric ASCII character and Unicode category P*."""
    code = ord(ch)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


_CJK = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)
"""The CJK ideograph blocks BERT's pre-tokenizer makes one word of each character."""


def _words(run: str) -> list[str]:
    """A run without whitespace split at punctuation and CJK ideographs, as BERT's
    pre-tokenizer splits it (the separators, one character each, are left out)."""
    words: list[str] = []
    start = 0
    for at, ch in enumerate(run):
        code = ord(ch)
        if _is_punctuation(ch) or any(lo <= code <= hi for lo, hi in _CJK):
            if at > start:
                words.append(run[start:at])
            start = at + 1
    if start < len(run):
        words.append(run[start:])
    return words


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos


def _trim_end(text: str, pos: int, cut: int) -> int:
    while cut > pos + 1 and text[cut - 1].isspace():
        cut -= 1
    return cut


def _inside_word(text: str, at: int) -> bool:
    """True when ``at`` falls between two word characters (a word-piece edge, not a word edge:
    the pieces' counts may not add up, so the window is counted again)."""
    return 0 < at < len(text) and text[at - 1].isalnum() and text[at].isalnum()
