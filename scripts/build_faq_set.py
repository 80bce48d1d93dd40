"""Docs tuning set ``docs-faq``: the Debian FAQ's questions against its answers.

Source: ``debian-faq.en.txt.gz`` of the pinned ``debian-faq`` package (Debian GNU/Linux FAQ,
version 11.0; copyright Software in the Public Interest, modified copies allowed under the same
permission notice). Each numbered entry (``4.1. On what hardware ... run?``) is a question
and its answer: the question text is the query, the answer is the document (split into chunks
of at most ~300 words at paragraph boundaries, all relevant), the title is the chapter's title.
The question is not part of the document. Entries whose title is not a question (sub-entries
such as ``dpkg`` or ``Mailing lists``) keep their answer as a distractor but give no query.
Answers refer to other entries by their question ("see Section 12.1, "What other
documentation exists ...""), which makes them natural hard negatives. Naturally occurring
questions: no query is written or rephrased here.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

from beir_sets import BeirSet, chunk_paragraphs, collapse

FAQ_TXT = "usr/share/doc/debian/FAQ/debian-faq.en.txt.gz"
MAX_CHUNK_WORDS = 300
ENTRY = re.compile(r"^(?P<num>\d+(?:\.\d+)+)\. (?P<question>.+)$")
CHAPTER = re.compile(r"^Chapter (?P<num>\d+)\. (?P<title>.+)$")


@dataclass
class Entry:
    """One question and its answer."""

    num: str
    question: str
    chapter: str
    lines: list[str] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)

    def paragraphs(self) -> list[str]:
        """The answer's paragraphs, whitespace collapsed."""
        text = "\n".join(self.lines)
        return [collapse(p) for p in re.split(r"\n\s*\n", text) if p.strip()]


def parse_entries(text: str) -> list[Entry]:
    """Entries in document order (the table of contents before chapter 1 is skipped)."""
    lines = text.replace("\u00a0", " ").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Chapter 1. "))
    entries: list[Entry] = []
    chapter = ""
    i = start
    while i < len(lines):
        line = lines[i]
        if (match := CHAPTER.match(line)) is not None:
            chapter = match["title"].strip()
        elif (match := ENTRY.match(line)) is not None:
            question = [match["question"]]
            while i + 1 < len(lines) and lines[i + 1].strip() and not lines[i + 1][0].isspace():
                i += 1
                question.append(lines[i])  # a question wrapped onto the next line
            entries.append(Entry(match["num"], collapse(" ".join(question)), chapter))
        elif entries and (not line.strip() or line[0].isspace()):
            entries[-1].lines.append(line)
        i += 1
    return entries


def build_faq_set(package_root: Path) -> BeirSet:
    """Questions, and the chunks of their answers, from the unpacked debian-faq package."""
    text = gzip.decompress((package_root / FAQ_TXT).read_bytes()).decode("utf-8")
    beir = BeirSet()
    for entry in parse_entries(text):
        for group in chunk_paragraphs(entry.paragraphs(), MAX_CHUNK_WORDS):
            doc_id = f"f-d{len(beir.corpus) + 1:05d}"
            beir.corpus.append({"_id": doc_id, "title": entry.chapter, "text": "\n\n".join(group)})
            entry.chunks.append(doc_id)
        if not entry.chunks or "?" not in entry.question:
            continue  # sub-entries titled "dpkg", "Mailing lists" are headings, not questions
        qid = f"f-q{len(beir.queries) + 1:04d}"
        beir.queries.append({"_id": qid, "text": entry.question})
        beir.qrels.extend((qid, d) for d in entry.chunks)
    return beir
