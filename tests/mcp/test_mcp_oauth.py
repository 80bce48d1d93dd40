"""OAuth 2.1 resource-server mode over the real HTTP transports, against a local issuer.

The invariant: a request acts for a tenant only with a JWT that the configured issuer signed
(with a published asymmetric key), that is within its validity window, that names this server
as its audience and carries the tenant claim; the tenant is the claim's and nothing in a tool
call can change it. Every refusal is a 401 (403 for a missing scope) with a one-line reason.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.types import Tool
from mcp_support import (
    HTTP_ACCEPT,
    SECRET_WORD,
    TENANTS,
    cli_env,
    error_text,
    free_port,
    http_server,
    index_corpus,
    initialize_request,
    open_retrieval,
    serve_command,
    server_settings,
    validate_structured,
    wait_listening,
)
from oauth_support import LocalIssuer, ec_key, rsa_key

from server.cli import main
from server.oauth import JwtVerifier, OAuthConfig, TokenRejected
from server.retrieval.edge_store import EdgeStore
from server.retrieval.embedder import DenseEmbedder
from server.runtime import ServerRuntime
from server.settings import OAuthSettings

pytestmark = pytest.mark.anyio

INIT = initialize_request()
ACCEPT = HTTP_ACCEPT


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer() as local:
        local.add_key("k1", rsa_key())
        local.add_key("e1", ec_key())
        local.add_key("rogue", rsa_key(), publish=False)
        yield local


@pytest.fixture(scope="module")
def runtime(
    tmp_path_factory: pytest.TempPathFactory, embedder: DenseEmbedder, issuer: LocalIssuer
) -> Iterator[ServerRuntime]:
    """The two-tenant corpus in a store of its own (add_text writes to it), writes enabled,
    OAuth on; keys re-fetched on every unknown kid (rotation is tested here)."""
    path = tmp_path_factory.mktemp("oauth") / "store"
    store = EdgeStore(path)
    oauth = {"issuer": issuer.issuer, "jwks_min_refresh_seconds": 0}
    settings = server_settings(path, mcp={"allow_write": True, "oauth": oauth})
    index_corpus(open_retrieval(store, settings, embedder))
    yield ServerRuntime(settings, store=store, embedder=embedder)
    store.close()


@pytest.fixture(scope="module", params=["streamable-http", "sse"])
def served(request: pytest.FixtureRequest, runtime: ServerRuntime) -> Iterator[tuple[str, str]]:
    """(transport, endpoint URL) of the server; the endpoint is also the tokens' audience."""
    with http_server(runtime, None, request.param) as base:
        yield request.param, base + ("/sse" if request.param == "sse" else "/mcp")


@pytest.fixture(scope="module")
def mcp_url(runtime: ServerRuntime) -> Iterator[str]:
    with http_server(runtime, None, "streamable-http") as base:
        yield base + "/mcp"


def connect(transport: str, url: str, token: str) -> Client:
    headers = {"Authorization": f"Bearer {token}"}
    if transport == "sse":
        return Client(sse_client(url, headers=headers))
    return Client(streamable_http_client(url, http_client=create_mcp_http_client(headers=headers)))


async def tool_map(client: Client) -> dict[str, Tool]:
    return {t.name: t for t in (await client.list_tools()).tools}


async def probe(transport: str, url: str, token: str | None) -> httpx.Response:
    """One unauthenticated-or-not request as a client's first request would be."""
    headers = {**ACCEPT, **({"Authorization": f"Bearer {token}"} if token is not None else {})}
    async with httpx.AsyncClient(timeout=30) as http:
        if transport == "sse":
            async with http.stream("GET", url, headers=headers) as response:
                await response.aread()
                return response
        return await http.post(url, json=INIT, headers=headers)


def metadata_url(url: str) -> str:
    origin, path = url.rsplit("/", 1)
    return f"{origin}/.well-known/oauth-protected-resource/{path}"


# -- accepted tokens ------------------------------------------------------------------------------


