"""All configuration in one typed place.

Values come from (highest first): constructor arguments, ``RETRIEVAL_*`` environment variables
(nested with ``__``, e.g. ``RETRIEVAL_DOMAINS__CODE__CANDIDATES=200``), an optional TOML file
named by ``RETRIEVAL_CONFIG_FILE``, then the defaults below.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from server.errors import InvalidRequestError
from server.retrieval.store_tuning import StoreTuning

BUNDLED_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_RERANKER_MODEL = "cross-encoder/ms-marco-MiniLM-L-6-v2"
CONFIG_FILE_ENV = "RETRIEVAL_CONFIG_FILE"
RERANKER_OFF_VALUES = frozenset({"", "none", "off", "false"})
"""``reranker_model`` values that switch reranking off, in any case, surrounding whitespace
ignored (so a whitespace-only value is off too)."""


def parse_reranker(value: str) -> str | None:
    """The cross-encoder id or path a ``reranker_model`` value names (whitespace stripped), or
    None when the value switches reranking off (:data:`RERANKER_OFF_VALUES`).

    The one reading of the value, whether it came from ``RETRIEVAL_RERANKER_MODEL``, the config
    file, a constructor argument or a command's ``--reranker``.
    """
    name = value.strip()
    return None if name.lower() in RERANKER_OFF_VALUES else name


class Domain(StrEnum):
    """The retrieval domains; each has its own collection, analyzer and fusion."""

    DOCS = "docs"
    LEGAL = "legal"
    CODE = "code"


class FusionSettings(BaseModel):
    """How Qdrant fuses the dense and sparse candidate lists.

    Weighted RRF is Qdrant's: a hit at 0-based position ``p`` of a stage with weight ``w`` scores
    ``1 / ((p + 1) / w + k - 1)``. The weight stretches positions rather than scaling scores, so
    every stage's top hit scores ``1 / k``; only with ``rrf_k = 1`` (score ``w / (p + 1)``) does
    the heavier stage dominate the top. DBSF ignores the weights; ``dbsf_zero_fill`` is DBSF
    with a BM25 list shorter than the dense list normalised as if it went on with zeros (those
    candidates have none of the query's terms: ``score_fusion.py``).
    """

    method: Literal["rrf", "dbsf", "dbsf_zero_fill"] = "dbsf_zero_fill"
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=1.0, gt=0)
    sparse_weight: float = Field(default=1.0, gt=0)


class Bm25Settings(BaseModel):
    """Qdrant BM25 analyzer parameters for one domain (see qdrant_edge.Bm25Config).

    ``tokenizer``: ``word`` (splits on non-word characters), ``code`` (``word`` plus
    ``getUserName`` -> get, user, name), both with Chinese, Japanese and Korean text as
    character bigrams; or ``multilingual`` (Qdrant's dictionary segmentation of CJK, but it drops
    digit-only tokens such as ``404``). See sparse.py.
    """

    tokenizer: Literal["word", "code", "multilingual"] = "word"
    language: str = "english"
    stemming: bool = True
    stopwords: bool = True
    k1: float = Field(default=1.2, ge=0)
    b: float = Field(default=0.75, ge=0, le=1)
    legal_references: bool = False
    """Add one token per legal reference (``12.3(b)``, ``§ 5``) and its parents."""
    ascii_folding: bool = True
    """Fold accented Latin letters to ASCII (``café`` matches ``cafe``), as ``multilingual``
    always does."""


KeywordTrigger = Literal["citation", "identifier", "quoted"]
"""Query features that make a query keyword-like (server/retrieval/query_routing.py)."""
KEYWORD_TRIGGERS: tuple[KeywordTrigger, ...] = ("citation", "identifier", "quoted")


class DomainSettings(BaseModel):
    """Per-domain collection, analyzer, fusion and depths."""

    collection: str
    bm25: Bm25Settings = Field(default_factory=Bm25Settings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    keyword_fusion: FusionSettings | None = None
    """Fusion for keyword-like queries (those with one of ``keyword_triggers``, or at most
    ``keyword_max_words`` words); ``fusion`` serves the others. None: ``fusion`` for all."""
    keyword_triggers: list[KeywordTrigger] = Field(default_factory=lambda: list(KEYWORD_TRIGGERS))
    keyword_max_words: int = Field(default=0, ge=0, le=20)
    candidates: int = Field(default=100, ge=1, le=1000)
    """How many candidates each of the dense and sparse prefetches returns."""
    hnsw_ef: int = Field(default=800, ge=1, le=10_000)
    """Beam width of the dense HNSW searches (Qdrant's ``hnsw_ef``; never below twice the
    candidate depth). Chosen on one half of the bench queries as the smallest beam whose
    returned lists (dense stage and fused) hold >= 0.95 of the exact top 10 at both 100k and
    1M chunks (200 and 400 fell short at 1M), and reported on the other half (README,
    "Benchmark"). Costs ~2 ms per query at 100k, ~3 ms at 1M against 200. A tenant small enough
    for exact search (about 6,500 chunks) ignores it."""
    rerank_depth: int = Field(default=20, ge=0, le=200)
    """How many fused candidates the cross-encoder rescores (0 disables reranking)."""
    definition_depth: int = Field(default=0, ge=0, le=200)
    """For a query that is one name: how many of the first hits are searched for chunks that
    define it, which then lead (server/retrieval/definitions.py; 0 turns it off). Only code
    chunks carry the symbols it reads: code defaults to 50, the smallest depth with the best
    tune score on the definition lookup sets (README, "Definition lookups")."""
    title_in_dense: bool = True
    """Prepend the chunk title (document title, heading path, symbol) for dense embedding."""
    part_sentences: int = Field(default=0, ge=0, le=16)
    """Sentences per part vector (0: none). Each chunk's sentences, in groups of this size, are
    also embedded on their own and stored as a multivector; the dense stage then scores a chunk
    by ``(1 - part_weight) * cos(chunk) + part_weight * max cos(part)``. Costs about one more
    encode of the text at ingest. Takes effect for collections created with it (re-ingest)."""
    part_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    """Share of the best part's cosine in the dense stage score (see part_sentences)."""


class IngestSettings(BaseModel):
    """File discovery and chunking limits for ``retrieval-mcp ingest``."""

    max_file_bytes: int = Field(default=20_000_000, ge=1)
    """Files larger than this are skipped with a reason (e.g. a 200 MB log)."""
    chunk_tokens: int = Field(default=256, ge=16)
    """Chunk budget in embedding-model word-pieces, title included; capped by the model window."""
    overlap_tokens: int = Field(default=32, ge=0)
    """Trailing sentences carried into the next chunk when prose is split (0: none)."""
    code_overlap_lines: int = Field(default=2, ge=0)
    """Lines repeated between consecutive line windows of code."""
    batch_chunks: int = Field(default=256, ge=1)
    """Chunks embedded and upserted per store write."""


class WatchSettings(BaseModel):
    """``retrieval-mcp watch`` and ``serve --watch``: how file-system events are batched."""

    debounce_ms: int = Field(default=1600, ge=10, le=60_000)
    """The longest a batch keeps collecting events before it is ingested (a long burst, such
    as a big ``git checkout``, is cut into batches this long at most)."""
    step_ms: int = Field(default=50, ge=5, le=10_000)
    """A batch closes once no event came for this long (an editor's save is one batch)."""
    retry_seconds: float = Field(default=2.0, gt=0, le=600)
    """Wait before retrying a batch whose ingest failed (store busy, model loading)."""


class QdrantClusterSettings(BaseModel):
    """Collection settings for a Qdrant cluster (``RETRIEVAL_QDRANT_CLUSTER__*``), applied when
    a collection is created on the server (``qdrant_url``; ``retrieval-mcp migrate``).

    Qdrant's own defaults where None. qdrant-client's local mode ignores all three (it has one
    shard and no replicas). See README, "Moving to a Qdrant server or cluster".
    """

    shard_number: int | None = Field(default=None, ge=1, le=1024)
    """Shards per collection (with ``tenant_shards``: shards of the shared ``default`` key)."""
    replication_factor: int | None = Field(default=None, ge=1, le=64)
    """Copies of each shard across the cluster's peers."""
    tenant_shards: list[str] = Field(default_factory=list)
    """Tenants large enough for a dedicated shard key of their own (Qdrant's tiered
    multitenancy): the collection uses custom sharding, these tenants' points live under the key
    named after the tenant, every other tenant's under the shared key ``default``."""


def _default_domains() -> dict[Domain, DomainSettings]:
    # Chosen by `make sweep-<domain>` (README, "Evaluation"): the best worst-set nDCG@10 over
    # each domain's tuning sets (tune parts; held-out parts reported). docs and code keep DBSF
    # (no alternative beat it beyond noise on its worst set, and each lost held-out elsewhere).
    # Every DBSF route zero-fills a complete BM25 list (score_fusion.py): within 0.004 on every
    # earlier set, +0.16 to +0.49 on the rare-word lookup sets ("Rare-word lookups", README).
    # legal: section titles and questions want DBSF, citations want sparse-heavy RRF, and no
    # static setting serves both, so citation queries are routed (query_routing.py); a lighter
    # BM25 (k1 0.6, b 0.4) helps the licence clauses.
    return {
        Domain.DOCS: DomainSettings(
            collection="docs",
            bm25=Bm25Settings(k1=0.9, b=0.4),
            fusion=FusionSettings(method="dbsf_zero_fill"),
            part_sentences=2,
        ),
        Domain.LEGAL: DomainSettings(
            collection="legal",
            bm25=Bm25Settings(legal_references=True, k1=0.6, b=0.4),
            fusion=FusionSettings(method="dbsf_zero_fill"),
            keyword_fusion=FusionSettings(
                method="rrf", rrf_k=1, dense_weight=1.0, sparse_weight=10.0
            ),
            keyword_triggers=["citation"],
        ),
        Domain.CODE: DomainSettings(
            collection="code",
            bm25=Bm25Settings(tokenizer="code"),
            fusion=FusionSettings(method="dbsf_zero_fill"),
            definition_depth=50,
        ),
    }


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "retrieval-mcp"


def default_store_path() -> Path:
    """Embedded store location under the user's data directory (XDG on Linux)."""
    return _data_dir() / "store"


def default_model_cache_path() -> Path:
    """Where exported inference graphs are cached (XDG data directory)."""
    return _data_dir() / "models"


def default_tokens_file() -> Path:
    """Where the HTTP transports keep their token hashes (XDG data directory)."""
    return _data_dir() / "tokens.json"


JwtAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"
]
"""Asymmetric JWS algorithms only: ``none`` and the HMAC family (HS*) are never accepted."""
DEFAULT_JWT_ALGORITHMS: tuple[JwtAlgorithm, ...] = ("RS256", "ES256")


