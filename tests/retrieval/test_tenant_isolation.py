"""Property: a search as tenant A never returns tenant B's points, on every store variant.

The variants (conftest.STORE_VARIANTS) include the shared store forwarded over its socket: the
tenant filter must survive the trip (a client cannot widen a query past its tenant).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.sparse import SparseEncoder
from server.retrieval.store import (
    HybridQuery,
    StoredPoint,
    VectorStore,
    point_id,
)
from server.settings import Bm25Settings, FusionSettings

pytestmark = pytest.mark.slow  # see pyproject.toml: `pytest -m "not slow"` skips it

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "theta", "kappa", "lambda", "zeta"]
TENANTS = ["a", "b", "c"]
DIM = 6
ENCODER = SparseEncoder(Bm25Settings(stemming=False))

documents = st.lists(
    st.tuples(st.sampled_from(TENANTS), st.lists(st.sampled_from(WORDS), min_size=1, max_size=8)),
    min_size=1,
    max_size=30,
)
queries = st.tuples(
    st.sampled_from(TENANTS),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
    st.sampled_from(["dense", "sparse", "rrf", "dbsf"]),
    st.integers(min_value=1, max_value=40),
)


def _dense(seed: str) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def _check(
    store: VectorStore, docs: list[tuple[str, list[str]]], query: tuple[str, list[str], str, int]
) -> None:
    name = "iso"
    if not store.has_collection(name):
        store.ensure_collection(name, DIM, BASE_PAYLOAD_INDEXES)
    else:
        for tenant in TENANTS:
            store.delete(name, tenant)
    points = []
    for i, (tenant, words) in enumerate(docs):
        text = " ".join(words)
        points.append(
            StoredPoint(
                id=point_id(tenant, "docs", f"s{i}", 0),
                dense=_dense(text),
                sparse=ENCODER.encode_document(text, 4.0),
                payload={"tenant": tenant, "doc_id": f"d{i}", "source": f"s{i}", "chunk_index": 0},
            )
        )
    store.upsert(name, points)
    tenant, words, kind, limit = query
    request = HybridQuery(
        tenant=tenant,
        limit=limit,
        candidates=limit,
        dense=_dense(" ".join(words)) if kind != "sparse" else None,
        sparse=ENCODER.encode_query(" ".join(words)) if kind != "dense" else None,
        fusion=FusionSettings(method="dbsf" if kind == "dbsf" else "rrf"),
    )
    response = store.query(name, request)
    own = sum(1 for t, _ in docs if t == tenant)
    for stage in (response.final, response.dense, response.sparse):
        assert all(p.payload.get("tenant", tenant) == tenant for p in stage)
        assert len(stage) <= own
    ids_of_others = {p.id for p in points if p.payload["tenant"] != tenant}
    assert not ids_of_others & {p.id for p in response.final + response.dense + response.sparse}
    assert not store.retrieve(name, tenant, sorted(ids_of_others))
    if kind == "dense":
        assert len(response.final) == min(limit, own)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(docs=documents, query=queries)
def test_stores_isolate_tenants(  # type: ignore[no-untyped-def]
    fresh_store: Callable[[], AbstractContextManager[VectorStore]], docs, query
) -> None:
    with fresh_store() as store:
        _check(store, docs, query)
