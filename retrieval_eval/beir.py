"""Reading datasets in BEIR format: corpus.jsonl, queries.jsonl and a qrels TSV with header."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from server.errors import InvalidRequestError


@dataclass(frozen=True)
class BeirDocument:
    """One corpus entry."""

    doc_id: str
    title: str
    text: str


@dataclass
class BeirDataset:
    """A corpus, the queries that have judgements, and the judgements."""

    name: str
    corpus: list[BeirDocument]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def fingerprint(self) -> str:
        """Stable hash of the corpus, to tell whether a stored index holds the same corpus."""
        digest = hashlib.sha256()
        for doc in self.corpus:
            digest.update(f"{doc.doc_id}\x1f{doc.title}\x1f{doc.text}\x1e".encode())
        return digest.hexdigest()[:16]


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidRequestError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    return rows


def _default_qrels(directory: Path) -> Path:
    for candidate in ("qrels/test.tsv", "qrels-test.tsv", "qrels/train.tsv", "qrels-train.tsv"):
        if (directory / candidate).exists():
            return directory / candidate
    raise InvalidRequestError(f"no qrels file found in {directory}; pass --qrels FILE")


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {doc id: grade}; the first row is a header (query-id, corpus-id, score)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader, None)
        for row in reader:
            if len(row) < 3:
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return qrels


def load_corpus(path: Path) -> list[BeirDocument]:
    """Documents of a corpus.jsonl (``_id``, optional ``title``, ``text``)."""
    path = Path(path)
    if not path.exists():
        raise InvalidRequestError(f"{path} not found")
    documents = []
    for row in _read_jsonl(path):
        if "_id" not in row:
            raise InvalidRequestError(f"{path}: a record has no '_id'")
        documents.append(
            BeirDocument(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""))
        )
    return documents


def load_beir(
    directory: Path, queries_file: Path | None = None, qrels_file: Path | None = None
) -> BeirDataset:
    """Load a BEIR dataset; only queries that have qrels are kept."""
    directory = Path(directory)
    corpus_path = directory / "corpus.jsonl"
    if not corpus_path.exists():
        raise InvalidRequestError(f"{corpus_path} not found: not a BEIR dataset directory")
    queries_path = queries_file or directory / "queries.jsonl"
    if not queries_path.exists():
        raise InvalidRequestError(f"{queries_path} not found")
    qrels = read_qrels(qrels_file or _default_qrels(directory))
    corpus = load_corpus(corpus_path)
    queries = {
        str(r["_id"]): str(r["text"]) for r in _read_jsonl(queries_path) if str(r["_id"]) in qrels
    }
    qrels = {q: judged for q, judged in qrels.items() if q in queries}
    if not queries:
        raise InvalidRequestError("no query in the queries file has judgements in the qrels file")
    return BeirDataset(directory.name, corpus, queries, qrels)
