"""The tuning sets: several per domain, each of one query style from one source.

Most live under ``datasets/eval/`` (see its README). Corpora whose sources forbid
redistributing modified copies (FSF licence texts, the Debian Policy Manual and FAQ, the Go
sources from Debian are treated alike) are not committed: the repository keeps queries and
qrels and ``scripts/build_eval_sets.py`` rebuilds the corpus byte-identically on first use, from
``/usr/share/common-licenses`` or from pinned Debian packages it downloads with ``apt-get``.
SciFact is read in place from ``shared/datasets/scifact`` (non-commercial licence: never
copied into the repository).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval_eval.beir import BeirDataset, BeirDocument, load_beir, load_corpus
from server.errors import InvalidRequestError, RetrievalError
from server.settings import Bm25Settings, Domain

REPO_ROOT = Path(__file__).resolve().parents[1]
EVAL_SETS = REPO_ROOT / "datasets" / "eval"
LEGAL_SET = EVAL_SETS / "legal"
LEGAL_CORPUS = LEGAL_SET / "corpus.jsonl"
CODE_CORPUS = EVAL_SETS / "code" / "corpus.jsonl"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_eval_sets.py"
SCIFACT = REPO_ROOT.parent / "shared" / "datasets" / "scifact"


@dataclass(frozen=True)
class TuningSet:
    """One tuning set: where it lives, what its queries look like, how its corpus is made."""

    name: str
    domain: Domain
    directory: Path
    style: str
    """The query style, for reports (e.g. "section-title queries")."""
    build: str | None = None
    """``scripts/build_eval_sets.py --sets`` name that builds the corpus when it is missing
    (None: the corpus is committed or read in place)."""
    queries_file: str | None = None
    qrels_file: str | None = None
    """Relative to ``directory``; None: the BEIR defaults (queries.jsonl, qrels/test.tsv)."""
    derive: Literal["rare-words", "rare-common", "definitions"] | None = None
    """Queries and qrels derived from the corpus by rule at load time instead of read
    (:func:`rare_word_queries`, :func:`rare_common_queries`); nothing derived is stored."""

    @property
    def corpus(self) -> Path:
        """The corpus file."""
        return self.directory / "corpus.jsonl"

    def load(self) -> BeirDataset:
        """The dataset (all queries), its corpus built first when it is missing."""
        if self.build is not None:
            build_corpus(self.build, self.corpus)
        if self.derive is not None:
            corpus = load_corpus(self.corpus)
            queries, qrels = _DERIVE[self.derive](corpus)
            return BeirDataset(self.name, corpus, queries, qrels)
        dataset = load_beir(
            self.directory,
            self.directory / self.queries_file if self.queries_file else None,
            self.directory / self.qrels_file if self.qrels_file else None,
        )
        dataset.name = self.name
        return dataset


_DERIVED_FROM: tuple[tuple[str, Domain, Path, str | None], ...] = (
    ("licences", Domain.LEGAL, LEGAL_SET, "legal"),
    ("debian-policy", Domain.LEGAL, EVAL_SETS / "legal-policy", "legal-policy"),
    ("python-code", Domain.CODE, EVAL_SETS / "code", None),
    ("go-code", Domain.CODE, EVAL_SETS / "code-go", "code-go"),
    ("scifact", Domain.DOCS, SCIFACT, None),
    ("debian-faq", Domain.DOCS, EVAL_SETS / "docs-faq", "docs-faq"),
    ("python-index", Domain.DOCS, EVAL_SETS / "docs-pyindex", "docs-pyindex"),
)
"""The corpora the derived sets (rare words; a rare and a common word) are derived from."""
_DERIVATIONS: tuple[tuple[Literal["rare-words", "rare-common", "definitions"], str, str], ...] = (
    ("rare-words", "-rare", "rare-word lookups (one word found in one document; derived)"),
    ("rare-common", "-rare-common", "a rare word and a common one of its document (derived)"),
)
"""How each derived set is made: (rule, name suffix, query style)."""
_CODE_DERIVATIONS: tuple[tuple[Literal["definitions"], str, str], ...] = (
    (
        "definitions",
        "-definitions",
        "a function's name, where other functions call it (derived)",
    ),
)
"""Derived from the code corpora only (their documents are named definitions)."""

TUNING_SETS: tuple[TuningSet, ...] = (
    TuningSet("licences", Domain.LEGAL, LEGAL_SET, "clause headings and citations", build="legal"),
    TuningSet(
        "debian-policy",
        Domain.LEGAL,
        EVAL_SETS / "legal-policy",
        "section-title queries",
        build="legal-policy",
    ),
    TuningSet("python-docstrings", Domain.CODE, EVAL_SETS / "code", "docstring summaries"),
    TuningSet(
        "go-howto",
        Domain.CODE,
        EVAL_SETS / "code-go",
        '"how do I" questions (templated from Go doc comments)',
        build="code-go",
        queries_file="howto/queries.jsonl",
        qrels_file="howto/qrels/test.tsv",
    ),
    TuningSet(
        "go-usage",
        Domain.CODE,
        EVAL_SETS / "code-go",
        "identifier / usage queries (calls from Go examples)",
        build="code-go",
        queries_file="usage/queries.jsonl",
        qrels_file="usage/qrels/test.tsv",
    ),
    TuningSet(
        "scifact",
        Domain.DOCS,
        SCIFACT,
        "claims (train qrels)",
        queries_file="queries.jsonl",
        qrels_file="qrels-train.tsv",
    ),
    TuningSet("debian-faq", Domain.DOCS, EVAL_SETS / "docs-faq", "FAQ questions", build="docs-faq"),
    TuningSet(
        "python-index",
        Domain.DOCS,
        EVAL_SETS / "docs-pyindex",
        "index-term keyword lookups",
        build="docs-pyindex",
    ),
    *(
        TuningSet(f"{name}{suffix}", domain, directory, style, build=build, derive=derive)
        for derive, suffix, style in _DERIVATIONS
        for name, domain, directory, build in _DERIVED_FROM
    ),
    *(
        TuningSet(f"{name}{suffix}", domain, directory, style, build=build, derive=derive)
        for derive, suffix, style in _CODE_DERIVATIONS
        for name, domain, directory, build in _DERIVED_FROM
        if domain is Domain.CODE
    ),
)


RARE_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{4,}")
"""A rare-word query's candidates: words of five or more characters, starting with a letter."""