async def test_a_valid_token_acts_for_its_tenant_claim_only(
    served: tuple[str, str], issuer: LocalIssuer
) -> None:
    transport, url = served
    for tenant, kid in zip(TENANTS, ("k1", "e1"), strict=True):  # RS256 and ES256
        other = next(t for t in TENANTS if t != tenant)
        async with connect(transport, url, issuer.token(kid, aud=url, tenant=tenant)) as client:
            tools = await tool_map(client)
            stats = validate_structured(
                tools["index_stats"], await client.call_tool("index_stats", {})
            )
            assert stats["tenant"] == tenant
            found = validate_structured(
                tools["doc_search"],
                await client.call_tool("doc_search", {"query": SECRET_WORD[other]}),
            )
            assert found["hits"]
            assert all(hit["source"].startswith(f"/srv/{tenant}/") for hit in found["hits"])
            # the body cannot name another tenant: refused as an unknown argument, as with
            # the tokens file (the one-line wording of argument errors is issue 14 item 3)
            refused = await client.call_tool(
                "doc_search", {"query": SECRET_WORD[other], "tenant": other}
            )
            assert "tenant" in error_text(refused)
            assert SECRET_WORD[other] not in json.dumps(refused.structured_content or {})


async def test_protected_resource_metadata_names_the_issuer_and_scopes(
    served: tuple[str, str], issuer: LocalIssuer
) -> None:
    _, url = served
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(metadata_url(url))
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["resource"] == url
    assert metadata["authorization_servers"] == [issuer.issuer]
    assert metadata["scopes_supported"] == ["retrieval:read", "retrieval:write"]
    assert metadata["bearer_methods_supported"] == ["header"]


# -- refused tokens -------------------------------------------------------------------------------


def _none_token(issuer: LocalIssuer, aud: str) -> str:
    claims = {"iss": issuer.issuer, "aud": aud, "exp": int(time.time()) + 300, "tenant": "acme"}
    return jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})


