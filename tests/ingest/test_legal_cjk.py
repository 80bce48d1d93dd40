"""Japanese, Chinese and Korean statutes and contracts keep their chapters and articles.

Field report: a Japanese company regulation (第一章 総則 / 第一条（目的）...) chunked as one
unsectioned text: no citation, and ``section=第2条`` found nothing. Invariant, as a property
over generated texts in the three languages (kanji, arabic or full-width numbers, titles in
brackets or none): the clause tree is chapter > article as written (full-width digits read as
ASCII), and a section filter written either way finds each article's chunk.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.ingest.budget import TokenBudget
from server.ingest.chunkers.legal import chunk_legal, parse_clauses
from server.retrieval.browse import section_filter
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.filter_fields import SECTION_PREFIXES_FIELD, derived_filter_fields

KANJI = "〇一二三四五六七八九"
BODY = {
    "ja": "当社は、個人情報の漏えいの防止のため、必要な措置を講じる。",
    "zh": "双方应当采取必要措施，保障数据处于有效保护状态。",
    "ko": "회사는 개인정보가 분실되지 아니하도록 필요한 조치를 한다.",
}
TITLE = {"ja": "（安全管理）", "zh": "", "ko": "(안전조치)"}
CHAPTER = {"ja": "総則", "zh": "总则", "ko": "총칙"}


def kanji(n: int) -> str:
    tens, ones = divmod(n, 10)
    return (
        ("" if tens < 2 else KANJI[tens]) + ("十" if tens else "") + (KANJI[ones] if ones else "")
    )


def number(n: int, style: str) -> str:
    return {"kanji": kanji(n), "arabic": str(n), "wide": str(n).translate(WIDE)}[style]


WIDE = str.maketrans("0123456789", "０１２３４５６７８９")


def render(lang: str, style: str, chapters: list[int]) -> tuple[str, list[tuple[str, str]]]:
    """The text and the (chapter, article) labels it writes, as the chunker records them."""
    lines, written, article = ["規程", ""], [], 0
    for c, count in enumerate(chapters, start=1):
        chapter = f"제{c}장" if lang == "ko" else f"第{number(c, style)}章"
        lines += [f"{chapter} {CHAPTER[lang]}", ""]
        for _ in range(count):
            article += 1
            label = f"제{article}조" if lang == "ko" else f"第{number(article, style)}条"
            lines += [f"{label}{TITLE[lang]} {BODY[lang]}", ""]
            written.append(
                (unicodedata.normalize("NFKC", chapter), unicodedata.normalize("NFKC", label))
            )
    return "\n".join(lines), written


@pytest.fixture(scope="module")
def budget(embedder: DenseEmbedder) -> TokenBudget:
    return TokenBudget(embedder.count_tokens, 64)


@given(
    lang=st.sampled_from(["ja", "zh", "ko"]),
    style=st.sampled_from(["kanji", "arabic", "wide"]),
    chapters=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=3),
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_chapters_and_articles_are_sections(
    lang: str, style: str, chapters: list[int], budget: TokenBudget
) -> None:
    text, written = render(lang, style, chapters)
    tree = parse_clauses(text)
    found = [(ch.label, art.label) for ch in tree.children for art in ch.children]
    assert found == written
    pieces = chunk_legal(text, budget, "規程")
    prefixes = [
        derived_filter_fields("/r/a.txt", p.metadata).get(SECTION_PREFIXES_FIELD, [])
        for p in pieces
    ]
    for chapter, article in written:
        as_typed = article.translate(WIDE)  # the filter written in full-width digits
        for value in (article, as_typed, f"{chapter} > {article}"):
            (wanted,) = section_filter(value).values()
            assert any(wanted in pre for pre in prefixes), (value, prefixes)
