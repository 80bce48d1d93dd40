"""Verify a migrated collection: counts, per-tenant counts, metadata, layout, sampled points.

The invariant: the target holds exactly the source's points (as many in all and per tenant),
the same per-tenant BM25 statistics, and each point unchanged (vectors and payload; see
:func:`point_copy.point_difference`). Every point is compared when the collection has at most
``sample`` points; otherwise ``sample`` points found from random positions in the id order.
"""

from __future__ import annotations

import random
import uuid

from server.retrieval import point_copy
from server.retrieval.edge_store import EdgeStore
from server.retrieval.migrate import MigrationError
from server.retrieval.qdrant_cluster import is_local
from server.retrieval.qdrant_store import QdrantStore

COMPARE_PAGE = 256


def verify_collection(
    source: EdgeStore, target: QdrantStore, name: str, sample: int, seed: int | None = None
) -> tuple[dict[str, int], int]:
    """The source's points per tenant and how many points were compared one by one.

    Raises MigrationError (one line, naming the first difference) when the target differs.
    """
    points = source.count(name, None)
    copied = target.count(name, None)
    if points != copied:
        raise _failed(name, f"{points} points in the store, {copied} in the target")
    tenants = point_copy.edge_tenant_counts(source, name)
    copied_tenants = point_copy.target_tenant_counts(target, name)
    for tenant in sorted(set(tenants) | set(copied_tenants)):
        have, got = tenants.get(tenant, 0), copied_tenants.get(tenant, 0)
        if have != got:
            raise _failed(
                name, f"tenant {tenant!r} has {have} points in the store, {got} in the target"
            )
    if source.read_meta(name) != target.read_meta(name):
        raise _failed(name, "its metadata (per-tenant BM25 statistics) differs")
    _verify_layout(source, target, name)
    ids = sample_ids(source, name, points, sample, random.Random(seed))
    for start in range(0, len(ids), COMPARE_PAGE):
        _compare(source, target, name, ids[start : start + COMPARE_PAGE])
    return tenants, len(ids)


def _failed(name: str, what: str) -> MigrationError:
    return MigrationError(
        f"verification failed: collection {name!r}: {what} "
        "(migrate --restart copies it again from scratch)"
    )


def _verify_layout(source: EdgeStore, target: QdrantStore, name: str) -> None:
    """Same vectors; the same payload indexes where the target keeps them (local mode keeps
    none: it filters by scanning)."""
    want = point_copy.edge_layout(source, name)
    have = point_copy.target_layout(target, name)
    if (want.dense_dim, want.part_vectors) != (have.dense_dim, have.part_vectors):
        raise _failed(name, "the target collection has other vectors")
    if is_local(target.client):
        return
    missing = sorted(set(want.payload_indexes.items()) - set(have.payload_indexes.items()))
    if missing:
        raise _failed(name, f"payload indexes missing in the target: {missing}")


def sample_ids(
    source: EdgeStore, name: str, points: int, sample: int, rng: random.Random
) -> list[str]:
    """Every id when ``points <= sample``; else ``sample`` distinct ids (fewer only after 4x as
    many draws), each the first at or after a random UUID (ids are UUIDs; past the last one,
    the first id)."""
    if points <= sample:
        ids: list[str] = []
        offset: str | None = None
        while True:
            page, offset = point_copy.edge_ids(source, name, offset, COMPARE_PAGE)
            ids.extend(page)
            if offset is None:
                return ids
    chosen: dict[str, None] = {}
    for _ in range(4 * sample):  # draws land on the same point now and then
        if len(chosen) >= sample:
            break
        start = str(uuid.UUID(int=rng.getrandbits(128)))
        found, _ = point_copy.edge_ids(source, name, start, 1)
        if not found:
            found, _ = point_copy.edge_ids(source, name, None, 1)
        chosen.update(dict.fromkeys(found))
    return list(chosen)


def _compare(source: EdgeStore, target: QdrantStore, name: str, ids: list[str]) -> None:
    originals = point_copy.edge_points(source, name, ids)
    copies = point_copy.target_points(target, name, ids)
    tolerance = point_copy.LOCAL_MODE_TOLERANCE if is_local(target.client) else 0.0
    for point_id in ids:
        copy = copies.get(point_id)
        if copy is None:
            raise _failed(name, f"point {point_id} is missing in the target")
        difference = point_copy.point_difference(originals[point_id], copy, tolerance)
        if difference:
            raise _failed(name, f"point {point_id}: {difference}")