class OAuthSettings(BaseModel):
    """OAuth 2.1 resource-server mode of the HTTP transports (server/oauth.py): bearer JWTs
    from one authorization server instead of the tokens file. On when ``issuer`` is set."""

    issuer: str | None = None
    """The authorization server's issuer identifier (the ``iss`` every token must carry);
    its keys come from its metadata (RFC 8414, else OpenID discovery) unless ``jwks_url``."""
    resource: str | None = None
    """This server's resource URL (RFC 8707/9728); default ``http://HOST:PORT/mcp`` (``/sse``)
    as served. Set it to the public URL clients use behind a proxy."""
    audience: str | None = None
    """The ``aud`` tokens must carry; default the resource URL (RFC 8707 audience binding)."""
    tenant_claim: str = "tenant"
    """The claim naming the tenant a token acts for (e.g. ``org_id``); a token without it is
    refused."""
    read_scope: str = "retrieval:read"
    """Scope that grants search and browse (``scope`` or ``scp`` claim)."""
    write_scope: str = "retrieval:write"
    """Scope that also grants the write tools of a server started with ``--allow-write``."""
    jwks_url: str | None = None
    """The issuer's JWKS URL, skipping metadata discovery."""
    algorithms: list[JwtAlgorithm] = Field(default_factory=lambda: list(DEFAULT_JWT_ALGORITHMS))
    leeway_seconds: float = Field(default=30.0, ge=0, le=300)
    """Clock skew allowed on ``exp``, ``nbf`` and ``iat``."""
    http_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    """Timeout of each metadata or JWKS request to the issuer."""
    jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    """Keys are re-fetched this long after the last fetch (a retired key stops working)."""
    jwks_min_refresh_seconds: float = Field(default=30.0, ge=0)
    """A token with an unknown ``kid`` re-fetches the keys (rotation), at most this often:
    tokens with made-up key ids cannot make the server hammer the issuer."""

    @model_validator(mode="after")
    def _distinct_scopes(self) -> OAuthSettings:
        if self.read_scope == self.write_scope or self.read_scope == "write":
            raise ValueError("mcp.oauth.read_scope must differ from write_scope and 'write'")
        return self

    @property
    def enabled(self) -> bool:
        """True when an issuer is configured."""
        return bool(self.issuer)


