"""A local OAuth authorization server for tests: RFC 8414 (or OpenID) metadata and a JWKS
served over HTTP on 127.0.0.1 from a thread, signing keys generated here, tokens signed here.

It counts requests per path, so tests see when the resource server fetches keys.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
ISSUER_PATH = "/realms/test"
"""An issuer with a path: RFC 8414 puts the well-known segment before it."""


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(kid: str, key: PrivateKey) -> dict[str, Any]:
    """The public half of ``key`` as a JWK with ``kid``, ``use: sig`` and its ``alg``."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "RS256"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "ES256"
    return {**jwk, "kid": kid, "use": "sig"}


class LocalIssuer:
    """Serves ``/.well-known/oauth-authorization-server/realms/test`` (or, with
    ``flavour='openid'``, ``/realms/test/.well-known/openid-configuration``) and
    ``/realms/test/jwks``; ``published`` names the kids in the JWKS."""

    def __init__(self, flavour: str = "oauth") -> None:
        self.keys: dict[str, PrivateKey] = {}
        self.published: list[str] = []
        self.hits: Counter[str] = Counter()
        self.flavour = flavour
        self.advertised_jwks: str | None = None
        """A jwks_uri the metadata names instead of the real one."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}{ISSUER_PATH}"
        self.jwks_path = f"{ISSUER_PATH}/jwks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocalIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_key(self, kid: str, key: PrivateKey | None = None, publish: bool = True) -> None:
        self.keys[kid] = key or rsa_key()
        if publish:
            self.published.append(kid)

    @property
    def metadata_path(self) -> str:
        if self.flavour == "openid":
            return f"{ISSUER_PATH}/.well-known/openid-configuration"
        return f"/.well-known/oauth-authorization-server{ISSUER_PATH}"

    def _documents(self) -> dict[str, Any]:
        origin = self.issuer.removesuffix(ISSUER_PATH)
        return {
            self.metadata_path: {
                "issuer": self.issuer,
                "jwks_uri": self.advertised_jwks or origin + self.jwks_path,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "response_types_supported": ["code"],
            },
            self.jwks_path: {"keys": [public_jwk(k, self.keys[k]) for k in self.published]},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.hits[self.path] += 1
                document = issuer._documents().get(self.path)
                body = json.dumps(document).encode()
                self.send_response(404 if document is None else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def token(
        self,
        kid: str,
        *,
        alg: str | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT signed with key ``kid``; claims default to a valid read token of tenant
        ``acme`` (``aud`` must be given); a claim passed as None is left out."""
        now = int(time.time())
        key = self.keys[kid]
        payload = {
            "iss": self.issuer,
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            "tenant": "acme",
            "scope": "retrieval:read",
            "client_id": "test-client",
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        algorithm = alg or ("RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(
            payload, key, algorithm=algorithm, headers={"kid": kid, **(headers or {})}
        )
