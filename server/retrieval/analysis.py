"""What the models read of a chunk or a query, shared by the read and the write side.

The indexer and the searcher must present the same text to the same model: the BM25 analyzer
reads ``title + text`` (plus a legal chunk's own citation as terms); the bi-encoder and the
cross-encoder read the text (with the title where the domain says so), NFKC-normalised like
every query; part vectors embed sentence groups.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from server.errors import InvalidRequestError
from server.retrieval.boundaries import split_sentences
from server.retrieval.sparse import SparseEncoder, normalize_text, section_reference_tokens
from server.retrieval.store import VectorStore
from server.settings import Domain, DomainSettings, Settings

logger = logging.getLogger(__name__)

MAX_PARTS = 16
"""Most part vectors per chunk: longer chunks get proportionally larger sentence groups."""
DEFAULT_PART_SENTENCES = 2
"""Group size for a collection that has part vectors while its domain setting is 0."""


def resolve_domain(settings: Settings, domain: str | Domain) -> tuple[Domain, DomainSettings]:
    """The validated domain and its settings; InvalidRequestError for an unknown name."""
    try:
        name = Domain(domain)
    except ValueError:
        valid = ", ".join(d.value for d in Domain)
        raise InvalidRequestError(f"unknown domain {domain!r}; expected one of: {valid}") from None
    return name, settings.domains[name]


def keyword_text(title: str, text: str, section_path: str = "") -> str:
    """What the BM25 analyzer reads of a chunk: its title line, then its text, then (a legal
    chunk) its own citation as terms (sparse.section_reference_tokens)."""
    own = " ".join(section_reference_tokens(section_path)) if section_path else ""
    body = f"{text}\n{own}" if own else text
    return f"{title}\n{body}" if title else body


def chunk_keyword_text(title: str, text: str, metadata: Mapping[str, Any]) -> str:
    """:func:`keyword_text` of a chunk with its metadata (its ``section_path``)."""
    section_path = metadata.get("section_path")
    return keyword_text(title, text, section_path if isinstance(section_path, str) else "")


def dense_text(settings: DomainSettings, title: str, text: str) -> str:
    """What the bi-encoder and cross-encoder read: NFKC-normalised like every query, so
    full-width letters, ligatures and decomposed accents meet the model's vocabulary."""
    return normalize_text(f"{title}\n{text}" if settings.title_in_dense and title else text)


def part_texts(text: str, sentences_per_part: int) -> list[str]:
    """A chunk's sentences in groups of ``sentences_per_part`` (at most MAX_PARTS groups).

    One group or none means the chunk is its own only part (its vector is reused).
    """
    sentences = split_sentences(text)
    size = max(sentences_per_part, -(-len(sentences) // MAX_PARTS), 1)
    groups = [" ".join(sentences[i : i + size]) for i in range(0, len(sentences), size)]
    return groups if len(groups) > 1 else []


class DomainAnalysis:
    """Per-domain BM25 analyzers (built once) and which collections carry part vectors."""

    def __init__(self, settings: Settings, store: VectorStore) -> None:
        self.settings = settings
        self.store = store
        self._encoders: dict[Domain, SparseEncoder] = {}
        self._part_collections: set[str] = set()
        self._warned_no_parts: set[str] = set()

    def sparse_encoder(self, domain: Domain) -> SparseEncoder:
        """The domain's BM25 analyzer."""
        encoder = self._encoders.get(domain)
        if encoder is None:
            encoder = SparseEncoder(self.settings.domains[domain].bm25)
            self._encoders[domain] = encoder
        return encoder

    def has_parts(self, collection: str) -> bool:
        """Whether the collection carries part vectors (cached once true)."""
        if collection in self._part_collections:
            return True
        if self.store.has_part_vectors(collection):
            self._part_collections.add(collection)
            return True
        return False

    def parts_in_queries(self, settings: DomainSettings) -> bool:
        """Whether searches blend part vectors: the domain asks for them and its collection
        has them (a collection made without them is searched by chunk vectors, said once)."""
        if settings.part_sentences <= 0:
            return False
        if self.has_parts(settings.collection):
            return True
        if settings.collection not in self._warned_no_parts:
            self._warned_no_parts.add(settings.collection)
            logger.warning(
                "collection %r was created without part vectors: searching it with chunk "
                "vectors only (delete it and re-ingest to use part_sentences)",
                settings.collection,
            )
        return False