class McpServerSettings(BaseModel):
    """The MCP server: tenant binding, HTTP listener, tokens and per-tool caps."""

    @model_validator(mode="after")
    def _default_output_within_limit(self) -> McpServerSettings:
        if self.output_chars > self.max_output_chars:
            raise ValueError(
                f"mcp.output_chars ({self.output_chars}) exceeds mcp.max_output_chars "
                f"({self.max_output_chars})"
            )
        return self

    tenant: str | None = None
    """Tenant a stdio server serves (``--tenant`` overrides); HTTP takes it from the token."""
    tokens_file: Path = Field(default_factory=default_tokens_file)
    """Token hashes for the HTTP transports (``retrieval-mcp token add``)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra Host header values accepted besides the bind address and localhost (DNS-rebinding
    protection), e.g. ``["mcp.example.internal:*"]`` behind a reverse proxy."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Extra Origin header values accepted by the HTTP transports."""
    max_embed_texts: int = Field(default=64, ge=1, le=4096)
    max_embed_chars: int = Field(default=8000, ge=1)
    max_neighbors: int = Field(default=5, ge=0, le=50)
    max_list_sources: int = Field(default=500, ge=1, le=10000)
    max_glob_sources: int = Field(default=20000, ge=1)
    """How many files a path_glob / source_prefix filter may resolve to before it is refused."""
    output_chars: int = Field(default=12_000, ge=100)
    """Output budget of a search call without ``max_chars``: characters of hit text, all hits
    together (about 3k tokens). Eight chunks of the default 256 tokens fit whole; at top_k 50
    each hit keeps its best sentences (~240 characters) and get_chunk has the rest."""
    max_output_chars: int = Field(default=100_000, ge=100)
    """Largest ``max_chars`` a search call may ask for (50 whole chunks of 256 tokens)."""
    max_source_chunks: int = Field(default=200, ge=1, le=10000)
    """Chunks per read of a source resource; a longer source continues at ``?start=N``."""
    model_wait_seconds: float = Field(default=300.0, gt=0)
    """How long a tool call waits for the models still loading in the background."""
    load_delay_seconds: float = Field(default=2.0, ge=0, le=60)
    """Hold back opening the store and loading the models this long after start-up (unless a
    tool call needs them sooner), so their imports do not slow the initialize / tools/list
    handshake (the loader thread competes with the protocol thread for the GIL)."""
    allocator: str = "auto"
    """Memory allocator of ``serve`` over HTTP: ``auto`` (jemalloc when the machine has it),
    ``glibc``, or an allocator library's path; server/allocator.py says why."""
    allow_write: bool = False
    """Register the write tools (index_path, remove_source, add_text, job_status, cancel_job;
    ``serve --allow-write``). Over HTTP only tokens with the write scope may call them."""
    roots: list[Path] = Field(default_factory=list)
    """Folders index_path may read (``serve --root PATH``, repeatable); nothing outside them."""
    job_wait_seconds: float = Field(default=25.0, gt=0, le=600)
    """How long index_path and job_status wait for a job before returning its id and state:
    below the 60 s tool-call timeout common in clients."""
    job_retention_seconds: float = Field(default=3600.0, ge=0)
    """How long a finished job's result stays readable through job_status."""
    job_batch_chunks: int = Field(default=32, ge=1)
    """Chunks (of whole files) per store write in index_path jobs: progress moves and a
    cancel takes effect between writes, so smaller is livelier, larger a little faster."""
    progress_interval_seconds: float = Field(default=0.25, gt=0, le=60)
    """Least time between two progress notifications of one tool call (at most 4 a second)."""
    max_note_chars: int = Field(default=100_000, ge=1)
    """Longest text add_text accepts."""
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    """OAuth resource-server mode (``RETRIEVAL_MCP__OAUTH__ISSUER``, ``serve --oauth-issuer``);
    with an issuer the HTTP transports take JWTs and never read the tokens file."""


