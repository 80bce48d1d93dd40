"""Japanese, Chinese and Korean statutes and contracts keep their chapters and articles.

Field report: a Japanese company regulation (第一章 総則 / 第一条（目的）...) chunked as one
unsectioned text: no citation, and ``section=第2条`` found nothing. Invariant, as a property
over generated texts in the three languages (kanji, arabic or full-width numbers, titles in
brackets or none): the clause tree is chapter > article as written (full-width digits read as
ASCII), and a section filter written either way finds each article's chunk, its numbers in
kanji or Arabic whichever the text used (第2条 finds 第二条).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

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
    # a regulation in articles is a statute, as the legal_search doc_type filter names it
    assert {p.metadata["doc_type"] for p in pieces} == {"statute"}
    prefixes = [
        derived_filter_fields("/r/a.txt", p.metadata).get(SECTION_PREFIXES_FIELD, [])
        for p in pieces
    ]
    for chapter, article in written:
        as_typed = article.translate(WIDE)  # the filter written in full-width digits
        values = [article, as_typed, f"{chapter} > {article}"]
        # numbered the other way: a reader cites 第2条 for a statute's 第二条, and the reverse
        values += [arabic(article), respelled(article), f"{respelled(chapter)} > {arabic(article)}"]
        # in the other script: Taiwan's statutes write 條 for the mainland's and Japan's 条
        values += [article.translate(TO_TRADITIONAL), arabic(article).translate(TO_TRADITIONAL)]
        for value in values:
            assert any(matches(section_filter(value), pre) for pre in prefixes), (value, prefixes)


KANJI_VALUE = {kanji(n): n for n in range(1, 100)}
TO_TRADITIONAL = str.maketrans("条", "條")


def arabic(label: str) -> str:
    """``第十二条`` -> ``第12条`` (kanji numerals below 100, as :func:`kanji` writes them)."""
    return re.sub(r"第([一二三四五六七八九十]+)", lambda m: f"第{KANJI_VALUE[m[1]]}", label)


def respelled(label: str) -> str:
    """The label numbered the other way: kanji -> Arabic, Arabic -> kanji."""
    if re.search(r"第[0-9]", label):
        return re.sub(r"第([0-9]+)", lambda m: f"第{kanji(int(m[1]))}", label)
    return arabic(label)


def matches(condition: Any, prefixes: list[str]) -> bool:
    (wanted,) = condition.values()
    return bool(set(wanted if isinstance(wanted, list) else [wanted]) & set(prefixes))


CIRCLED = "①②③④⑤⑥⑦⑧⑨"
ITEM_BODY = {
    "ja": "未成年者",
    "zh": "重要数据目录；",
    "ko": "안전 교육의 실시",  # opens with Hangul (fresh user: such items were not read)
}


def render_article(lang: str, article: int, paragraphs: list[int]) -> tuple[list[str], Any]:
    """Lines of one article with ``len(paragraphs)`` paragraphs holding that many items each,
    numbered as each language's statutes number them, and the clause tree the chunker should
    read: (label, [children]). Japanese: the first paragraph unnumbered, then ２, ３ (項),
    items 一, 二 (号); Korean: ①, ② (항) with the first on the article's line, items 1., 2.
    (호); Chinese: paragraphs unnumbered (款), items （一） (项)."""
    body, item_body = BODY[lang], ITEM_BODY[lang]
    label = f"제{article}조" if lang == "ko" else f"第{kanji(article)}条"
    lines, children = [], []
    for p, items in enumerate(paragraphs, start=1):
        if lang == "ko":
            mark = f"{CIRCLED[p - 1]} {body}"
            lines.append(f"{label}(목적) {mark}" if p == 1 else mark)
        elif p == 1:
            lines.append(f"{label}（目的）{body}" if lang == "ja" else f"{label} {body}")
        else:
            lines.append(f"{str(p).translate(WIDE)}\u3000{body}" if lang == "ja" else body)
        written = []
        for q in range(1, items + 1):
            if lang == "ja":
                lines.append(f"{kanji(q)}\u3000{item_body}")
                written.append((f"第{kanji(q)}号", []))
            elif lang == "ko":
                lines.append(f"{q}. {item_body}")
                written.append((str(q), []))
            else:
                lines.append(f"（{kanji(q)}）{item_body}")
                written.append((f"({kanji(q)})", []))
        if lang == "ko":
            children.append((f"제{p}항", written))
        elif lang == "ja" and p > 1:
            children.append((f"第{p}項", written))
        else:  # the unnumbered paragraph: its items are the article's own
            children.extend(written)
    return lines, (label, children)


def tree_of(clause: Any) -> list[Any]:
    return [(c.label, tree_of(c)) for c in clause.children]


@given(
    lang=st.sampled_from(["ja", "zh", "ko"]),
    articles=st.lists(
        st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=3),
        min_size=1,
        max_size=3,
    ),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_paragraphs_and_items_of_an_article_are_its_sub_clauses(
    lang: str, articles: list[list[int]], budget: TokenBudget
) -> None:
    """Field report: Japanese statutes' full-width paragraph numbers (２　...) and items
    (一　...) were text of the article, so no chunk could be cited as 第2条第2項.
    Invariant: article > paragraph > item as each language writes them; every chunk's
    section path is a path of that tree."""
    lines, expected = ["規程", ""], []
    for number, paragraphs in enumerate(articles, start=1):
        article_lines, tree = render_article(lang, number, paragraphs)
        lines += [*article_lines, ""]
        expected.append(tree)
    text = "\n".join(lines)
    assert tree_of(parse_clauses(text)) == expected
    paths = set()

    def walk(nodes: list[Any], prefix: tuple[str, ...]) -> None:
        for label, children in nodes:
            paths.add(" > ".join((*prefix, label)))
            walk(children, (*prefix, label))

    walk(expected, ())
    pieces = chunk_legal(text, budget, "規程")
    for piece in pieces:
        assert piece.metadata["section_path"] in paths | {""}, piece.metadata
    # cited as the language writes a citation, run together (第2条第2項第一号, 제2조제1항제1호)
    prefixes = [
        derived_filter_fields("/r/a.txt", p.metadata).get(SECTION_PREFIXES_FIELD, [])
        for p in pieces
    ]
    for path in paths:
        labels = path.split(" > ")
        cited = "".join(f"제{x}호" if x.isdigit() else x for x in labels)
        values = [cited, arabic(cited)]  # 第二条第2項第一号 also cited 第2条第2項第1号
        if lang == "zh" and len(labels) == 2:  # an item （一） cited by number: 第一条第一项
            number = KANJI_VALUE[labels[1].strip("()")]
            values += [f"{labels[0]}第{kanji(number)}项", f"{arabic(labels[0])}第{number}项"]
        for value in values:
            assert any(matches(section_filter(value), pre) for pre in prefixes), (value, prefixes)


CONTRACTS = [
    "業務委託契約書\n\n第1条（目的）甲は乙に業務を委託する。\n\n第2条（期間）一年とする。",
    "株式会社A（以下「甲」という）と株式会社B（以下「乙」という）は次のとおり合意する。\n\n"
    "第一条 甲は乙に業務を委託する。\n\n第二条 期間は一年とする。",
    "技术服务合同\n\n第一条 服务内容\n\n第二条 费用",
    "甲方：某某科技有限公司\n乙方：某某咨询有限公司\n\n第一条 服务内容\n\n第二条 费用",
    "용역계약서\n\n제1조(목적) 이 계약은 용역에 관하여 정한다.\n\n제2조(기간) 1년으로 한다.",
    '주식회사 A(이하 "갑"이라 한다)와 주식회사 B(이하 "을"이라 한다)는 다음과 같이 '
    "합의한다.\n\n제1조(목적) 갑은 을에게 위탁한다.\n\n제2조(기간) 1년으로 한다.",
    "# 業務委託契約書\n\n## 第1条（目的）\n\n委託する。\n\n## 第2条（期間）\n\n一年。",
]


@pytest.mark.parametrize("text", CONTRACTS)
def test_a_cjk_contract_in_articles_is_a_contract(text: str, budget: TokenBudget) -> None:
    """Field report: CJK statutes and contracts alike were doc_type ``other``, so the
    legal_search ``doc_type`` filter could not pick either. A text in articles whose title
    names a contract, or which names its parties 甲 / 乙 (갑 / 을), is a contract."""
    assert {p.metadata["doc_type"] for p in chunk_legal(text, budget, "doc")} == {"contract"}
