"""Legal tuning set ``legal-policy``: section-title queries over the Debian Policy Manual.

Source: ``policy.txt`` of the pinned ``debian-policy`` package (the plain-text rendering of the
manual, GPL-2+). Only the manual proper is used (chapters 1-12), not its appendices, the
upgrading checklist or the licence. Each numbered section's own text (up to its first
subsection) is a document, split into chunks of at most ~300 words at paragraph boundaries;
the heading words are removed and the section number is kept at the start, as in the licence
set. A query is a section's title; its relevant documents are the chunks of the section and of
all its subsections. Titles found more than once in the manual (``Definitions``,
``Introduction``, ``Example``) are prefixed with their parent section's title.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

from beir_sets import BeirSet, chunk_paragraphs, collapse

POLICY_TXT = "usr/share/doc/debian-policy/policy.txt.gz"
TITLE = "Debian Policy Manual"
FIRST_HEADING = "1. About this manual"
END_HEADING = "1. Introduction and scope of these appendices"
UNDERLINES = set("*=-~^")
MAX_CHUNK_WORDS = 300
MIN_QUERY_WORDS = 20
"""A section whose text and subsections hold fewer words gets no query."""
FOOTNOTE = re.compile(r"^\[\d+\] ")
HEADING = re.compile(r"^(?P<num>\d+(?:\.\d+)*)\. (?P<title>.+)$")


@dataclass
class Section:
    """One numbered section of the manual."""

    num: str
    title: str
    lines: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)

    @property
    def parent(self) -> str:
        """Number of the enclosing section ("" for a chapter)."""
        return self.num.rpartition(".")[0]

    def paragraphs(self) -> list[str]:
        """Paragraphs of the section's own text, whitespace collapsed (code blocks too).

        Footnotes (``[3] ...``) are dropped: the text rendering gathers a chapter's footnotes
        at the end of its last section, where they do not belong.
        """
        text = "\n".join(self.lines).strip("\n")
        paragraphs = [collapse(p) for p in re.split(r"\n\s*\n", text) if p.strip()]
        return [p for p in paragraphs if not FOOTNOTE.match(p)]


def parse_sections(text: str) -> list[Section]:
    """Numbered sections of the manual proper, in document order."""
    lines = text.split("\n")
    headings = [
        i
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and len(lines[i + 1]) == len(lines[i])
        and len(set(lines[i + 1])) == 1
        and lines[i + 1][0] in UNDERLINES
    ]
    start = next(i for i in headings if lines[i] == FIRST_HEADING)
    end = next(i for i in headings if lines[i] == END_HEADING)
    sections: list[Section] = []
    for i in headings:
        if not start <= i < end:
            continue
        match = HEADING.match(lines[i])
        if match is None:
            raise SystemExit(f"policy.txt line {i + 1}: unnumbered heading {lines[i]!r}")
        following = [h for h in headings if h > i]
        stop = min(following[0] if following else len(lines), end)
        sections.append(Section(match["num"], match["title"], lines[i + 2 : stop]))
    return sections


def build_policy_set(package_root: Path) -> BeirSet:
    """Documents and section-title queries from the unpacked debian-policy package."""
    text = gzip.decompress((package_root / POLICY_TXT).read_bytes()).decode("utf-8")
    sections = parse_sections(text)
    beir = BeirSet()
    for section in sections:
        for n, group in enumerate(chunk_paragraphs(section.paragraphs(), MAX_CHUNK_WORDS - 10)):
            prefix = f"{section.num}." + (" (continued)" if n else "")
            doc_id = f"p-d{len(beir.corpus) + 1:05d}"
            beir.corpus.append(
                {"_id": doc_id, "title": TITLE, "text": f"{prefix} " + "\n\n".join(group)}
            )
            section.chunks.append(doc_id)

    by_num = {s.num: s for s in sections}
    titles: dict[str, int] = {}
    for section in sections:
        titles[section.title.lower()] = titles.get(section.title.lower(), 0) + 1
    words = {d["_id"]: len(d["text"].split()) for d in beir.corpus}
    for section in sections:
        if not section.parent:  # chapter titles stand for a dozen sections: too broad a query
            continue
        family = [
            s for s in sections if s.num == section.num or s.num.startswith(section.num + ".")
        ]
        docs = [d for s in family for d in s.chunks]
        if sum(words[d] for d in docs) < MIN_QUERY_WORDS:
            continue
        query = section.title
        if titles[section.title.lower()] > 1:
            query = f"{by_num[section.parent].title}: {query}"
        qid = f"p-q{len(beir.queries) + 1:04d}"
        beir.queries.append({"_id": qid, "text": query})
        beir.qrels.extend((qid, d) for d in docs)
    return beir
