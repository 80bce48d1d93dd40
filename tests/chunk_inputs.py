"""Hypothesis strategies for the chunking invariant: hostile text of every shape.

Texts mix short generated words with fixed hard fragments: no newlines at all, a 50 KB line of
minified JavaScript, long tokens (base64, a URL, 5,000 characters without a space), CJK without
spaces, Thai (phrases MiniLM's tokenizer reads as one unknown word each), Arabic, emoji,
combining marks, and empty or whitespace-only input.
"""

from __future__ import annotations

import base64
import html
import random
from pathlib import Path

from hypothesis import strategies as st

FIELD = Path(__file__).resolve().parent.parent / "datasets" / "field"
MINIFIED_JS = FIELD / "long-lines" / "checkout.min.js"

_rng = random.Random(11)
MINIFIED = MINIFIED_JS.read_text()
MINIFIED_50K = (MINIFIED * 2)[:50_000]
BASE64 = base64.b64encode(bytes(_rng.randrange(256) for _ in range(3000))).decode()
URL = "https://example.com/" + "/".join(f"seg{i}-{_rng.randrange(10**6)}" for i in range(300))
NO_SPACE = "".join(_rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5000))
CJK = "混合检索很好用。数据检索需要分词！日本語の文章もあります？한국어 문장도 있습니다。" * 6
THAI = (
    "ระบบค้นหาเอกสารแบบผสมผสานช่วยให้ผู้ใช้สามารถค้นหาข้อมูลที่ต้องการได้อย่างรวดเร็ว "
    "และแม่นยำมากขึ้นโดยใช้ทั้งการค้นหาด้วยคำสำคัญและความหมาย "
) * 5
ARABIC = "هذا نص عربي طويل للاختبار. يحتوي على جمل متعددة! " * 4
EMOJI = "🚀✨🧪 deploy 🎉👩‍💻 done 🏁" * 5
COMBINING = "e\u0301te\u0301 cafe\u0301 n\u0303o Z\u0327\u030c " * 6
PROSE = (
    "The cache keeps recent entries in memory. See Art. 5 and e.g. clause 3 for details. "
    "Dr. Smith wrote it; the rest follows! Does it work? 1. It does."
)
HARD_FRAGMENTS = [MINIFIED_50K, BASE64, URL, NO_SPACE, CJK, THAI, ARABIC, EMOJI, COMBINING, PROSE]
SMALL_FRAGMENTS = [
    f for f in HARD_FRAGMENTS if len(f) < 6000 and f is not NO_SPACE and f is not BASE64
]
SEPARATORS = ["", " ", "\n", "\n\n", "\n\n\n", "\t", "  \n "]

words = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs", "Cc", "Co", "Cn"), exclude_characters="\x00"
    ),
    max_size=40,
)