def _hmac_with_public_key(issuer: LocalIssuer, aud: str) -> str:
    """The classic confusion attack: HS256 keyed with the issuer's public key."""
    public = (
        issuer.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = {"iss": issuer.issuer, "aud": aud, "exp": int(time.time()) + 300, "tenant": "acme"}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


REFUSALS: dict[str, tuple[Any, str]] = {
    "wrong audience": (
        lambda i, aud: i.token("k1", aud="http://127.0.0.1:9/mcp"),
        "audience is not this server",
    ),
    "expired": (lambda i, aud: i.token("k1", aud=aud, exp=int(time.time()) - 3600), "expired"),
    "not yet valid": (
        lambda i, aud: i.token("k1", aud=aud, nbf=int(time.time()) + 3600),
        "not valid yet",
    ),
    "no expiry": (lambda i, aud: i.token("k1", aud=aud, exp=None), "no 'exp' claim"),
    "wrong issuer": (
        lambda i, aud: i.token("k1", aud=aud, iss=i.issuer + "-other"),
        "issuer is not",
    ),
    "wrong signature": (
        lambda i, aud: i.token("rogue", aud=aud, headers={"kid": "k1"}),
        "signature does not verify",
    ),
    "unknown kid": (lambda i, aud: i.token("rogue", aud=aud), "no signing key 'rogue'"),
    "key of another type": (
        lambda i, aud: i.token("e1", aud=aud, headers={"kid": "k1"}),
        "does not sign ES256",
    ),
    "missing tenant claim": (lambda i, aud: i.token("k1", aud=aud, tenant=None), "'tenant'"),
    "invalid tenant claim": (
        lambda i, aud: i.token("k1", aud=aud, tenant="../globex"),
        "no valid 'tenant' claim",
    ),
    "alg none": (_none_token, "algorithm 'none' is not accepted"),
    "HS256 keyed with the public key": (
        _hmac_with_public_key,
        "algorithm 'HS256' is not accepted",
    ),
    "not a JWT": (lambda i, aud: "rmcp_00000000_" + "x" * 43, "not a JWT"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
async def test_refused_tokens_get_401_with_a_one_line_reason(
    served: tuple[str, str], issuer: LocalIssuer, case: str
) -> None:
    transport, url = served
    build, reason = REFUSALS[case]
    response = await probe(transport, url, build(issuer, url))
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="invalid_token"'), challenge
    assert f'resource_metadata="{metadata_url(url)}"' in challenge
    description = response.json()["error_description"]
    assert reason in description and reason in challenge
    assert "\n" not in description


async def test_no_token_gets_401_pointing_at_the_metadata(served: tuple[str, str]) -> None:
    transport, url = served
    response = await probe(transport, url, None)
    assert response.status_code == 401
    # RFC 6750 section 3.1: a request without credentials gets no error code
    challenge = response.headers["www-authenticate"]
    assert challenge == f'Bearer resource_metadata="{metadata_url(url)}"', challenge
    assert "error" not in response.json()


async def test_a_token_without_the_read_scope_gets_403(
    served: tuple[str, str], issuer: LocalIssuer
) -> None:
    transport, url = served
    for scope in ("profile email", None, "read"):  # "read" alone is not this server's scope
        response = await probe(transport, url, issuer.token("k1", aud=url, scope=scope))
        assert response.status_code == 403, (scope, response.text)
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        assert response.json()["error_description"] == "Required scope: retrieval:read"


# -- scopes onto read|write -----------------------------------------------------------------------


async def test_write_tools_need_the_write_scope(mcp_url: str, issuer: LocalIssuer) -> None:
    note = {"text": "The heliotrope rollout happens on Thursday.", "title": "Rollout"}
    reader = issuer.token("k1", aud=mcp_url, scope="retrieval:read", tenant="globex")
    async with connect("streamable-http", mcp_url, reader) as client:
        refused = error_text(await client.call_tool("add_text", note))
        assert refused.strip().endswith(
            ": this token may only read; writing needs a token with the scope retrieval:write"
        )
        assert "\n" not in refused.strip()
    writer = issuer.token("k1", aud=mcp_url, scope="retrieval:write", tenant="globex")
    async with connect("streamable-http", mcp_url, writer) as client:
        tools = await tool_map(client)
        validate_structured(tools["add_text"], await client.call_tool("add_text", note))
        # write implies read, and the note went to the claim's tenant
        found = validate_structured(
            tools["doc_search"], await client.call_tool("doc_search", {"query": "heliotrope"})
        )
        assert found["hits"][0]["text"].startswith("The heliotrope rollout")
    async with connect("streamable-http", mcp_url, issuer.token("k1", aud=mcp_url)) as client:
        tools = await tool_map(client)
        acme = validate_structured(
            tools["doc_search"], await client.call_tool("doc_search", {"query": "heliotrope"})
        )
        assert all("heliotrope" not in hit["text"] for hit in acme["hits"])


# -- keys -----------------------------------------------------------------------------------------


async def test_key_rotation_fetches_the_new_key_and_drops_the_old(
    mcp_url: str, issuer: LocalIssuer
) -> None:
    old = issuer.token("k1", aud=mcp_url)
    assert (await probe("streamable-http", mcp_url, old)).status_code == 200
    fetches = issuer.hits[issuer.jwks_path]
    saved = list(issuer.published)
    issuer.add_key("k2", rsa_key(), publish=False)
    issuer.published = ["k2", "e1"]  # the issuer rotates k1 out
    try:
        new = issuer.token("k2", aud=mcp_url)
        async with connect("streamable-http", mcp_url, new) as client:
            assert (await client.call_tool("index_stats", {})).structured_content is not None
        assert issuer.hits[issuer.jwks_path] == fetches + 1
        refused = await probe("streamable-http", mcp_url, old)
        assert refused.status_code == 401
        assert "no signing key 'k1'" in refused.json()["error_description"]
    finally:
        issuer.published = saved


def verifier_for(issuer: LocalIssuer, audience: str, **settings: Any) -> JwtVerifier:
    config = OAuthSettings(issuer=issuer.issuer, **settings)
    return JwtVerifier(OAuthConfig.resolve(config, audience))


def test_made_up_key_ids_fetch_the_keys_at_most_once_per_interval() -> None:
    audience = "http://127.0.0.1:8000/mcp"
    with LocalIssuer(flavour="openid") as issuer:
        issuer.add_key("k1", ec_key())
        verifier = verifier_for(issuer, audience)  # default: 30 s between refreshes

        async def burst() -> list[bool]:
            good = await verifier.verify_token(issuer.token("k1", aud=audience))
            results = [good is not None]
            for _ in range(20):
                issuer.add_key(f"x{uuid.uuid4().hex[:6]}", ec_key(), publish=False)
                forged = issuer.token(list(issuer.keys)[-1], aud=audience)
                results.append(await verifier.verify_token(forged) is not None)
            return results

        assert anyio.run(burst) == [True] + [False] * 20
        assert issuer.hits[issuer.jwks_path] == 1
        assert issuer.hits[issuer.metadata_path] == 1  # OpenID discovery, once


def test_a_token_within_the_leeway_is_accepted_by_the_server_too(
    mcp_url: str, issuer: LocalIssuer
) -> None:
    """The SDK checks ``expires_at`` again without leeway: the verifier's leeway must hold."""
    token = issuer.token("k1", aud=mcp_url, exp=int(time.time()) - 10)  # leeway is 30 s
    response = anyio.run(probe, "streamable-http", mcp_url, token)
    assert response.status_code == 200, response.text


def test_an_unreachable_issuer_or_a_look_alike_metadata_refuses_in_one_line() -> None:
    audience = "http://127.0.0.1:8000/mcp"
    with LocalIssuer() as issuer:
        issuer.add_key("k1", rsa_key())
        token = issuer.token("k1", aud=audience)
    # the issuer is gone: its port is closed
    gone = verifier_for(issuer, audience, http_timeout_seconds=2)
    with pytest.raises(TokenRejected, match=r"^cannot fetch the issuer's keys \(.*\)$"):
        anyio.run(gone.verify, token)
    with LocalIssuer() as other:
        other.add_key("k1", rsa_key())
        # metadata of another issuer at the configured issuer's address is not trusted
        impostor = OAuthSettings(issuer=other.issuer + "/", jwks_min_refresh_seconds=0)
        verifier = JwtVerifier(OAuthConfig.resolve(impostor, audience))
        with pytest.raises(TokenRejected, match="names another issuer"):
            anyio.run(verifier.verify, other.token("k1", aud=audience, iss=other.issuer + "/"))
        assert other.hits[other.jwks_path] == 0
        # keys are never fetched in clear text from another machine
        other.advertised_jwks = "http://idp.example/jwks"
        cleartext = verifier_for(other, audience)
        with pytest.raises(TokenRejected, match="no https jwks_uri"):
            anyio.run(cleartext.verify, other.token("k1", aud=audience))
        # with jwks_url the metadata is not consulted at all
        direct = verifier_for(other, audience, jwks_url=other.issuer + "/jwks")
        assert anyio.run(direct.verify, other.token("k1", aud=audience)).subject == "user-1"


PROPERTY_AUDIENCE = "http://127.0.0.1:8000/mcp"


@pytest.fixture(scope="module")
def property_issuer() -> Iterator[tuple[LocalIssuer, JwtVerifier]]:
    with LocalIssuer() as issuer:
        issuer.add_key("k1", rsa_key())
        yield issuer, verifier_for(issuer, PROPERTY_AUDIENCE)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    iss_ok=st.booleans(),
    aud_ok=st.booleans(),
    exp_ok=st.booleans(),
    tenant=st.sampled_from(["acme", "globex", "", "a b", None, 7]),
    scope=st.sampled_from(["retrieval:read", "retrieval:write", "openid retrieval:read", ""]),
)
def test_a_token_is_accepted_exactly_when_every_check_holds(
    property_issuer: tuple[LocalIssuer, JwtVerifier],
    iss_ok: bool,
    aud_ok: bool,
    exp_ok: bool,
    tenant: Any,
    scope: str,
) -> None:
    issuer, verifier = property_issuer
    now = int(time.time())
    token = issuer.token(
        "k1",
        iss=issuer.issuer if iss_ok else issuer.issuer + "x",
        aud=PROPERTY_AUDIENCE if aud_ok else "http://127.0.0.1:8000/other",
        exp=now + 120 if exp_ok else now - 120,
        tenant=tenant,
        scope=scope or None,
    )
    access = anyio.run(verifier.verify_token, token)
    valid_tenant = tenant in ("acme", "globex")
    assert (access is not None) == (iss_ok and aud_ok and exp_ok and valid_tenant)
    if access is not None:
        assert access.claims is not None and access.claims["tenant"] == tenant
        assert access.resource == PROPERTY_AUDIENCE
        granted = bool(scope)
        assert ("read" in access.scopes) == granted
        assert ("retrieval:read" in access.scopes) == granted
        assert ("write" in access.scopes) == ("retrieval:write" in scope)


# -- configuration --------------------------------------------------------------------------------


def test_serve_refuses_unsafe_or_mixed_oauth_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["serve", "--transport", "streamable-http", "--store", str(tmp_path / "store")]
    tokens = ["--tokens-file", str(tmp_path / "tokens.json")]
    assert main([*base, "--oauth-issuer", "https://idp.example", *tokens]) == 2
    assert "--tokens-file and OAuth exclude each other" in capsys.readouterr().err
    assert main([*base, "--oauth-issuer", "http://idp.example"]) == 2
    assert "must use https" in capsys.readouterr().err
    assert main([*base, "--oauth-issuer", "https://idp.example", "--oauth-resource", "x"]) == 2
    assert "resource 'x' is not an http(s) URL" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_through_the_cli_with_oauth(
    runtime: ServerRuntime, issuer: LocalIssuer, tmp_path: Path
) -> None:
    """The real `serve --oauth-issuer` process (tenant claim from the environment): metadata
    served, 401 with the reason, the claim's tenant, the tokens file never created."""
    port = free_port()
    command = serve_command(
        runtime.settings.store_path, "--transport", "streamable-http", "--port", str(port)
    )
    tokens_file = tmp_path / "tokens.json"
    env = cli_env(
        RETRIEVAL_MCP__OAUTH__TENANT_CLAIM="org_id",
        RETRIEVAL_MCP__TOKENS_FILE=str(tokens_file),
    )
    url = f"http://127.0.0.1:{port}/mcp"
    with running([*command, "--oauth-issuer", issuer.issuer], env, port) as process:
        metadata = httpx.get(metadata_url(url), timeout=30).json()
        assert metadata["resource"] == url
        assert metadata["authorization_servers"] == [issuer.issuer]
        headers = {**ACCEPT, "Authorization": f"Bearer {issuer.token('k1', aud=url)}"}
        refused = httpx.post(url, json=INIT, headers=headers, timeout=30)
        assert refused.status_code == 401
        assert refused.json()["error_description"] == "the token has no valid 'org_id' claim"
        token = issuer.token("k1", aud=url, org_id="globex")
        headers["Authorization"] = f"Bearer {token}"
        ok = httpx.post(url, json=INIT, headers=headers, timeout=30)
        assert ok.status_code == 200 and "retrieval-mcp" in ok.text
    out, err = process.communicate(timeout=60)
    assert out == ""
    assert f"OAuth: issuer {issuer.issuer}, resource {url}" in err
    assert not tokens_file.exists()


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[str]]:
    """A server process, yielded once it listens on ``port``; terminated on exit."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_listening(process, port)
        yield process
    finally:
        process.terminate()
