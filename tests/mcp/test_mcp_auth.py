"""Tokens file: hashes only, owner-only permissions, verify/revoke, and the token CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio
import pytest

from server.auth import TokenFile, TokenFileVerifier
from server.cli import main
from server.errors import InvalidRequestError


def test_tokens_are_stored_as_salted_hashes(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    token, record = tokens.add("acme", label="laptop")
    text = (tmp_path / "tokens.json").read_text()
    assert token not in text and token.split("_")[-1] not in text
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert json.loads(text)["tokens"][0]["tenant"] == "acme"
    assert tokens.verify(token) == record
    assert tokens.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert tokens.verify("rmcp_00000000_" + "x" * 43) is None
    assert tokens.verify("Bearer nonsense") is None


def test_revoke_applies_to_a_running_verifier(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token, record = TokenFile(path).add("acme")
    other, _ = TokenFile(path).add("globex")
    verifier = TokenFileVerifier(TokenFile(path))

    async def tenant_of(value: str) -> str | None:
        access = await verifier.verify_token(value)
        return None if access is None else access.subject

    assert anyio.run(tenant_of, token) == "acme"
    TokenFile(path).revoke(record.id)  # another process (the CLI) edits the file
    assert anyio.run(tenant_of, token) is None
    assert anyio.run(tenant_of, other) == "globex"
    with pytest.raises(InvalidRequestError, match="no token"):
        TokenFile(path).revoke(record.id)


def test_invalid_tenant_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="invalid tenant"):
        TokenFile(tmp_path / "t.json").add("a b")


def test_token_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "tokens.json")
    assert main(["token", "add", "--tenant", "acme", "--tokens-file", path]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("rmcp_") and "only time" in out.err
    assert main(["token", "list", "--tokens-file", path]) == 0
    listing = capsys.readouterr().out
    assert "tenant=acme" in listing and token not in listing
    token_id = listing.split()[0]
    assert main(["token", "revoke", token_id, "--tokens-file", path]) == 0
    assert main(["token", "revoke", token_id, "--tokens-file", path]) == 2
    assert "error: no token" in capsys.readouterr().err
    assert main(["token", "add", "--tenant", "bad tenant", "--tokens-file", path]) == 2
    assert main(["serve", "--transport", "stdio", "--tokens-file", path]) == 2
    assert "needs a tenant" in capsys.readouterr().err
    assert main(["serve", "--transport", "sse", "--tenant", "acme", "--tokens-file", path]) == 2
    assert "token carries its tenant" in capsys.readouterr().err
