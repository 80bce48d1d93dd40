"""OAuth 2.1 resource-server mode: bearer JWTs from one authorization server.

:class:`JwtVerifier` is the SDK's ``TokenVerifier``: a token is accepted when its signature
verifies with one of the issuer's keys (asymmetric algorithms only, the key's type and ``alg``
matching the token's), it is within ``exp``/``nbf`` (with a small leeway), its ``iss`` is the
issuer, its ``aud`` names this server's resource URL (RFC 8707), and it carries the tenant claim.
The tenant comes from that claim alone; tool arguments never name one. Scopes map onto the
tokens file's permissions: ``read_scope`` grants ``read``, ``write_scope`` grants ``read`` and
``write`` (server/auth.py). Each refusal is one line: logged, and given to the client as the
401's ``error_description`` (server/oauth_http.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt.api_jwk import PyJWK
from mcp.server.auth.provider import AccessToken

from server.auth import WRITE_SCOPE, scopes_granted
from server.errors import InvalidRequestError
from server.oauth_http import note_rejection
from server.oauth_keys import JwksCache, KeyLookupError
from server.settings import OAuthSettings
from server.tenants import validate_tenant

logger = logging.getLogger(__name__)

_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC"}
"""The JWK ``kty`` each algorithm family verifies with."""
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class TokenRejected(Exception):
    """Why a token is refused, in one line."""


@dataclass(frozen=True)
class OAuthConfig:
    """The resolved OAuth settings of a running server (``resource`` filled in)."""

    settings: OAuthSettings
    issuer: str
    resource: str

    @classmethod
    def resolve(cls, settings: OAuthSettings, served_url: str) -> OAuthConfig:
        """``settings`` with the resource URL defaulted to ``served_url`` (the MCP endpoint
        as served). InvalidRequestError (one line) for an unusable issuer or URL."""
        if not settings.issuer:
            raise InvalidRequestError("OAuth needs an issuer (--oauth-issuer URL)")
        resource = settings.resource or served_url
        for name, url in (("issuer", settings.issuer), ("resource", resource)):
            _check_url(name, url)
        if settings.jwks_url:
            _check_url("jwks_url", settings.jwks_url)
        return cls(settings=settings, issuer=settings.issuer, resource=resource)

    @property
    def audiences(self) -> list[str]:
        """Accepted ``aud`` values: the configured audience, else the resource URL with and
        without a trailing slash."""
        if self.settings.audience:
            return [self.settings.audience]
        bare = self.resource.rstrip("/")
        return [bare, bare + "/"]


def _check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f"OAuth {name} {url!r} is not an http(s) URL")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise InvalidRequestError(
            f"OAuth {name} {url!r} must use https (plain http only on this machine)"
        )


class JwtVerifier:
    """The SDK's TokenVerifier for JWTs of ``config.issuer``; the AccessToken carries the
    tenant in ``claims['tenant']`` and the permissions ``read``/``write`` plus the granting
    scope names in ``scopes``."""

    def __init__(self, config: OAuthConfig, keys: JwksCache | None = None) -> None:
        self.config = config
        s = config.settings
        self.keys = keys or JwksCache(
            config.issuer,
            jwks_url=s.jwks_url,
            timeout=s.http_timeout_seconds,
            max_age=s.jwks_cache_seconds,
            min_refresh=s.jwks_min_refresh_seconds,
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        """The AccessToken of a valid token, else None (the reason logged and noted for the
        401 response)."""
        try:
            return await self.verify(token)
        except TokenRejected as exc:
            logger.info("bearer token refused: %s", exc)
            note_rejection(str(exc))
            return None

    async def verify(self, token: str) -> AccessToken:
        """The AccessToken of a valid token; TokenRejected (one line) otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is not a JWT") from None
        alg = header.get("alg")
        allowed = self.config.settings.algorithms
        if alg not in allowed:
            raise TokenRejected(f"token algorithm {alg!r} is not accepted ({', '.join(allowed)})")
        try:
            jwk = await self.keys.key(header.get("kid"))
        except KeyLookupError as exc:
            raise TokenRejected(str(exc)) from None
        claims = self._decode(token, _public_key(jwk, str(alg)), str(alg))
        return self._access_token(claims)

    def _decode(self, token: str, key: PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.config.audiences,
                issuer=self.config.issuer,
                leeway=self.config.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected(
                f"the token's audience is not this server ({self.config.audiences[0]})"
            ) from None
        except jwt.InvalidIssuerError:
            raise TokenRejected(f"the token's issuer is not {self.config.issuer}") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRejected(f"invalid token ({exc})") from None
        return claims

    def _access_token(self, claims: dict[str, Any]) -> AccessToken:
        s = self.config.settings
        tenant = claims.get(s.tenant_claim)
        try:
            validate_tenant(tenant if isinstance(tenant, str) else "")
        except InvalidRequestError:
            raise TokenRejected(f"the token has no valid {s.tenant_claim!r} claim") from None
        presented = _scope_claim(claims)
        granted = [name for name in (s.read_scope, s.write_scope) if name in presented]
        permission = WRITE_SCOPE if s.write_scope in presented else "read"
        # write implies read (as with the tokens file); the SDK's required scope is read_scope
        scopes = scopes_granted(permission) + ([s.read_scope] if granted else []) + granted
        subject = claims.get("sub")
        client = claims.get("client_id") or claims.get("azp") or subject or "oauth"
        return AccessToken(
            token=f"jwt:{claims.get('jti') or subject or ''}",  # the bearer secret is not kept
            client_id=str(client),
            scopes=sorted(set(scopes)) if granted else [],
            # the SDK refuses an AccessToken past expires_at with no leeway of its own
            expires_at=int(claims["exp"] + s.leeway_seconds),
            resource=self.config.resource,
            subject=str(subject) if subject is not None else None,
            claims={"tenant": tenant, "iss": self.config.issuer, "write_scope": s.write_scope},
        )


def _scope_claim(claims: dict[str, Any]) -> set[str]:
    """Scopes of a token: RFC 9068's space-separated ``scope``, or a ``scp`` list (Okta,
    Azure AD)."""
    scope = claims.get("scope", claims.get("scp"))
    if isinstance(scope, str):
        return set(scope.split())
    if isinstance(scope, list):
        return {item for item in scope if isinstance(item, str)}
    return set()


def _public_key(jwk: dict[str, Any], alg: str) -> PyJWK:
    """The JWK as a verification key for ``alg``; TokenRejected when the key is of another
    type or pinned to another algorithm (an RSA key never verifies an ES256 token, and a
    public key never serves as an HMAC secret)."""
    if _KEY_TYPES.get(alg[:2]) != jwk.get("kty") or jwk.get("alg", alg) != alg:
        raise TokenRejected(f"the issuer's key {jwk.get('kid')!r} does not sign {alg}")
    try:
        return PyJWK(jwk, algorithm=alg)
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"the issuer's key {jwk.get('kid')!r} is unusable ({exc})") from None
