"""The authorization server's signing keys: its JWKS, found through its metadata and cached.

Discovery follows RFC 8414 (``/.well-known/oauth-authorization-server`` inserted before the
issuer's path), then OpenID Connect discovery (``/.well-known/openid-configuration`` appended);
the metadata's ``issuer`` must equal the configured one (RFC 8414 section 3.3), else a
look-alike document could name someone else's keys. Keys are re-fetched when they are older
than ``max_age`` and when a token names an unknown ``kid`` (key rotation), the latter at most
once per ``min_refresh`` so tokens with made-up key ids cannot make the server hammer the issuer.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

logger = logging.getLogger(__name__)


class KeyLookupError(Exception):
    """No usable key for a token: the message is one line, fit for a 401's description."""


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be: RFC 8414's path-inserted URL, then OpenID's."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    origin = f"{parts.scheme}://{parts.netloc}"
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]


async def _get_json(client: httpx.AsyncClient, url: str) -> Any:
    response = await client.get(url, headers={"Accept": "application/json"})
    response.raise_for_status()
    return response.json()


def _safe_url(url: str) -> bool:
    """https, or plain http to this machine only (keys fetched in clear text can be swapped)."""
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    return parts.scheme == "https" or (parts.scheme == "http" and loopback)


class JwksCache:
    """The signing keys of one issuer by ``kid``, as raw JWK dicts (``use: enc`` keys left
    out). ``timeout`` (seconds) bounds each HTTP request; errors raise :class:`KeyLookupError`."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str | None = None,
        timeout: float = 5.0,
        max_age: float = 3600.0,
        min_refresh: float = 30.0,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.timeout = timeout
        self.max_age = max_age
        self.min_refresh = min_refresh
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._error: str | None = None
        self._lock = anyio.Lock()
        self.fetches = 0
        """Successful JWKS fetches so far."""

    async def key(self, kid: str | None) -> dict[str, Any]:
        """The JWK for ``kid`` (None: the only key of a one-key set), fetching or refreshing
        the set as needed."""
        now = time.monotonic()
        if self._due(now, kid):
            await self._refresh(since=now)
        found = self._find(kid)
        if found is None:
            if self._error is not None:
                raise KeyLookupError(self._error)
            raise KeyLookupError(
                f"the issuer has no signing key {kid!r}"
                if kid
                else "the token names no key (kid) and the issuer has several"
            )
        return found

    @property
    def key_count(self) -> int:
        """Signing keys held now."""
        return len(self._keys)

    async def refresh_now(self) -> None:
        """Fetch the keys at once (``doctor``); KeyLookupError with the one-line reason when
        they cannot be fetched."""
        await self._refresh(since=time.monotonic())
        if self._error is not None:
            raise KeyLookupError(self._error)

    def _due(self, now: float, kid: str | None) -> bool:
        """A fetch is due for keys never fetched, too old, or missing ``kid`` (a rotation);
        after the first attempt, at most one per ``min_refresh`` (failures included)."""
        if self._attempted_at is None:
            return True
        if now - self._attempted_at < self.min_refresh:
            return False
        expired = self._fetched_at is None or now - self._fetched_at >= self.max_age
        return expired or self._find(kid) is None

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self, since: float) -> None:
        async with self._lock:
            if self._attempted_at is not None and self._attempted_at >= since:
                return  # a concurrent request fetched while this one waited: use its result
            self._attempted_at = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    url = self.jwks_url or await self._discover(client)
                    keys = _signing_keys(await _get_json(client, url))
            except (httpx.HTTPError, ValueError, KeyLookupError) as exc:
                # the old keys stay in use; the next attempt waits min_refresh
                self._error = f"cannot fetch the issuer's keys ({exc})"
                logger.warning("%s", self._error)
                return
            self._keys, self._fetched_at, self._error = keys, self._attempted_at, None
            self.fetches += 1
            logger.info("fetched %d signing keys of %s", len(keys), self.issuer)

    async def _discover(self, client: httpx.AsyncClient) -> str:
        """The issuer's ``jwks_uri`` from its metadata (cached for the process)."""
        problems = []
        for url in metadata_urls(self.issuer):
            try:
                metadata = await _get_json(client, url)
            except (httpx.HTTPError, ValueError) as exc:
                problems.append(f"{url}: {exc}")
                continue
            if not isinstance(metadata, dict) or metadata.get("issuer") != self.issuer:
                problems.append(f"{url}: names another issuer")
                continue
            jwks_uri = metadata.get("jwks_uri")
            if isinstance(jwks_uri, str) and _safe_url(jwks_uri):
                self.jwks_url = jwks_uri
                return jwks_uri
            problems.append(f"{url}: no https jwks_uri")
        raise ValueError("no usable issuer metadata (" + "; ".join(problems) + ")")


def _signing_keys(document: Any) -> dict[str | None, dict[str, Any]]:
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise KeyLookupError("the issuer's JWKS has no 'keys' list")
    usable = [
        key
        for key in keys
        if isinstance(key, dict) and key.get("kty") in ("RSA", "EC") and key.get("use") != "enc"
    ]
    if not usable:
        raise KeyLookupError("the issuer's JWKS has no RSA or EC signing key")
    return {key.get("kid"): key for key in usable}