class ConcurrencySettings(BaseModel):
    """Many clients at once (``RETRIEVAL_CONCURRENCY__*``): query micro-batching, the request
    gate in front of the tools (bounded work, a fast "busy" answer beyond it) and timeouts."""

    batch_window_ms: float = Field(default=2.0, ge=0, le=1000)
    """How long a query that finds the model idle waits for others to share its embedding call
    (while the model is busy, queries gather until it is free anyway); 0: each query embedded
    alone. 2 ms: at 16 clients windows of 2-16 ms gave 1.2-1.8x the calls/s of 0, alike
    within the noise (``bench --sections concurrency``), and an idle server pays the least."""
    max_batch: int = Field(default=32, ge=1, le=1024)
    """Most queries in one embedding call; a batch that fills up runs before the window ends."""
    max_in_flight: int = Field(default=32, ge=1, le=1024)
    """Tool calls running at once (worker threads); more wait in the queue. 32: at 16 clients
    it gave 1.4-1.8x the calls/s of no batching, against 1.3x with 8 (more searches in flight
    make larger embedding batches; ``bench --sections concurrency``)."""
    max_queued: int = Field(default=64, ge=0, le=100_000)
    """Tool calls waiting for a worker beyond ``max_in_flight``; one more is refused at once
    with a "busy, retry" tool error (HTTP: 503 with ``Retry-After``)."""
    request_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Longest a read tool call may take, queueing included, before it answers with a one-line
    timeout error (the work it started finishes in the background, still counted as busy)."""
    retry_after_seconds: int = Field(default=1, ge=1, le=3600)
    """The ``Retry-After`` a refused call is given."""
    search_ahead_threads: int = Field(default=2, ge=0, le=64)
    """Threads that run a hybrid search's BM25 search while its query is being embedded (it
    needs only the query's terms; the model leaves the interpreter free while it runs), so its
    list is ready when the vector is (server/retrieval/run_ahead.py). 0: BM25 runs after the
    embedding, with the dense searches. The results are the same either way."""
    fast_http: bool = True
    """Serve the HTTP transports on uvloop's event loop and httptools' parser (both
    dependencies; server/http_stack.py) rather than asyncio's loop and the pure-Python h11: a
    fifth less CPU per call, which is what bounds calls/s when clients share the cores. False:
    the stock stack (also used when either is not installed, with a warning)."""


def _reranker_value_source(given: bool) -> tuple[str, str]:
    """Where ``reranker_model`` came from, as the text around its value in a note: the
    constructor, else the environment variable as spelled there, else the config file, else the
    default (the order :meth:`Settings.settings_customise_sources` reads them in)."""
    env = next((k for k in os.environ if k.upper() == "RETRIEVAL_RERANKER_MODEL"), None)
    config = os.environ.get(CONFIG_FILE_ENV)
    if not given and env:
        return f"{env}=", ""
    if not given and config:
        return "reranker_model = ", f" in {config}"
    return "reranker_model=", ""


def _unparsed_variable(message: str) -> str:
    """``NAME='value'`` of the environment variable behind pydantic-settings' "error parsing
    value for field X": the first ``RETRIEVAL_X...`` whose value is not JSON (the field's name
    when none is found)."""
    field = re.search(r'field "([^"]+)"', message)
    prefix = f"RETRIEVAL_{field.group(1).upper()}" if field else "RETRIEVAL_"
    for name, value in sorted(os.environ.items()):
        if not name.upper().startswith(prefix):
            continue
        try:
            json.loads(value)
        except ValueError:
            return f"{name}={value!r}"
    return prefix


def read_settings(cls: type[Settings], **overrides: Any) -> Settings:
    """``cls(**overrides)`` with the environment and the config file, their errors as one
    line each (InvalidRequestError): the setting's environment variable or config key, what
    is wrong and the value given; a config file that does not parse, with its line."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        env = "RETRIEVAL_" + "__".join(part.upper() for part in loc)
        where = f"{env} (or {'.'.join(loc)} in the config file)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InvalidRequestError(
            f"invalid setting {where}: {error['msg']}, got {error.get('input')!r}{more}"
        ) from None
    except SettingsError as exc:  # a list or mapping value that is not JSON
        raise InvalidRequestError(
            f"invalid setting {_unparsed_variable(str(exc))}: a list or mapping setting is "
            """written as JSON, e.g. '["a", "b"]' or '{"key": "value"}'"""
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRequestError(
            f"the config file {os.environ.get(CONFIG_FILE_ENV)} ({CONFIG_FILE_ENV}) is not "
            f"valid TOML: {exc}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(
            f"the config file {os.environ.get(CONFIG_FILE_ENV)} ({CONFIG_FILE_ENV}) cannot be "
            f"read: {exc}"
        ) from None


class Settings(BaseSettings):
    """Root configuration of retrieval-mcp."""

    model_config = SettingsConfigDict(
        env_prefix="RETRIEVAL_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    store_path: Path = Field(default_factory=default_store_path)
    """Directory of the embedded Qdrant Edge store (ignored when qdrant_url is set)."""
    qdrant_url: str | None = None
    """URL of a Qdrant server or cluster; when set, the embedded store is not used."""
    qdrant_api_key: SecretStr | None = None
    qdrant_cluster: QdrantClusterSettings = Field(default_factory=QdrantClusterSettings)
    """Shards, replicas and tenant shard keys of collections created on a Qdrant server."""
    disk_reserve_mb: int = Field(default=256, ge=0)
    """Free space (MiB) the embedded store keeps on its file system: a write that would leave
    less is refused with a one-line error instead of letting the engine's memory-mapped files
    hit a full disk (which kills the process with SIGBUS). The engine grows its files in 32 MiB
    steps and one write can grow the WAL, the vectors, the payload and an index at once; 256 MiB
    covers that with room for the optimizer. A batch's own estimate times four counts when it is
    larger (see server/retrieval/disk_space.py). 0 switches the check off."""

    embedding_model: str = BUNDLED_EMBEDDING_MODEL
    """Sentence-transformers model id or local path; the default loads the bundled weights."""
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    query_cache_size: int = Field(default=2048, ge=0)
    device: str = "cpu"
    torch_threads: int = Field(default=0, ge=0, le=256)
    """Intra-op CPU threads for model inference; 0 keeps torch's default (one per core).
    1 keeps query latency steady when other processes keep the cores busy."""

    reranker_model: str = DEFAULT_RERANKER_MODEL
    """Cross-encoder id or local path, or ``none`` (also ``off``, ``false``, empty) to disable
    reranking; read by :func:`parse_reranker`."""
    rerank_batch_size: int = Field(default=8, ge=1, le=1024)
    """Pairs per cross-encoder forward pass; small batches keep activation memory low."""

    inference_backend: Literal["torch", "onnx", "openvino"] = "openvino"
    """Runtime of the embedder and the cross-encoder. ``openvino`` (default, fastest measured)
    and ``onnx`` (onnxruntime) run an ONNX export of the local weights, made on first use and
    cached under ``model_cache_path``; ``torch`` runs sentence-transformers, and is the
    fallback (logged once) when an export or its runtime is unavailable."""
    model_cache_path: Path = Field(default_factory=default_model_cache_path)
    """Directory of the exported models, keyed by weights hash, backend and library versions."""

    max_query_chars: int = Field(default=2000, ge=1)
    max_top_k: int = Field(default=50, ge=1)
    collapse_duplicates: bool = True
    """Hits whose text is identical (copies of a file, vendored code, boilerplate) collapse into
    the best-ranked one, which lists the others in ``also_in``, so copies never fill top_k."""

    domains: dict[Domain, DomainSettings] = Field(default_factory=_default_domains)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)

    mcp: McpServerSettings = Field(default_factory=McpServerSettings)
    """MCP server options (``RETRIEVAL_MCP__TENANT``, ``RETRIEVAL_MCP__TOKENS_FILE``, ...)."""
    concurrency: ConcurrencySettings = Field(default_factory=ConcurrencySettings)
    """Concurrent clients: query batching, bounded work with backpressure, timeouts."""

    store_tuning: StoreTuning = Field(default_factory=StoreTuning)
    """Layout of new collections (vectors on disk, int8 quantization, HNSW) and the quantized
    search's rescoring (``RETRIEVAL_STORE_TUNING__OVERSAMPLING``, ...; store_tuning.py)."""

    _reranker_source: tuple[str, str] = PrivateAttr(default=("reranker_model=", ""))
    """The text before and after ``reranker_model``'s value in :attr:`reranker_off_note`."""

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self._reranker_source = _reranker_value_source("reranker_model" in values)

    @field_validator("domains", mode="before")
    @classmethod
    def _merge_domain_defaults(cls, value: Any) -> Any:
        """A partial override (one domain, one field) keeps every other default."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {d.value: s.model_dump() for d, s in _default_domains().items()}
        for key, override in value.items():
            name = key.value if isinstance(key, Domain) else str(key)
            if isinstance(override, BaseModel):
                override = override.model_dump()
            base = merged.get(name, {})
            merged[name] = _deep_merge(base, override) if isinstance(override, dict) else override
        return merged

    @field_validator("store_path", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        """'~' expanded: MCP clients pass a config's env values verbatim, with no shell to
        expand it, and a literal '~' directory would appear in the client's working dir."""
        return value.expanduser()

    @classmethod
    def from_cli(cls, args: object) -> Settings:
        """Settings from the environment and the config file, with the command line's
        ``--store``, ``--reranker``, ``--tokens-file``, ``--allow-write``, ``--root``
        (added to the configured roots) and ``--oauth-*`` applied where given: the one way
        every ``retrieval-mcp`` command builds its settings."""
        overrides: dict[str, Any] = {}
        store, reranker = getattr(args, "store", None), getattr(args, "reranker", None)
        if store is not None:
            if not store.strip():
                raise InvalidRequestError("--store is empty: give the store's folder")
            overrides["store_path"] = Path(store)
        if reranker is not None:  # '' is a value (reranking off), not an absent flag
            overrides["reranker_model"] = reranker
        settings = read_settings(cls, **overrides)
        if reranker is not None:
            settings._reranker_source = ("--reranker ", "")
        tokens_file = getattr(args, "tokens_file", None)
        if tokens_file:
            settings.mcp.tokens_file = Path(tokens_file)
        if getattr(args, "allow_write", False):
            settings.mcp.allow_write = True
        roots = getattr(args, "root", None)
        if roots:
            settings.mcp.roots = [*settings.mcp.roots, *(Path(r) for r in roots)]
        for name in ("issuer", "resource", "tenant_claim", "jwks_url"):
            value = getattr(args, f"oauth_{name}", None)  # serve --oauth-*
            if value:
                setattr(settings.mcp.oauth, name, value)
        return settings

    @property
    def reranker_model_id(self) -> str | None:
        """The cross-encoder to load (id or path, whitespace stripped), or None when reranking
        is off; see :func:`parse_reranker`."""
        return parse_reranker(self.reranker_model)

    @property
    def reranker_enabled(self) -> bool:
        """False when ``reranker_model`` switches reranking off (``none``, ``off``, empty...)."""
        return self.reranker_model_id is not None

    @property
    def reranker_off_note(self) -> str:
        """Why results are not reranked when :attr:`reranker_enabled` is False: where the value
        came from (``--reranker``, ``RETRIEVAL_RERANKER_MODEL``, the config file or a
        constructor argument) and the value as given, quoted so whitespace shows, e.g.
        ``reranking is off (--reranker ' ')``. The one wording searcher, runtime and doctor
        use."""
        before, after = self._reranker_source
        return f"reranking is off ({before}{self.reranker_model!r}{after})"

    @property
    def reranker_remedy(self) -> str:
        """What to change when the configured cross-encoder cannot load, naming the place its
        value came from (``--reranker``, the environment variable as spelled, the config file;
        ``RETRIEVAL_RERANKER_MODEL`` for the default), e.g. ``pass --reranker a local
        cross-encoder directory, or --reranker none to silence this``."""
        before, after = self._reranker_source
        if before.startswith("--"):
            flag = before.strip()
            return f"pass {flag} a local cross-encoder directory, or {flag} none to silence this"
        given = before != "reranker_model="  # the environment or the config file
        place = before.rstrip(" =") + after if given else "RETRIEVAL_RERANKER_MODEL"
        return f"set {place} to a local cross-encoder directory, or to 'none' to silence this"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            path = Path(config_file).expanduser()
            if not path.is_file():  # pydantic-settings reads a missing file as empty
                raise InvalidRequestError(
                    f"{CONFIG_FILE_ENV}={config_file!r}: no such file (unset it or fix the path)"
                )
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
