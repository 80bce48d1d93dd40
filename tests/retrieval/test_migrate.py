"""migrate: an embedded store copied into qdrant-client's local mode (the stand-in for a server).

The invariant: after a migration, interrupted or not, the target holds exactly the source's
points (all and per tenant), each with its vectors and payload, and the source's per-tenant BM25
statistics; a target that differs in any of these fails verification.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient, models

from server.cli_migrate import run_migration
from server.errors import StoreError
from server.retrieval.chunk_record import BASE_PAYLOAD_INDEXES
from server.retrieval.edge_store import EdgeStore
from server.retrieval.migrate import Checkpoint, MigrateOptions, MigrationError
from server.retrieval.point_copy import (
    edge_page,
    edge_points,
    point_difference,
    target_points,
    target_tenant_counts,
)
from server.retrieval.qdrant_store import QdrantStore
from server.retrieval.sparse import SparseVector
from server.retrieval.store import StoredPoint, point_id

DIM = 8
ROOT = Path(__file__).resolve().parents[2]
TENANTS = ("acme", "globex", "initech")
META = {
    "tenants": {
        "acme": {"points": 3, "total_len": 42.5, "encoded_avg_len": 14.1},
        "globex": {"points": 2, "total_len": 7.0, "encoded_avg_len": 3.5},
    },
    "encoded_avg_len": 9.0,
}


def _vec(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def _point(i: int, parts: bool) -> StoredPoint:
    tenant = TENANTS[i % len(TENANTS)]
    return StoredPoint(
        id=point_id(tenant, "docs", f"/src/{i // 4}.md", i),
        dense=_vec(i),
        sparse=SparseVector([i % 7, 1000 + i], [1.25, 0.5 + i / 100]),
        payload={
            "tenant": tenant,
            "doc_id": f"d{i // 4}",
            "source": f"/src/{i // 4}.md",
            "chunk_index": i % 4,
            "text": f"chunk {i} ünïcode",
            "title": None,
            "path_prefixes": ["/src"],
        },
        parts=[_vec(10_000 + i), _vec(20_000 + i)] if parts else None,
    )


def fill_source(root: Path, points: int, collections: dict[str, bool]) -> EdgeStore:
    """An embedded store with ``points`` points in each collection (name -> part vectors)."""
    store = EdgeStore(root)
    for name, parts in collections.items():
        store.ensure_collection(name, DIM, BASE_PAYLOAD_INDEXES, part_vectors=parts)
        store.upsert(name, [_point(i, parts) for i in range(points)])
        store.write_meta(name, META)
        store.finish_writes(name)
    return store


@pytest.fixture
def source(tmp_path: Path) -> Iterator[EdgeStore]:
    store = fill_source(tmp_path / "edge", 23, {"docs": True, "code": False})
    yield store
    store.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[QdrantStore]:
    store = QdrantStore.connect(f"path:{tmp_path / 'target'}")
    yield store
    store.close()


def _all_points(store: EdgeStore, name: str) -> list[StoredPoint]:
    points, _ = edge_page(store, name, None, 10_000)
    return points


def test_migrate_copies_points_vectors_payloads_and_statistics(
    source: EdgeStore, target: QdrantStore
) -> None:
    result = run_migration(source, target, ["docs", "code"], MigrateOptions(batch=5))
    assert result.complete
    assert [r.collection for r in result.reports] == ["docs", "code"]
    for name, parts in (("docs", True), ("code", False)):
        report = next(r for r in result.reports if r.collection == name)
        assert report.points == 23 and report.copied_now == 23 and report.sampled == 23
        assert report.tenants == {"acme": 8, "globex": 8, "initech": 7}
        assert target.count(name, None) == 23
        assert target.read_meta(name) == META
        assert target.has_part_vectors(name) is parts
        # as stored: both collections lay BM25 terms out in the same term spaces
        originals = list(
            edge_points(source, name, [p.id for p in _all_points(source, name)]).values()
        )
        copies = target_points(target, name, [p.id for p in originals])
        for original in originals:
            copy = copies[original.id]
            assert copy.payload == original.payload
            assert (copy.sparse.indices, copy.sparse.values) == (
                original.sparse.indices,
                pytest.approx(original.sparse.values),
            )
            np.testing.assert_allclose(copy.dense, original.dense, atol=1e-6)
            if parts:
                assert copy.parts is not None and original.parts is not None
                np.testing.assert_allclose(copy.parts, original.parts, atol=2.0**-10)
            else:
                assert copy.parts is None


def test_copied_vectors_search_alike(source: EdgeStore, target: QdrantStore) -> None:
    """The same dense query finds the same neighbours, with the same scores, in both."""
    run_migration(source, target, ["code"], MigrateOptions())
    query = _vec(777)
    for tenant in TENANTS:
        flt = models.Filter(
            must=[models.FieldCondition(key="tenant", match=models.MatchValue(value=tenant))]
        )
        copied = target.client.query_points(
            "code", query=query, using="dense", query_filter=flt, limit=5
        ).points
        originals = sorted(
            (p for p in _all_points(source, "code") if p.payload["tenant"] == tenant),
            key=lambda p: -float(np.dot(p.dense, query) / np.linalg.norm(query)),
        )[:5]
        assert [str(p.id) for p in copied] == [p.id for p in originals]


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    points=st.integers(min_value=0, max_value=40),
    batch=st.integers(min_value=1, max_value=9),
    stops=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=3),
)
def test_interrupted_migration_resumes_to_the_same_target(
    tmp_path_factory: pytest.TempPathFactory, points: int, batch: int, stops: list[int]
) -> None:
    """Runs stopped after any number of pages, then one run to the end: exactly the source."""
    root = tmp_path_factory.mktemp("resume")
    source = fill_source(root / "edge", points, {"docs": True})
    target = QdrantStore(QdrantClient(location=":memory:"))
    try:
        copied = 0
        for stop in stops:
            result = run_migration(
                source, target, ["docs"], MigrateOptions(batch=batch, max_batches=stop)
            )
            pages_left = -(-(points - copied) // batch) if points > copied else 1
            if stop < pages_left:
                copied += stop * batch
                assert not result.complete
                assert target.count("docs", None) == copied
                assert target.read_meta("docs") == {}  # statistics only once complete
            else:
                copied = points
                assert result.complete
        final = run_migration(source, target, ["docs"], MigrateOptions(batch=batch))
        assert final.complete
        assert target.count("docs", None) == points
        assert final.reports[0].sampled == points
        assert target.read_meta("docs") == META
    finally:
        target.close()
        source.close()


def test_a_lost_checkpoint_copies_pages_again_without_duplicates(
    source: EdgeStore, target: QdrantStore
) -> None:
    """A run killed after an upsert but before its checkpoint repeats that page: harmless."""
    run_migration(source, target, ["docs"], MigrateOptions(batch=4, max_batches=3))
    assert target.count("docs", None) == 12
    Checkpoint().write(target, "docs")  # as if no page had been recorded
    result = run_migration(source, target, ["docs"], MigrateOptions(batch=4))
    assert result.complete and result.reports[0].copied_now == 23
    assert target.count("docs", None) == 23


def test_a_run_stopped_after_the_last_page_only_copies_the_statistics(
    source: EdgeStore, target: QdrantStore
) -> None:
    """Killed between the last page and the metadata: the next run copies no page again."""
    run_migration(source, target, ["docs"], MigrateOptions(batch=10))
    assert Checkpoint.read(target, "docs") == Checkpoint(None, 23, pages_done=True, complete=True)
    target.write_meta("docs", {})  # the state such a kill leaves
    Checkpoint(None, 23, pages_done=True).write(target, "docs")
    result = run_migration(source, target, ["docs"], MigrateOptions(batch=10))
    assert result.complete and result.reports[0].copied_now == 0
    assert target.read_meta("docs") == META


def test_a_complete_migration_is_verified_again_not_copied_again(
    source: EdgeStore, target: QdrantStore
) -> None:
    run_migration(source, target, ["docs"], MigrateOptions())
    again = run_migration(source, target, ["docs"], MigrateOptions())
    assert again.complete and again.reports[0].copied_now == 0 and again.reports[0].sampled == 23
    restarted = run_migration(source, target, ["docs"], MigrateOptions(restart=True))
    assert restarted.reports[0].copied_now == 23 and target.count("docs", None) == 23


def test_restart_repairs_a_target_that_failed_verification(
    source: EdgeStore, target: QdrantStore
) -> None:
    """--restart starts over: a point the source no longer has does not survive it."""
    run_migration(source, target, ["docs"], MigrateOptions())
    _add_foreign(source, target)
    with pytest.raises(MigrationError):
        run_migration(source, target, ["docs"], MigrateOptions())
    repaired = run_migration(source, target, ["docs"], MigrateOptions(restart=True))
    assert repaired.complete and repaired.reports[0].sampled == 23
    assert point_copy_tenants(target) == {"acme": 8, "globex": 8, "initech": 7}


def point_copy_tenants(target: QdrantStore) -> dict[str, int]:
    return target_tenant_counts(target, "docs")


def _first_id(source: EdgeStore) -> str:
    return _all_points(source, "docs")[0].id


def _delete_one(source: EdgeStore, target: QdrantStore) -> None:
    target.client.delete("docs", points_selector=models.PointIdsList(points=[_first_id(source)]))


def _add_foreign(source: EdgeStore, target: QdrantStore) -> None:
    stray = _point(99, parts=True)
    payload = {**stray.payload, "tenant": "hooli"}
    target.upsert("docs", [StoredPoint(stray.id, stray.dense, stray.sparse, payload, stray.parts)])
    # keep the total: drop a source point so only the per-tenant counts can tell
    _delete_one(source, target)


def _move_tenant(source: EdgeStore, target: QdrantStore) -> None:
    target.client.set_payload("docs", {"tenant": "zeta"}, points=[_first_id(source)])


def _edit_payload(source: EdgeStore, target: QdrantStore) -> None:
    target.client.set_payload("docs", {"text": "changed"}, points=[_first_id(source)])


def _edit_dense(source: EdgeStore, target: QdrantStore) -> None:
    target.client.update_vectors(
        "docs", points=[models.PointVectors(id=_first_id(source), vector={"dense": _vec(5)})]
    )


def _edit_sparse(source: EdgeStore, target: QdrantStore) -> None:
    [first], _ = edge_page(source, "docs", None, 1)
    tenant = str(first.payload["tenant"])
    target.update_sparse("docs", tenant, [(first.id, SparseVector([1, 2], [1.0, 1.0]))])


def _edit_parts(source: EdgeStore, target: QdrantStore) -> None:
    target.client.update_vectors(
        "docs",
        points=[models.PointVectors(id=_first_id(source), vector={"parts": [_vec(1), _vec(2)]})],
    )


def _edit_meta(source: EdgeStore, target: QdrantStore) -> None:
    target.adjust_meta("docs", {"tenants": {"acme": {"points": 1}}})


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (_delete_one, "23 points in the store, 22 in the target"),
        (_add_foreign, "points in the store"),
        (_move_tenant, "points in the store"),
        (_edit_payload, "its payload differs (text)"),
        (_edit_dense, "its dense vector differs"),
        (_edit_sparse, "its BM25 vector differs"),
        (_edit_parts, "its part vectors differ"),
        (_edit_meta, "its metadata (per-tenant BM25 statistics) differs"),
    ],
)
def test_verification_fails_on_a_tampered_target(
    source: EdgeStore, target: QdrantStore, tamper: object, message: str
) -> None:
    run_migration(source, target, ["docs"], MigrateOptions())
    tamper(source, target)  # type: ignore[operator]
    with pytest.raises(MigrationError) as failure:
        run_migration(source, target, ["docs"], MigrateOptions())
    text = str(failure.value)
    assert text.startswith("verification failed: collection 'docs': ") and "\n" not in text
    assert text.endswith("(migrate --restart copies it again from scratch)")
    assert message in text


def test_sampled_verification_compares_distinct_points_of_a_larger_collection(
    source: EdgeStore, target: QdrantStore
) -> None:
    result = run_migration(source, target, ["docs"], MigrateOptions(sample=5), seed=3)
    assert result.complete and result.reports[0].sampled == 5


def test_a_target_collection_with_other_vectors_is_refused(
    source: EdgeStore, target: QdrantStore
) -> None:
    target.ensure_collection("docs", DIM, BASE_PAYLOAD_INDEXES, part_vectors=False)
    with pytest.raises(MigrationError, match="already exists in the target with other vectors"):
        run_migration(source, target, ["docs"], MigrateOptions())


def test_point_difference_is_none_for_a_faithful_copy_only() -> None:
    original = _point(1, parts=True)
    assert point_difference(original, original) is None
    nudged = StoredPoint(
        original.id,
        [v + 1e-7 for v in original.dense],
        original.sparse,
        original.payload,
        original.parts,
    )
    assert point_difference(original, nudged) == "its dense vector differs"
    assert point_difference(original, nudged, dense_tolerance=1e-6) is None


@pytest.mark.parametrize(
    "location",
    ["ftp://qdrant:6333", "localhost:6333", "http://[::1", "http://host:port", "path:"],
)
def test_a_bad_location_is_one_readable_line(location: str) -> None:
    with pytest.raises(StoreError) as failure:
        QdrantStore.connect(location)
    assert "\n" not in str(failure.value)


def test_an_unreachable_server_is_one_readable_line() -> None:
    with pytest.raises(StoreError, match=r"cannot reach Qdrant at http://127\.0\.0\.1:1"):
        QdrantStore.connect("http://127.0.0.1:1", timeout=2)


@pytest.mark.slow
def test_a_killed_migration_continues_without_duplicates(tmp_path: Path) -> None:
    """SIGKILL mid-copy (no chance to clean up), then the same command: complete and verified."""
    fill_source(tmp_path / "edge", 300, {"docs": True}).close()
    command = [
        sys.executable, "-m", "server.cli", "migrate", "--store", str(tmp_path / "edge"),
        "--to", f"path:{tmp_path / 'target'}", "--batch", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, cwd=ROOT)
    assert process.stderr is not None
    seen = b""
    while not re.search(rb"\| *([2-9]\d|\d{3})/300", seen):  # tqdm shows 20+ points copied
        chunk = process.stderr.read1(4096)
        assert chunk, f"migrate ended before it could be killed: {seen[-500:]!r}"
        seen += chunk
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    client = QdrantClient(path=str(tmp_path / "target"))
    partial = client.count("docs", exact=True).count
    client.close()
    assert 20 <= partial < 300
    resumed = subprocess.run(
        [*command, "--no-progress"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout and "200 points compared: copied and verified" in (
        resumed.stdout
    )  # the default sample: 200 distinct points of the 300
