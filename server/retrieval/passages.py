"""Splitting text into passages that fit the embedding model's token window.

Sentence-aware greedy packing; a single sentence longer than the budget is cut at word edges,
and a single word longer than the budget (a URL, a base64 blob) into word-pieces, so every
passage fits and no character is lost. The BEIR evaluation (``index``) packs records with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[]?[A-Z0-9])|\n{2,}")

TokenCounter = Callable[[str], int]


def split_sentences(text: str) -> list[str]:
    """Sentences (and paragraphs) of ``text``, whitespace-trimmed, empty ones dropped."""
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()]


def _cut_long_word(word: str, budget: int, count: TokenCounter) -> list[str]:
    """``word`` in consecutive pieces of at most ``budget`` tokens (at least one character each):
    each piece is the longest prefix that fits, found by exponential then binary search, so the
    cost grows with the piece, not the word."""
    pieces: list[str] = []
    rest = word
    while rest:
        good, probe = 0, 64
        while probe < len(rest) and count(rest[:probe]) <= budget:
            good, probe = probe, probe * 2
        bad = min(probe, len(rest))
        if count(rest[:bad]) <= budget:
            good = bad
        while bad - good > 1:
            mid = (good + bad) // 2
            if count(rest[:mid]) <= budget:
                good = mid
            else:
                bad = mid
        cut = max(good, 1)
        pieces.append(rest[:cut])
        rest = rest[cut:]
    return pieces


def _cut_long_sentence(sentence: str, budget: int, count: TokenCounter) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for word in sentence.split():
        candidate = " ".join([*current, word])
        if current and count(candidate) > budget:
            pieces.append(" ".join(current))
            current = [word]
        else:
            current.append(word)
        if len(current) == 1 and count(word) > budget:
            # Only an over-long word takes this path; ordinary text packs as before.
            pieces.extend(_cut_long_word(word, budget, count))
            current = []
    if current:
        pieces.append(" ".join(current))
    return pieces


def pack_passages(
    text: str, budget: int, count: TokenCounter, overlap_sentences: int = 0
) -> list[str]:
    """Greedy sentence packing into passages of at most ``budget`` tokens each.

    ``overlap_sentences`` repeats that many trailing sentences at the start of the next
    passage (when they fit), so a fact spanning a boundary is whole in one passage.
    """
    if budget < 1:
        raise ValueError("budget must be at least one token")
    units: list[tuple[str, int]] = []
    for sentence in split_sentences(text):
        tokens = count(sentence)
        if tokens <= budget:
            units.append((sentence, tokens))
        else:
            units.extend(
                (piece, count(piece)) for piece in _cut_long_sentence(sentence, budget, count)
            )
    passages: list[str] = []
    current: list[tuple[str, int]] = []
    used = 0
    for unit in units:
        if current and used + unit[1] > budget:
            passages.append(" ".join(s for s, _ in current))
            carry = current[-overlap_sentences:] if overlap_sentences else []
            while carry and sum(t for _, t in carry) + unit[1] > budget:
                carry = carry[1:]
            current, used = list(carry), sum(t for _, t in carry)
        current.append(unit)
        used += unit[1]
    if current:
        passages.append(" ".join(s for s, _ in current))
    return passages
