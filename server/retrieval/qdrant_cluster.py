"""Where a Qdrant target is and how its collections are laid out across a cluster.

Locations: ``http(s)://host:port`` is a Qdrant server or cluster; ``path:/dir`` is qdrant-client's
local mode persisted in ``/dir`` (pure Python, one process; for tests and trials).

Layout (``QdrantClusterSettings``): shard number and replication factor go to collection
creation as they are. ``tenant_shards`` switches a new collection to custom sharding, Qdrant's
tiered multitenancy: one shared shard key (:data:`DEFAULT_SHARD_KEY`) for the many small
tenants and one key per large tenant, each point written under its tenant's key. Searches go to
the tenant's key only; the other reads (counts, scrolls, deletes by filter) name no key, so they
cover every shard key, and the tenant filter isolates tenants there as everywhere.

The tenant shard keys a collection was created with are recorded in its metadata
(:data:`SHARD_LAYOUT_KEY`) and writes and searches are routed by that record, never by the
current setting:
a point re-written under another key than its first copy would exist twice. Changing
``tenant_shards`` therefore applies to collections created afterwards (migrate --restart).
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from qdrant_client import QdrantClient, models
from qdrant_client.local.qdrant_local import QdrantLocal

from server.errors import StoreError
from server.retrieval.store import TENANT_FIELD
from server.settings import QdrantClusterSettings

logger = logging.getLogger(__name__)

DEFAULT_SHARD_KEY = "default"
"""The shard key of every tenant without a dedicated one (custom sharding only)."""
LOCAL_PREFIX = "path:"
SHARD_LAYOUT_KEY = "retrieval_mcp_tenant_shards"
"""Collection metadata key: the tenants with a dedicated shard key (custom sharding only)."""

T = TypeVar("T")


def open_client(location: str, api_key: str | None = None, timeout: int = 30) -> QdrantClient:
    """A client for ``http(s)://host[:port]`` or ``path:/dir`` (local mode).

    Raises StoreError (one line) for any other form; does not contact the server.
    """
    if location.startswith(LOCAL_PREFIX):
        folder = Path(location[len(LOCAL_PREFIX) :]).expanduser()
        if not location[len(LOCAL_PREFIX) :]:
            raise StoreError("a local-mode target needs a folder: path:/some/dir")
        # local mode warns on every payload index it is asked for (it filters by scanning) and
        # on every search with a beam or quantization parameters (it searches exactly): both
        # known and documented for a mode meant for trials, and a warning with a source line
        # on stderr per search
        warnings.filterwarnings("ignore", message="Payload indexes have no effect in the local")
        warnings.filterwarnings("ignore", message="Local mode performs exact")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            return QdrantClient(path=str(folder))
        except Exception as exc:  # portalocker: folder held by another client; OSError
            raise StoreError(f"cannot open the local Qdrant folder {folder}: {exc}") from None
    try:
        parts = urlsplit(location)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        valid = False
    if not valid:
        raise StoreError(
            f"unsupported Qdrant location {location!r}: expected http(s)://host:port "
            "(a server or cluster) or path:/dir (qdrant-client's local mode)"
        )
    # an unreachable server is reported once, by the caller's first request
    warnings.filterwarnings("ignore", message="Failed to obtain server version")
    try:
        return QdrantClient(url=location, api_key=api_key, timeout=timeout)
    except Exception as exc:  # e.g. a port that is not a number
        raise StoreError(f"bad Qdrant URL {location!r}: {exc}") from None


def is_local(client: QdrantClient) -> bool:
    """True for qdrant-client's local mode (which ignores shards, replicas and payload indexes)."""
    return isinstance(getattr(client, "_client", None), QdrantLocal)


def uses_shard_keys(cluster: QdrantClusterSettings) -> bool:
    """Whether new collections use custom sharding (some tenant has a dedicated shard key)."""
    return bool(cluster.tenant_shards)


def creation_params(cluster: QdrantClusterSettings) -> dict[str, Any]:
    """Keyword arguments for ``create_collection`` (only those that are set).

    With custom sharding the shard number is per shard key (given to ``create_shard_key``).
    """
    params: dict[str, Any] = {}
    if cluster.replication_factor is not None:
        params["replication_factor"] = cluster.replication_factor
    if uses_shard_keys(cluster):
        params["sharding_method"] = models.ShardingMethod.CUSTOM
        params["metadata"] = {SHARD_LAYOUT_KEY: list(cluster.tenant_shards)}
    elif cluster.shard_number is not None:
        params["shard_number"] = cluster.shard_number
    return params


def create_shard_keys(client: QdrantClient, name: str, cluster: QdrantClusterSettings) -> None:
    """The shared key and one key per large tenant, on a collection just created."""
    if not uses_shard_keys(cluster):
        return
    if is_local(client):
        logger.info("local mode has no shards: tenant shard keys of %r not created", name)
        return
    for key in [DEFAULT_SHARD_KEY, *cluster.tenant_shards]:
        client.create_shard_key(
            name,
            key,
            shards_number=cluster.shard_number if key == DEFAULT_SHARD_KEY else None,
            replication_factor=cluster.replication_factor,
        )


def recorded_layout(metadata: dict[str, Any] | None) -> QdrantClusterSettings:
    """The tenant shard keys a collection was created with (none: no custom sharding)."""
    tenants = (metadata or {}).get(SHARD_LAYOUT_KEY)
    return QdrantClusterSettings(tenant_shards=[str(t) for t in tenants or []])


def shard_key(cluster: QdrantClusterSettings, tenant: str) -> str | None:
    """The shard key a tenant's points are written under (None without custom sharding)."""
    if not uses_shard_keys(cluster):
        return None
    return tenant if tenant in cluster.tenant_shards else DEFAULT_SHARD_KEY


def by_shard_key(
    cluster: QdrantClusterSettings, items: Iterable[T], tenant_of: Callable[[T], str]
) -> dict[str | None, list[T]]:
    """``items`` grouped by the shard key of their tenant (one group, None, without sharding)."""
    groups: dict[str | None, list[T]] = defaultdict(list)
    for item in items:
        groups[shard_key(cluster, tenant_of(item))].append(item)
    return dict(groups)


def tenant_of_payload(payload: dict[str, Any] | None) -> str:
    """The tenant named in a point's payload ('' when it has none)."""
    return str((payload or {}).get(TENANT_FIELD, ""))
