""":class:`StoreTuning` as Qdrant Edge (``qdrant_edge``) collection config and search params.

The qdrant-client twin is qdrant_tuning.py. Memory tiers (Qdrant's "memory tiers"): ``Cold`` is
memory-mapped and read on first access, ``Cached`` memory-mapped and pre-warmed at load,
``Pinned`` on the heap.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as qe

from server.retrieval.store import DENSE_VECTOR, PARTS_VECTOR, SPARSE_VECTOR, IndexKind
from server.retrieval.store_tuning import StoreTuning

FULL_SCAN_THRESHOLD_KB = 10_000
"""Qdrant's default: below this many KB of vectors matching a filter, search by full scan."""


def _quantization(tuning: StoreTuning, memory: qe.Memory) -> qe.ScalarQuantizationConfig | None:
    if not tuning.quantized:
        return None
    return qe.ScalarQuantizationConfig(
        type=qe.ScalarType.Int8, quantile=tuning.quantile, memory=memory
    )


def _vector_memory(tuning: StoreTuning) -> qe.Memory | None:
    return qe.Memory.Cold if tuning.vectors_on_disk else None


def collection_config(tuning: StoreTuning, dense_dim: int, part_vectors: bool) -> qe.EdgeConfig:
    """A new collection's config: the chunk vector, optionally the part multivector (float16,
    MaxSim), and the BM25 sparse vector with IDF."""
    vectors = {
        DENSE_VECTOR: qe.EdgeVectorParams(
            size=dense_dim,
            distance=qe.Distance.Cosine,
            memory=_vector_memory(tuning),
            # the int8 copies are what every HNSW walk reads: keep them on the heap
            quantization_config=_quantization(tuning, qe.Memory.Pinned),
        )
    }
    if part_vectors:
        vectors[PARTS_VECTOR] = qe.EdgeVectorParams(
            size=dense_dim,
            distance=qe.Distance.Cosine,
            multivector_config=qe.MultiVectorConfig(comparator=qe.MultiVectorComparator.MaxSim),
            datatype=qe.VectorStorageDatatype.Float16,
            memory=_vector_memory(tuning),
            # ~2.6 part vectors per chunk: their int8 copies would double the heap; memory-mapped,
            # only the pages the part searches touch are read
            quantization_config=_quantization(tuning, qe.Memory.Cold),
        )
    sparse_memory = qe.Memory.Cold if tuning.sparse_index_on_disk else None
    return qe.EdgeConfig(
        vectors=vectors,
        sparse_vectors={
            SPARSE_VECTOR: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf, memory=sparse_memory)
        },
        hnsw_config=qe.HnswIndexConfig(
            # per-tenant graphs: no collection-wide graph, one of degree hnsw_m per tenant
            m=0 if tuning.tenant_graphs else tuning.hnsw_m,
            payload_m=tuning.hnsw_m if tuning.tenant_graphs else None,
            ef_construct=tuning.hnsw_ef_construct,
            full_scan_threshold=FULL_SCAN_THRESHOLD_KB,
        ),
        optimizers=qe.EdgeOptimizersConfig(max_segment_size=tuning.max_segment_mb * 1024),
    )


def index_params(tuning: StoreTuning, kind: IndexKind) -> Any:
    """Payload index parameters of one field kind (the tenant field is the tenant index; with
    :attr:`StoreTuning.tenant_graphs` only it grows HNSW graphs)."""
    if kind == "tenant":
        # in RAM whatever the setting: every search filters by it, and it is small (~25 MB at
        # 1M chunks); memory-mapped, it cost BM25 at 1M ~20% of store time (README, Benchmark)
        return qe.KeywordIndexParams(is_tenant=True)
    memory = qe.Memory.Cold if tuning.payload_indexes_on_disk else None
    graph = False if tuning.tenant_graphs else None
    if kind == "integer":
        if memory is None and graph is None:
            return qe.PayloadSchemaType.Integer
        return qe.IntegerIndexParams(lookup=True, range=True, memory=memory, enable_hnsw=graph)
    if memory is None and graph is None:
        return qe.PayloadSchemaType.Keyword
    return qe.KeywordIndexParams(memory=memory, enable_hnsw=graph)


def quantization_params(tuning: StoreTuning, *, exact: bool) -> qe.QuantizationSearchParams:
    """How a dense search uses the int8 copies: rescored and oversampled, or (``exact``) not at
    all. Ignored by a collection without quantization."""
    if exact:
        return qe.QuantizationSearchParams(ignore=True)
    return qe.QuantizationSearchParams(rescore=tuning.rescore, oversampling=tuning.oversampling)
