""":class:`StoreTuning` as qdrant-client collection parameters and search params.

The Qdrant Edge twin is edge_tuning.py; both lay a new collection out the same way.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import models

from server.retrieval.store import DENSE_VECTOR, PARTS_VECTOR, IndexKind
from server.retrieval.store_tuning import StoreTuning


def _quantization(tuning: StoreTuning, always_ram: bool) -> models.ScalarQuantization | None:
    if not tuning.quantized:
        return None
    return models.ScalarQuantization(
        scalar=models.ScalarQuantizationConfig(
            type=models.ScalarType.INT8, quantile=tuning.quantile, always_ram=always_ram
        )
    )


def vectors_config(
    tuning: StoreTuning, dense_dim: int, part_vectors: bool
) -> dict[str, models.VectorParams]:
    """The chunk vector and optionally the part multivector (float16, MaxSim)."""
    on_disk = tuning.vectors_on_disk or None
    vectors = {
        DENSE_VECTOR: models.VectorParams(
            size=dense_dim,
            distance=models.Distance.COSINE,
            on_disk=on_disk,
            # the int8 copies are what every HNSW walk reads: keep them in RAM
            quantization_config=_quantization(tuning, always_ram=True),
        )
    }
    if part_vectors:
        vectors[PARTS_VECTOR] = models.VectorParams(
            size=dense_dim,
            distance=models.Distance.COSINE,
            multivector_config=models.MultiVectorConfig(
                comparator=models.MultiVectorComparator.MAX_SIM
            ),
            datatype=models.Datatype.FLOAT16,
            on_disk=on_disk,
            # ~2.6 part vectors per chunk: in RAM their int8 copies would double the heap
            quantization_config=_quantization(tuning, always_ram=False),
        )
    return vectors


def hnsw_config(tuning: StoreTuning) -> models.HnswConfigDiff:
    """Graph degree and build beam; with ``tenant_graphs`` one graph per tenant, none global."""
    if tuning.tenant_graphs:
        return models.HnswConfigDiff(
            m=0, payload_m=tuning.hnsw_m, ef_construct=tuning.hnsw_ef_construct
        )
    return models.HnswConfigDiff(m=tuning.hnsw_m, ef_construct=tuning.hnsw_ef_construct)


def sparse_vector_params(tuning: StoreTuning) -> models.SparseVectorParams:
    """The BM25 vector: Qdrant applies the IDF; its inverted index on disk or in RAM."""
    index = models.SparseIndexParams(on_disk=True) if tuning.sparse_index_on_disk else None
    return models.SparseVectorParams(modifier=models.Modifier.IDF, index=index)


def optimizers_config(tuning: StoreTuning) -> models.OptimizersConfigDiff:
    return models.OptimizersConfigDiff(max_segment_size=tuning.max_segment_mb * 1024)


def index_schema(tuning: StoreTuning, kind: IndexKind) -> Any:
    """Payload index schema of one field kind (the tenant field is the tenant index; with
    ``tenant_graphs`` only it grows HNSW graphs)."""
    if kind == "tenant":  # in RAM whatever the setting, as edge_tuning.index_params says
        return models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
    on_disk = tuning.payload_indexes_on_disk or None
    graph = False if tuning.tenant_graphs else None
    if kind == "integer":
        if on_disk is None and graph is None:
            return models.PayloadSchemaType.INTEGER
        return models.IntegerIndexParams(
            type=models.IntegerIndexType.INTEGER,
            lookup=True,
            range=True,
            on_disk=on_disk,
            enable_hnsw=graph,
        )
    if on_disk is None and graph is None:
        return models.PayloadSchemaType.KEYWORD
    return models.KeywordIndexParams(
        type=models.KeywordIndexType.KEYWORD, on_disk=on_disk, enable_hnsw=graph
    )


def quantization_params(tuning: StoreTuning, *, exact: bool) -> models.QuantizationSearchParams:
    """How a dense search uses the int8 copies: rescored and oversampled, or (``exact``) not at
    all. Ignored by a collection without quantization."""
    if exact:
        return models.QuantizationSearchParams(ignore=True)
    return models.QuantizationSearchParams(rescore=tuning.rescore, oversampling=tuning.oversampling)
