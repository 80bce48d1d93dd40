"""BEIR layout, deterministic sampling, tune / held-out split and chunking for the tuning sets.

Stdlib only, shared by ``build_eval_sets.py`` and the per-source builders beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("tune", "heldout")


def stable_rank(key: str) -> str:
    """Return a version-independent sort key used for deterministic subsampling."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def split_of(query_id: str) -> str:
    """``tune`` when the first byte of SHA-256(query id) is even, else ``heldout``.

    The same rule as ``retrieval_eval.splits.split_of`` (a test keeps them equal); repeated
    here so that the build scripts stay standalone.
    """
    return "tune" if hashlib.sha256(query_id.encode("utf-8")).digest()[0] % 2 == 0 else "heldout"


def collapse(text: str) -> str:
    """Collapse all runs of whitespace to single spaces."""
    return " ".join(text.split())


def write_jsonl(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """Write ``rows`` as UTF-8 JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_qrels(path: Path, qrels: Iterable[tuple[str, str]]) -> None:
    """A BEIR qrels TSV (header, then one binary judgement per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, did in qrels:
            fh.write(f"{qid}\t{did}\t1\n")


def read_qrels(path: Path) -> list[tuple[str, str]]:
    """(query id, corpus id) pairs of a qrels TSV with header."""
    rows = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(r.split("\t")[0], r.split("\t")[1]) for r in rows if r.strip()]


def write_split_qrels(qrels_dir: Path) -> dict[str, int]:
    """Write ``tune.tsv`` and ``heldout.tsv`` beside ``test.tsv`` (all queries); query counts."""
    qrels = read_qrels(qrels_dir / "test.tsv")
    counts = {}
    for split in SPLITS:
        part = [(q, d) for q, d in qrels if split_of(q) == split]
        write_qrels(qrels_dir / f"{split}.tsv", part)
        counts[split] = len({q for q, _ in part})
    return counts


@dataclass
class BeirSet:
    """An in-memory BEIR dataset: corpus, queries and binary relevance judgements."""

    corpus: list[dict[str, str]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)
    qrels: list[tuple[str, str]] = field(default_factory=list)

    def write(self, out_dir: Path, *, corpus: bool = True) -> None:
        """Write the set to ``out_dir`` in BEIR layout, with the tune / held-out qrels."""
        if corpus:
            write_jsonl(out_dir / "corpus.jsonl", self.corpus)
        self.write_queries(out_dir)

    def write_queries(self, out_dir: Path) -> None:
        """``queries.jsonl`` and ``qrels/{test,tune,heldout}.tsv`` only."""
        write_jsonl(out_dir / "queries.jsonl", self.queries)
        write_qrels(out_dir / "qrels" / "test.tsv", self.qrels)
        write_split_qrels(out_dir / "qrels")


def split_long(paragraph: str, limit: int) -> list[str]:
    """Split a paragraph of more than ``limit`` words at sentence boundaries."""
    pieces: list[list[str]] = [[]]
    for sentence in re.split(r"(?<=[.;])\s+", paragraph):
        if pieces[-1] and len(" ".join([*pieces[-1], sentence]).split()) > limit:
            pieces.append([])
        pieces[-1].append(sentence)
    return [" ".join(p) for p in pieces]


def chunk_paragraphs(paragraphs: list[str], limit: int) -> list[list[str]]:
    """Paragraphs grouped into size-balanced chunks of at most about ``limit`` words."""
    paras = [piece for para in paragraphs for piece in split_long(para, limit)]
    total = sum(len(p.split()) for p in paras)
    if not total:
        return []
    target = total / math.ceil(total / limit)
    groups: list[list[str]] = [[]]
    size = 0
    for para in paras:
        words = len(para.split())
        if groups[-1] and (size + words > limit or size >= target):
            groups.append([])
            size = 0
        groups[-1].append(para)
        size += words
    return groups
