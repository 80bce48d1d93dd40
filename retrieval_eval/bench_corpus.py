"""The benchmark corpus: real passages embedded once, streamed out as N synthetic chunks.

``prepare_corpus`` packs up to ``unique`` distinct passages from a BEIR corpus (SciFact by
default, else the bundled eval sets) to the model's window, embeds them, and saves texts,
vectors and query sentences to a directory. ``iter_point_batches`` then generates any number
of chunks from that file in bounded batches: chunk i reuses passage ``i mod unique`` with a
small jitter on its dense vector (and its part vectors), and (past the first round) a
recombined text for BM25, so a 100k-chunk store takes minutes instead of the hour that
embedding 100k passages costs on two CPU cores, and the builder's memory does not grow with N.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from retrieval_eval.beir import load_corpus
from retrieval_eval.eval_sets import CODE_CORPUS, ensure_legal_corpus
from retrieval_eval.product import (
    DenseEmbedder,
    SparseEncoder,
    StoredPoint,
    pack_passages,
    point_id,
    point_payload,
    split_sentences,
)
from server.retrieval.types import Chunk

TENANTS = 8
TEXTS_FILE = "passages.json"
VECTORS_FILE = "vectors.npy"
QUERIES_FILE = "queries.json"
PARTS_FILE = "part_vectors.npz"
JITTER = 0.01
"""Standard deviation of the Gaussian noise added to a reused dense vector (before norming)."""


@dataclass(frozen=True)
class BenchCorpus:
    """Distinct passages with their embeddings, and query sentences."""

    passages: list[str]
    vectors: NDArray[np.float32]
    queries: list[str]
    part_vectors: NDArray[np.float32] | None = None
    """All passages' part vectors, concatenated (passage i owns rows part_offsets[i:i+2])."""
    part_offsets: NDArray[np.int64] | None = None

    @classmethod
    def load(cls, directory: Path) -> BenchCorpus:
        """Read a corpus written by ``prepare_corpus``."""
        parts = np.load(directory / PARTS_FILE) if (directory / PARTS_FILE).exists() else None
        return cls(
            passages=json.loads((directory / TEXTS_FILE).read_text()),
            vectors=np.load(directory / VECTORS_FILE),
            queries=json.loads((directory / QUERIES_FILE).read_text()),
            part_vectors=None if parts is None else parts["vectors"],
            part_offsets=None if parts is None else parts["offsets"],
        )

    def save(self, directory: Path) -> None:
        """Write the corpus files into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / TEXTS_FILE).write_text(json.dumps(self.passages))
        np.save(directory / VECTORS_FILE, self.vectors)
        (directory / QUERIES_FILE).write_text(json.dumps(self.queries))
        if self.part_vectors is not None and self.part_offsets is not None:
            np.savez(directory / PARTS_FILE, vectors=self.part_vectors, offsets=self.part_offsets)

    @property
    def parts_per_point(self) -> float:
        """Mean number of part vectors per passage (0 without part vectors)."""
        if self.part_offsets is None or len(self.passages) == 0:
            return 0.0
        return float(self.part_offsets[-1]) / len(self.passages)

    def parts_of(self, row: int, dense: NDArray[np.float32]) -> NDArray[np.float32]:
        """Part vectors of passage ``row`` (just ``dense`` when it has none of its own)."""
        if self.part_vectors is None or self.part_offsets is None:
            return dense[None, :]
        begin, end = int(self.part_offsets[row]), int(self.part_offsets[row + 1])
        return self.part_vectors[begin:end] if end > begin else dense[None, :]


def source_texts(dataset: Path) -> tuple[list[str], list[str]]:
    """Passages and query-like sentences from a BEIR corpus (or the bundled eval sets)."""
    corpus_file = dataset / "corpus.jsonl"
    files = [corpus_file] if corpus_file.exists() else [ensure_legal_corpus(), CODE_CORPUS]
    docs = [d for f in files for d in load_corpus(f)]
    passages = [f"{d.title}\n{d.text}".strip() for d in docs]
    sentences = [
        s for d in docs[:3000] for s in split_sentences(d.text) if 6 <= len(s.split()) <= 30
    ]
    return passages, sentences


def pick_passages(
    dataset: Path, embedder: DenseEmbedder, *, unique: int, queries: int
) -> tuple[list[str], list[str]]:
    """Up to ``unique`` passages packed to the model's window, and ``queries`` sentences."""
    passages, sentences = source_texts(dataset)
    budget = embedder.max_tokens - 2
    packed: list[str] = []
    for text in passages:
        packed.extend(pack_passages(text, budget, embedder.count_tokens))
        if len(packed) >= unique:
            break
    query_texts = random.Random(7).sample(sentences, min(queries, len(sentences)))
    return packed[:unique], query_texts