def rare_word_queries(
    corpus: list[BeirDocument], count: int = 200
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Up to ``count`` one-word queries, each a word found in one document of ``corpus`` only
    (compared case-folded; the query is the word as written there), that document its one
    relevant answer; at most one query per document. Words are taken in the order of SHA-256 of
    their case-folded form, so the choice depends on the corpus alone, never on results.

    The style a user types to find the one passage that names something (``pickle``, an
    identifier, a gene): BM25 finds it, the dense model mostly does not, and its BM25 list holds
    few chunks, which is where DBSF treats a match as an average hit.
    """
    first_form: dict[str, tuple[str, str]] = {}
    documents: Counter[str] = Counter()
    for doc in corpus:
        seen: set[str] = set()
        for match in RARE_WORD.finditer(f"{doc.title}\n{doc.text}"):
            key = match.group().casefold()
            if key not in seen:
                seen.add(key)
                first_form.setdefault(key, (match.group(), doc.doc_id))
        documents.update(seen)
    unique = sorted(
        (k for k, n in documents.items() if n == 1),
        key=lambda k: hashlib.sha256(k.encode()).hexdigest(),
    )
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    used: set[str] = set()
    for key in unique:
        word, doc_id = first_form[key]
        if doc_id in used:
            continue
        used.add(doc_id)
        queries[f"rare:{key}"] = word
        qrels[f"rare:{key}"] = {doc_id: 1}
        if len(queries) == count:
            break
    return queries, qrels


COMMON_SHARE = (0.05, 0.5)
"""A rare-common query's common word: in at least 5 % and at most half of the documents."""


def rare_common_queries(
    corpus: list[BeirDocument], count: int = 200
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Up to ``count`` two-word queries, each a rare word (as :func:`rare_word_queries` picks
    it) followed by a common word of the same document (one found in 5-50 % of the documents,
    :data:`COMMON_SHARE`, and in two at least, and no English stopword of the BM25 analyzer;
    the first in SHA-256 order of the pair), that document the one relevant answer. A document
    without such a word gives no query.

    The style of a user who remembers one distinctive word and the topic (``postscript
    documentation``): the common word fills the BM25 list, so a zero-filled DBSF no longer
    sees it short, and the dense model ranks the one document holding the rare word low.
    """
    words: dict[str, set[str]] = {}
    documents: Counter[str] = Counter()
    for doc in corpus:
        seen = {m.group().casefold() for m in RARE_WORD.finditer(f"{doc.title}\n{doc.text}")}
        words[doc.doc_id] = seen
        documents.update(seen)
    low, high = max(2.0, COMMON_SHARE[0] * len(corpus)), COMMON_SHARE[1] * len(corpus)
    from retrieval_eval.product import SparseEncoder  # the product, through its adapter

    # English stopwords are no topic word ('these', 'which'): the BM25 analyzer drops them
    keyword = SparseEncoder(Bm25Settings())
    topical = {
        w for w, n in documents.items() if low <= n <= high and keyword.encode_query(w).indices
    }
    rare, rare_qrels = rare_word_queries(corpus, count=len(corpus))
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for query_id, word in rare.items():
        [doc_id] = rare_qrels[query_id]
        key = word.casefold()
        common = sorted(
            words[doc_id] & topical,
            key=lambda w: hashlib.sha256(f"{key} {w}".encode()).hexdigest(),
        )
        if not common:
            continue
        queries[f"rare-common:{key}"] = f"{word} {common[0]}"
        qrels[f"rare-common:{key}"] = {doc_id: 1}
        if len(queries) == count:
            break
    return queries, qrels


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def definition_queries(
    corpus: list[BeirDocument], count: int = 200
) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Up to ``count`` one-identifier queries, each the name of a function or method that one
    document of ``corpus`` defines (the last dotted part of its title after ``:``, e.g.
    ``bufio/bufio.go:NewReaderSize``; five characters or more, defined by no other document)
    and that the text of at least one other document uses, the defining document the one
    relevant answer. Names are taken in SHA-256 order, so the choice depends on the corpus
    alone, never on results.

    The style of a developer who types a function's name to read its definition: every caller
    holds the name too, often more times and in a shorter text, so BM25 alone may rank a caller
    first.
    """
    defined: dict[str, list[str]] = {}
    for doc in corpus:
        _, sep, symbol = doc.title.rpartition(":")
        name = symbol.rsplit(".", 1)[-1]
        if sep and len(name) >= 5 and IDENTIFIER.fullmatch(name):
            defined.setdefault(name, []).append(doc.doc_id)
    unique = {name: ids[0] for name, ids in defined.items() if len(ids) == 1}
    used: Counter[str] = Counter()
    for doc in corpus:
        for word in set(IDENTIFIER.findall(doc.text)) & unique.keys():
            if unique[word] != doc.doc_id:
                used[word] += 1
    names = sorted(used, key=lambda n: hashlib.sha256(n.encode()).hexdigest())[:count]
    queries = {f"def:{name}": name for name in names}
    qrels = {f"def:{name}": {unique[name]: 1} for name in names}
    return queries, qrels


_DERIVE = {
    "rare-words": rare_word_queries,
    "rare-common": rare_common_queries,
    "definitions": definition_queries,
}
"""The rule behind each ``TuningSet.derive``."""


def tuning_sets(domain: str | Domain, names: list[str] | None = None) -> list[TuningSet]:
    """The domain's tuning sets (only ``names``, in that order, when given).

    Raises InvalidRequestError for an unknown domain or set name.
    """
    try:
        wanted = Domain(domain)
    except ValueError:
        raise InvalidRequestError(f"unknown domain {domain!r}") from None
    sets = [s for s in TUNING_SETS if s.domain == wanted]
    if not names:
        return sets
    by_name = {s.name: s for s in sets}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InvalidRequestError(
            f"unknown {wanted.value} set(s) {', '.join(unknown)}; "
            f"expected some of: {', '.join(by_name)}"
        )
    return [by_name[n] for n in names]


def build_corpus(build: str, corpus: Path) -> Path:
    """``corpus``, running ``scripts/build_eval_sets.py --sets build`` first when it is missing."""
    if corpus.exists():
        return corpus
    if not BUILD_SCRIPT.exists():  # an installed retrieval_eval: sets and scripts stay in git
        raise RetrievalError(
            f"{corpus} is missing and {BUILD_SCRIPT} is not here: the tuning sets and their "
            "build scripts come with a source checkout of retrieval-mcp, not with the package"
        )
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--sets", build, "--out", str(EVAL_SETS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not corpus.exists():
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RetrievalError(
            f"cannot build {corpus} ({reason}); run `python3 scripts/build_eval_sets.py "
            f"--sets {build}` (see datasets/eval/README.md for what it needs)"
        )
    return corpus


def ensure_legal_corpus() -> Path:
    """Path of the licence tuning corpus, building it first when it is missing."""
    return build_corpus("legal", LEGAL_CORPUS)


def prepare_dataset(directory: Path) -> Path:
    """``directory``, its corpus built first when it is a tuning set with a local corpus."""
    for tuning_set in TUNING_SETS:
        if tuning_set.build and directory.resolve() == tuning_set.directory.resolve():
            build_corpus(tuning_set.build, tuning_set.corpus)
    return directory
