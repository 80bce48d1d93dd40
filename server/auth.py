"""Bearer tokens for the HTTP transports: a tokens file of hashes, each bound to one tenant.

A token reads ``rmcp_<id>_<secret>``. The file keeps the id, the tenant, the scope (``read``
or ``write``; records written before scopes existed are ``read``), a random salt and
``sha256(salt + secret)``, never the token; the secret is 256 random bits, so a fast hash is
enough (slow password hashes guard low-entropy secrets, and would cost every request). The
file is re-read when it changes, so ``token add`` / ``token revoke`` apply to a running
server at its next request.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from server.errors import InvalidRequestError, RetrievalError
from server.tenants import validate_tenant

TOKEN_PREFIX = "rmcp"
_TOKEN_RE = re.compile(rf"^{TOKEN_PREFIX}_([0-9a-f]{{8}})_([A-Za-z0-9_-]{{20,}})$")
FILE_VERSION = 1
"""Scopes were added as an optional field: version-1 files without them still read as before."""

Scope = Literal["read", "write"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
WRITE_SCOPE: Scope = "write"


def scopes_granted(scope: str) -> list[str]:
    """The OAuth-style scopes a token of ``scope`` carries: ``write`` implies ``read``."""
    return ["read", "write"] if scope == WRITE_SCOPE else ["read"]


@dataclass(frozen=True)
class TokenRecord:
    """One issued token as stored: no secret, only its salted hash."""

    id: str
    tenant: str
    salt: str
    hash: str
    created_at: str
    label: str = ""
    scope: str = "read"
    """``read`` (search and browse) or ``write`` (also the write tools when enabled)."""


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


class TokenFile:
    """Reads and writes the tokens file (0600, replaced atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._cache: dict[str, TokenRecord] = {}
        self._stamp: tuple[int, int] | None = None

    # -- reading -------------------------------------------------------------------------------

    def _load_file(self) -> dict[str, TokenRecord]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RetrievalError(f"cannot read the tokens file {self.path}: {exc}") from None
        records = {}
        known = set(TokenRecord.__dataclass_fields__)
        for raw in data.get("tokens", []):
            # keys a newer version may add are ignored, not fatal to every request
            record = TokenRecord(**{k: v for k, v in raw.items() if k in known})
            if record.scope not in SCOPES:  # unknown scope: the least privilege
                record = TokenRecord(**{**record.__dict__, "scope": "read"})
            records[record.id] = record
        return records

    def records(self) -> dict[str, TokenRecord]:
        """Current records by id (re-read when the file changed)."""
        with self._lock:
            try:
                stat = self.path.stat()
                stamp: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp or stamp is None:
                self._cache = self._load_file()
                self._stamp = stamp
            return dict(self._cache)

    def verify(self, token: str) -> TokenRecord | None:
        """The record a presented token belongs to, or None (constant-time hash compare)."""
        match = _TOKEN_RE.match(token.strip())
        if not match:
            return None
        record = self.records().get(match.group(1))
        if record is None:
            return None
        if not hmac.compare_digest(_digest(record.salt, match.group(2)), record.hash):
            return None
        return record

    # -- writing -------------------------------------------------------------------------------

    def _write(self, records: dict[str, TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": FILE_VERSION,
            "tokens": [record.__dict__ for record in records.values()],
        }
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(payload, handle, indent=2)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def add(self, tenant: str, label: str = "", scope: str = "read") -> tuple[str, TokenRecord]:
        """Issue a token for ``tenant`` with ``scope`` (``read`` or ``write``); returns the
        token (shown once) and its record. InvalidRequestError for another scope."""
        validate_tenant(tenant)
        if scope not in SCOPES:
            raise InvalidRequestError(f"unknown scope {scope!r}; expected one of: read, write")
        with self._lock:
            records = self._load_file()
            token_id = secrets.token_hex(4)
            while token_id in records:
                token_id = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            record = TokenRecord(
                id=token_id,
                tenant=tenant,
                salt=salt,
                hash=_digest(salt, secret),
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                label=label,
                scope=scope,
            )
            records[token_id] = record
            self._write(records)
            self._stamp = None
        return f"{TOKEN_PREFIX}_{token_id}_{secret}", record

    def revoke(self, token_or_id: str) -> TokenRecord:
        """Remove a token (by id, or by the token itself); NotFound-style error if absent."""
        match = _TOKEN_RE.match(token_or_id.strip())
        token_id = match.group(1) if match else token_or_id.strip()
        with self._lock:
            records = self._load_file()
            record = records.pop(token_id, None)
            if record is None:
                raise InvalidRequestError(f"no token with id {token_id!r} in {self.path}")
            self._write(records)
            self._stamp = None
        return record


class TokenFileVerifier:
    """The SDK's TokenVerifier over a tokens file: the token's tenant rides in the AccessToken."""

    def __init__(self, tokens: TokenFile) -> None:
        self.tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            record = self.tokens.verify(token)
        except RetrievalError:
            return None  # an unreadable file admits nobody
        if record is None:
            return None
        return AccessToken(
            token=f"{TOKEN_PREFIX}_{record.id}",  # never keep the secret in memory longer
            client_id=record.id,
            scopes=scopes_granted(record.scope),
            subject=record.tenant,
            claims={"tenant": record.tenant},
        )


def request_tenant(request: Any) -> str | None:
    """The tenant of the bearer token that authenticated this HTTP request (None if none)."""
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return None
    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        tenant = (user.access_token.claims or {}).get("tenant")
        return str(tenant) if tenant else None
    return None


def request_scopes(request: Any) -> list[str] | None:
    """The scopes of the bearer token that authenticated this HTTP request; None when the
    request carries no token (stdio, in-process: the launching user)."""
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return None
    user = scope.get("user")
    if isinstance(user, AuthenticatedUser):
        return list(user.access_token.scopes)
    return None


def write_refusal(request: Any) -> str:
    """Why this request's token may not write, and how to get one that may (one line)."""
    scope = getattr(request, "scope", None)
    user = scope.get("user") if isinstance(scope, dict) else None
    if isinstance(user, AuthenticatedUser):
        oauth_scope = (user.access_token.claims or {}).get("write_scope")
        if oauth_scope:  # an OAuth token (server/oauth.py)
            return f"this token may only read; writing needs a token with the scope {oauth_scope}"
    return (
        "this token may only read; writing needs a token made with "
        "`retrieval-mcp token add --scope write`"
    )
