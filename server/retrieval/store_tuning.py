"""How a new collection lays out its vectors and indexes, and how dense searches use them.

One setting block (``Settings.store``, env ``RETRIEVAL_STORE__*``) read by both stores: the
embedded one (edge_store.py) and the Qdrant server one (qdrant_store.py), each converting it to
its own types. The defaults were chosen by `retrieval-mcp bench --chunks 100000,1000000` (README,
"Benchmark"): original vectors memory-mapped from disk, an int8 copy in RAM that the HNSW walk
scores, and the top ``oversampling * limit`` rescored with the original vectors, so the returned
scores are the exact cosines.

The layout applies to collections created with it; an existing collection keeps the layout it
was created with and opens unchanged (the search parameters below are ignored by a collection
without quantization). Re-ingest into a new store to change it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class StoreTuning(BaseModel):
    """Collection layout (for new collections) and quantized-search parameters.

    ``vectors_on_disk``: the original float vectors (chunk and part vectors) are memory-mapped
    from disk rather than held in RAM; with quantization only the rescored few are read.
    ``quantization``: ``int8`` scalar quantization of the dense and part vectors (4x smaller than
    float32, kept in RAM), or ``none``. ``quantile``: share of values the int8 range covers.
    ``rescore`` / ``oversampling``: a quantized search fetches ``oversampling * limit`` candidates
    and re-scores them with the original vectors (``rescore``). ``hnsw_m`` / ``hnsw_ef_construct``:
    graph degree and build beam (Qdrant's defaults 16 / 100). ``payload_indexes_on_disk``: keyword
    and integer payload indexes memory-mapped rather than in RAM (the tenant index stays in
    RAM: every search filters by it). ``sparse_index_on_disk``: the BM25
    inverted index memory-mapped rather than in RAM. ``tenant_graphs``: Qdrant's multitenancy
    layout (its "Multitenancy" guide): no collection-wide HNSW graph (``m`` 0); each tenant's
    points get their own graph of degree ``hnsw_m`` (``payload_m``) from the tenant index, and
    the other payload indexes serve filters only (``enable_hnsw`` false). Every search here is
    tenant-filtered, so a dense search walks only its tenant's graph; a tenant too small for a
    graph (below Qdrant's full-scan threshold) is searched exactly. ``tenant_term_spaces``: each
    tenant's BM25 terms stored at indices of its own (term_space.py), so a tenant's BM25 search
    and IDF walk its own posting lists; off, all tenants share them (a client querying the
    collection with plain Qdrant BM25 indices needs that). ``max_segment_mb``: the
    optimizer merges segments up to this size of their largest vector storage (~260k chunks with
    part vectors), so a million chunks search four segments, and a builder that optimizes every
    :meth:`segment_points` points never rebuilds a graph it has built.
    """

    vectors_on_disk: bool = True
    quantization: Literal["int8", "none"] = "int8"
    quantile: float = Field(default=0.99, gt=0.5, le=1.0)
    rescore: bool = True
    oversampling: float = Field(default=2.0, ge=1.0, le=16.0)
    hnsw_m: int = Field(default=16, ge=4, le=128)
    hnsw_ef_construct: int = Field(default=100, ge=4, le=2000)
    payload_indexes_on_disk: bool = True
    sparse_index_on_disk: bool = True
    tenant_graphs: bool = True
    tenant_term_spaces: bool = True
    max_segment_mb: int = Field(default=512, ge=1)

    @property
    def quantized(self) -> bool:
        """True when new collections get int8 copies of their dense vectors."""
        return self.quantization == "int8"

    def segment_points(self, dense_dim: int, part_vectors: float = 0.0) -> int:
        """About how many points fill a segment of :attr:`max_segment_mb`. Qdrant sizes a
        segment by its largest vector storage: the float32 chunk vectors, or the float16 part
        vectors (``part_vectors`` per point on average), whichever is larger."""
        per_point = max(4 * dense_dim, 2 * dense_dim * part_vectors)
        return max(1, int(self.max_segment_mb * 1024 * 1024 / per_point))
