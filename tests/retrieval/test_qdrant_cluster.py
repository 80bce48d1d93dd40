"""Cluster layout settings: parsed from RETRIEVAL_QDRANT_CLUSTER__*, given to collection creation,
and points routed to their tenant's shard key.

qdrant-client's local mode has one shard and no replicas: it accepts and ignores the creation
parameters and the shard key of a write, and refuses to create shard keys (so the store skips
that there). What it can show is that a store configured for a cluster reads and writes like any
other; the parameters themselves are checked as the values handed to the client.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from server.cli import build_parser
from server.cli_migrate import cluster_settings
from server.errors import RetrievalError
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.qdrant_cluster import (
    DEFAULT_SHARD_KEY,
    SHARD_LAYOUT_KEY,
    by_shard_key,
    creation_params,
    recorded_layout,
    shard_key,
)
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.sparse import SparseVector
from server.retrieval.store import HybridQuery, StoredPoint, point_id
from server.settings import QdrantClusterSettings, Settings


def test_cluster_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_QDRANT_CLUSTER__SHARD_NUMBER", "6")
    monkeypatch.setenv("RETRIEVAL_QDRANT_CLUSTER__REPLICATION_FACTOR", "2")
    monkeypatch.setenv("RETRIEVAL_QDRANT_CLUSTER__TENANT_SHARDS", '["bigco", "megacorp"]')
    cluster = Settings().qdrant_cluster
    assert (cluster.shard_number, cluster.replication_factor) == (6, 2)
    assert cluster.tenant_shards == ["bigco", "megacorp"]


def test_command_line_overrides_the_configured_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_QDRANT_CLUSTER__SHARD_NUMBER", "6")
    monkeypatch.setenv("RETRIEVAL_QDRANT_CLUSTER__REPLICATION_FACTOR", "2")
    args = build_parser().parse_args(
        ["migrate", "--to", "path:/x", "--shards", "3", "--tenant-shards", " bigco, ,megacorp"]
    )
    cluster = cluster_settings(Settings(), args)
    assert cluster == QdrantClusterSettings(
        shard_number=3, replication_factor=2, tenant_shards=["bigco", "megacorp"]
    )
    too_many = build_parser().parse_args(["migrate", "--to", "path:/x", "--shards", "5000"])
    with pytest.raises(RetrievalError, match="bad cluster setting: shard_number"):
        cluster_settings(Settings(), too_many)


def test_creation_parameters() -> None:
    assert creation_params(QdrantClusterSettings()) == {}
    assert creation_params(QdrantClusterSettings(shard_number=4, replication_factor=2)) == {
        "shard_number": 4,
        "replication_factor": 2,
    }
    # custom sharding: the shard number belongs to each shard key, not to the collection
    assert creation_params(
        QdrantClusterSettings(shard_number=4, replication_factor=3, tenant_shards=["bigco"])
    ) == {
        "replication_factor": 3,
        "sharding_method": models.ShardingMethod.CUSTOM,
        "metadata": {SHARD_LAYOUT_KEY: ["bigco"]},
    }


@given(
    dedicated=st.lists(st.sampled_from("abcdef"), unique=True),
    tenants=st.lists(st.sampled_from("abcdefgh"), max_size=30),
)
def test_each_point_goes_to_its_tenants_shard_key(dedicated: list[str], tenants: list[str]) -> None:
    cluster = QdrantClusterSettings(tenant_shards=dedicated)
    groups = by_shard_key(cluster, list(enumerate(tenants)), lambda item: item[1])
    assert sorted(item for group in groups.values() for item in group) == list(enumerate(tenants))
    for key, group in groups.items():
        for _, tenant in group:
            if not dedicated:
                assert key is None
            elif tenant in dedicated:
                assert key == tenant
            else:
                assert key == DEFAULT_SHARD_KEY
            assert shard_key(cluster, tenant) == key


@pytest.fixture
def sharded() -> Iterator[QdrantStore]:
    cluster = QdrantClusterSettings(shard_number=2, replication_factor=2, tenant_shards=["big"])
    store = QdrantStore(QdrantClient(location=":memory:"), cluster)
    yield store
    store.close()


def _point(tenant: str, i: int) -> StoredPoint:
    return StoredPoint(
        point_id(tenant, "docs", "s", i),
        [1.0, float(i), 0.5, 0.0],
        SparseVector([i % 3, 10], [1.0, 0.5]),
        {"tenant": tenant, "source": "s", "chunk_index": i, "doc_id": "d"},
    )


def test_a_store_configured_for_a_cluster_reads_and_writes_in_local_mode(
    sharded: QdrantStore,
) -> None:
    sharded.ensure_collection("docs", 4, BASE_PAYLOAD_INDEXES)
    sharded.upsert("docs", [_point(t, i) for i in range(6) for t in ("big", "small", "tiny")])
    assert {t: sharded.count("docs", t) for t in ("big", "small", "tiny")} == {
        "big": 6,
        "small": 6,
        "tiny": 6,
    }
    for t in ("big", "small"):
        sharded.update_sparse("docs", t, [(point_id(t, "docs", "s", 0), SparseVector([7], [2.0]))])
    response = sharded.query(
        "docs", HybridQuery("small", limit=3, candidates=10, sparse=SparseVector([7], [1.0]))
    )
    assert response.final[0].id == point_id("small", "docs", "s", 0)
    big = sharded.query(
        "docs", HybridQuery("big", limit=3, candidates=10, sparse=SparseVector([7], [1.0]))
    )
    assert big.final[0].id == point_id("big", "docs", "s", 0)
    # what a server would be sent: each search names the tenant's shard key
    for tenant, key in (("big", "big"), ("small", DEFAULT_SHARD_KEY)):
        routed = sharded._routed("docs", tenant)([models.QueryRequest(query=[1.0, 0, 0, 0])])
        assert routed[0].shard_key == key
    sharded.delete("docs", "big")
    assert sharded.count("docs", None) == 12


def test_writes_follow_the_shard_keys_a_collection_was_created_with(
    sharded: QdrantStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A point re-written under another key than its first copy would exist twice: a changed
    tenant_shards setting must not move the routing of an existing collection."""
    sharded.ensure_collection("docs", 4, BASE_PAYLOAD_INDEXES)
    metadata = sharded.client.get_collection("docs").config.metadata
    assert recorded_layout(metadata) == QdrantClusterSettings(tenant_shards=["big"])
    later = QdrantStore(sharded.client, QdrantClusterSettings(tenant_shards=["small"]))
    later.ensure_collection("docs", 4, BASE_PAYLOAD_INDEXES)
    assert "keeps the tenant shard keys it was created with (big)" in caplog.text
    later.upsert("docs", [_point("small", 1), _point("big", 1)])
    sharded.upsert("docs", [_point("small", 1)])
    assert later.count("docs", None) == 2
    assert recorded_layout(later.client.get_collection("docs").config.metadata).tenant_shards == [
        "big"
    ]
    plain = QdrantStore(QdrantClient(location=":memory:"))
    plain.ensure_collection("docs", 4, BASE_PAYLOAD_INDEXES)
    assert recorded_layout(plain.client.get_collection("docs").config.metadata).tenant_shards == []
    plain.close()


def test_a_local_mode_store_searches_without_warnings(tmp_path: Path) -> None:
    """qdrant-client's local mode (``path:``, for trials) warns that it ignores the beam and
    quantization parameters on every search: known and documented, so not printed per search."""
    store = QdrantStore.connect(f"path:{tmp_path / 'local'}")
    try:
        store.ensure_collection("docs", 4, BASE_PAYLOAD_INDEXES)
        store.upsert("docs", [_point("a", i) for i in range(3)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            QdrantStore.connect(f"path:{tmp_path / 'other'}").close()  # its filters, anew
            request = HybridQuery(
                "a", limit=3, candidates=10, dense=[1.0, 0, 0, 0], sparse=SparseVector([10], [1.0])
            )
            assert store.query("docs", request).final
        assert [str(w.message) for w in caught] == []
    finally:
        store.close()