def chunk_text(passages: list[str], i: int) -> str:
    """Text of synthetic chunk ``i`` (deterministic): a passage, later with a recombined tail."""
    n = len(passages)
    if i < n:
        return passages[i]
    # The tail depends on the round (i // n) as well as i: with i alone, chunks i and i + n got
    # the same text, so every tenant held ~12 exact copies per passage at 100k and the bench
    # measured the collapse of copies (a second, deeper query) instead of the path real folders
    # take.
    other = ((i // n) * 2654435761 + i * 40503 + 97) % n
    return f"{passages[i % n]} {passages[other][:200]}"


def chunk_tenant(i: int) -> str:
    """Tenant of synthetic chunk ``i`` (round robin over ``TENANTS``)."""
    return f"t{i % TENANTS}"


def synthetic_chunk(passages: list[str], i: int) -> Chunk:
    """Chunk ``i`` with the metadata ingestion writes for a docs file."""
    source = f"/bench/corpus/doc-{i:07d}.txt"
    text = chunk_text(passages, i)
    return Chunk(
        tenant=chunk_tenant(i),
        doc_id=source,
        source=source,
        chunk_index=0,
        text=text,
        metadata={
            "content_hash": hashlib.sha256(text.encode()).hexdigest(),
            "chunk_count": 1,
            "doc_type": "text",
            "rel_path": f"corpus/doc-{i:07d}.txt",
            "ingested_at": "2026-01-01T00:00:00+00:00",
        },
    )


def average_length(passages: list[str], size: int, encoder: SparseEncoder) -> float:
    """Mean BM25 length of the first ``size`` synthetic chunks (one streaming pass)."""
    total = sum(encoder.count_tokens(chunk_text(passages, i)) for i in range(size))
    return total / size if size else 1.0


def iter_point_batches(
    corpus: BenchCorpus,
    size: int,
    encoder: SparseEncoder,
    avg_len: float,
    *,
    domain: str = "docs",
    batch_size: int = 1000,
    with_parts: bool = False,
) -> Iterator[tuple[list[StoredPoint], int]]:
    """Synthetic points in batches (with the batch's summed BM25 length); memory stays bounded.

    ``with_parts``: each point also carries its passage's part vectors, jittered like ``dense``.
    """
    n = len(corpus.passages)
    for begin in range(0, size, batch_size):
        end = min(size, begin + batch_size)
        rows = np.arange(begin, end) % n
        noise = np.random.default_rng(begin).normal(
            0.0, JITTER, (end - begin, corpus.vectors.shape[1])
        )
        dense = corpus.vectors[rows] + noise.astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        batch: list[StoredPoint] = []
        total = 0
        for offset, i in enumerate(range(begin, end)):
            chunk = synthetic_chunk(corpus.passages, i)
            length = encoder.count_tokens(chunk.text)
            total += length
            parts = None
            if with_parts:
                own = corpus.parts_of(int(rows[offset]), corpus.vectors[rows[offset]])
                jittered = own + noise[offset].astype(np.float32)
                jittered /= np.linalg.norm(jittered, axis=1, keepdims=True)
                parts = jittered.tolist()
            batch.append(
                StoredPoint(
                    id=point_id(chunk.tenant, domain, chunk.source, chunk.chunk_index),
                    dense=dense[offset].tolist(),
                    sparse=encoder.encode_document(chunk.text, avg_len),
                    payload=point_payload(chunk, length),
                    parts=parts,
                )
            )
        yield batch, total