@st.composite
def texts(draw: st.DrawFn, big: bool = True) -> str:
    """A text of fragments and generated words joined by assorted whitespace (or nothing);
    now and then empty or whitespace only."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["", "   ", "\n\n \t\n", "\u3000\n"]))
    pool = HARD_FRAGMENTS if big else SMALL_FRAGMENTS
    parts = draw(st.lists(st.one_of(st.sampled_from(pool), words, st.just(PROSE)), max_size=8))
    out: list[str] = []
    for part in parts:
        out.append(part)
        out.append(draw(st.sampled_from(SEPARATORS)))
    return "".join(out)


@st.composite
def markdown_texts(draw: st.DrawFn) -> str:
    """Markdown: ATX and setext headings (some with no body), fences, lists, link definitions,
    optional front matter."""
    blocks: list[str] = []
    if draw(st.booleans()):
        blocks.append("---\ntitle: Generated doc\ntags: [a, b]\n---")
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["h1", "h2", "setext", "fence", "list", "para", "ref", "h3"]))
        body = draw(texts(big=draw(st.booleans())))
        whole = " ".join(body.split()) or "x"  # up to 50 KB: a heading holding a blob
        line = whole[:200]
        if kind == "h1":
            blocks.append(f"# {whole}")
        elif kind == "h2":
            blocks.append(f"## {line}")
        elif kind == "h3":
            blocks.append(f"### {line[:30]}")
        elif kind == "setext":
            blocks.append(f"{line[:40]}\n=====")
        elif kind == "fence":
            blocks.append(f"```js\n{body}\n```")
        elif kind == "list":
            blocks.append("\n".join(f"- {w}" for w in body.split()[:30]) or "- item")
        elif kind == "ref":
            blocks.append("[ref]: https://example.com/doc")
        else:
            blocks.append(body)
    return "\n\n".join(blocks)


@st.composite
def rst_texts(draw: st.DrawFn) -> str:
    """reStructuredText with overlined and underlined section titles."""
    blocks: list[str] = []
    for _ in range(draw(st.integers(0, 5))):
        body = draw(texts(big=draw(st.booleans())))
        whole = " ".join(body.split()) or "Title"  # up to 50 KB: a title holding a blob
        title = whole[:30]
        style = draw(st.sampled_from(["under", "over", "none", "long"]))
        if style == "long":
            blocks.append(f"{whole}\n{'=' * len(whole)}")
        elif style == "under":
            blocks.append(f"{title}\n{'=' * (len(title) + 2)}")
        elif style == "over":
            blocks.append(f"{'-' * (len(title) + 2)}\n{title}\n{'-' * (len(title) + 2)}")
        blocks.append(body)
    return "\n\n".join(blocks)


@st.composite
def html_pages(draw: st.DrawFn) -> tuple[str, str]:
    """(page, its visible text): headings, paragraphs, pre blocks, list items, and hidden
    script/style/nav content that is not visible text."""
    body: list[str] = []
    visible: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        tag = draw(st.sampled_from(["h1", "h2", "p", "pre", "li", "div", "script", "nav"]))
        text = draw(texts(big=draw(st.booleans())))
        if tag in ("script", "nav"):
            body.append(f"<{tag}>{html.escape(text)}</{tag}>")
            continue
        body.append(f"<{tag}>{html.escape(text)}</{tag}>")
        visible.append(text)
    page = (
        "<html><head><title>Generated</title><style>p { color: red }</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    return page, "\n\n".join(visible)


CLAUSE_HEADINGS = [
    "1. Definitions",
    "2. Grant of Licence",
    "2.1",
    "(a)",
    "(b)",
    "Article 5 Obligations",
    "§ 3",
    "PART II",
    "12. Termination",
    '"Licensor" shall mean the owner.',
]


@st.composite
def legal_texts(draw: st.DrawFn) -> str:
    """Clauses, heading-only clauses, underlined headings, rules and asterisk boxes."""
    blocks: list[str] = []
    if draw(st.booleans()):
        blocks.append("MASTER SERVICES AGREEMENT")
    for _ in range(draw(st.integers(0, 7))):
        kind = draw(
            st.sampled_from(["heading", "heading", "body", "underlined", "box", "rule", "long"])
        )
        body = draw(texts(big=draw(st.booleans())))
        if kind == "heading":
            blocks.append(draw(st.sampled_from(CLAUSE_HEADINGS)))
        elif kind == "long":  # a heading line holding a blob
            blocks.append(f"{draw(st.sampled_from(CLAUSE_HEADINGS))} {' '.join(body.split())}")
        elif kind == "underlined":
            blocks.append("Schedule of Fees\n================")
        elif kind == "box":
            inner = " ".join(body.split())[:30]
            blocks.append(f"{'*' * 40}\n*  {inner}  *\n{'*' * 40}")
        elif kind == "rule":
            blocks.append("-" * 20)
        else:
            blocks.append(body)
    return "\n\n".join(blocks)


def code_body(text: str) -> str:
    """Generated text made safe inside a string literal or comment of most languages."""
    return " ".join(text.replace("*/", "* /").replace('"', "'").replace("\\", "/").split())
