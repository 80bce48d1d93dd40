"""``retrieval-mcp doctor``: one line per finding, exit 0 healthy / 1 problems / 2 bad usage.

Real stores, the real bundled embedding model, real damaged files and a real stale lock; the
documented recovery of a damaged collection (``doctor --repair``, then ingest again) is run.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from mcp_support import free_port
from oauth_support import LocalIssuer, ec_key

from server.cli import main
from server.retrieval.edge_store import LOCK_FILE, EdgeStore
from server.retrieval.engine_errors import REPAIR_HINT
from server.retrieval.length_stats import encoded_avg_value, length_deltas
from server.retrieval.shared_store import SharedStore
from tests.retrieval.test_shared_store import COLLECTION
from tests.retrieval.test_store_faults import _filled_store


@pytest.fixture(autouse=True)
def _offline_no_reranker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", "none")
    monkeypatch.setenv("RETRIEVAL_MCP__TOKENS_FILE", str(tmp_path / "tokens.json"))
    monkeypatch.delenv("RETRIEVAL_DISK_RESERVE_MB", raising=False)


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main(["doctor", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _by_check(report: dict[str, object]) -> dict[str, dict[str, str]]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return {f["check"]: f for f in findings}


@pytest.mark.slow
def test_a_healthy_installation_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _filled_store(tmp_path / "store")
    code, report = _doctor(capsys, "--store", str(tmp_path / "store"))
    found = _by_check(report)
    assert code == 0 and report["healthy"] is True
    model = found["embedding model"]
    assert model["status"] == "ok" and "384 dims" in model["detail"]
    assert found[f"collection {COLLECTION}"]["detail"].startswith("40 points")
    versions = found["versions"]["detail"]
    assert "python" in versions and "qdrant-edge-py" in versions and "torch" in versions
    assert found["cross-encoder"]["detail"].startswith("reranking is off")
    # the backend the embedder really runs on (the suite runs on torch: tests/conftest.py)
    backend = found["inference backend"]
    assert backend["status"] == "ok", backend
    assert backend["detail"] == f"the embedder runs on {os.environ['RETRIEVAL_INFERENCE_BACKEND']}"


def test_problems_exit_1_with_one_actionable_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    _filled_store(store)
    tokens = tmp_path / "tokens.json"
    tokens.write_text("{}")
    tokens.chmod(0o644)
    monkeypatch.setenv("RETRIEVAL_DISK_RESERVE_MB", str(10**9))  # more than any disk has
    code = main(["doctor", "--store", str(store)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    problems = [line for line in lines if line.startswith("problem")]
    assert any("tokens file" in p and f"chmod 600 {tokens}" in p for p in problems), problems
    assert any(p.startswith("problem disk:") and "RETRIEVAL_DISK_RESERVE_MB" in p for p in problems)
    assert lines[-1] == f"{len(problems)} problem(s) found"


def test_lock_state_stale_and_live(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store"
    _filled_store(store)
    (store / LOCK_FILE).write_text("pid 999999999 (retrieval-mcp serve, since 2026-01-01)\n")
    code, report = _doctor(capsys, "--store", str(store))
    assert code == 0
    stale = _by_check(report)["store lock"]
    assert stale["status"] == "ok" and "left by pid 999999999" in stale["detail"]
    assert "harmless" in stale["detail"] and "takes it over" in stale["detail"]
    owner = SharedStore(store)  # held and shared by this process: doctor goes through it
    try:
        code, report = _doctor(capsys, "--store", str(store))
        lock = _by_check(report)["store lock"]
        assert code == 0 and lock["status"] == "ok"
        assert f"pid {os.getpid()}" in lock["detail"] and "serving on" in lock["detail"]
    finally:
        owner.close()


@pytest.mark.slow
def test_a_damaged_collection_is_reported_and_the_documented_recovery_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "lava.md").write_text("# Volcanoes\n\nMagma rises through the crust as lava.\n")
    ingest = ["ingest", str(docs), "--domain", "docs", "--tenant", "t", "--store", str(store)]
    assert main([*ingest, "--no-progress"]) == 0
    capsys.readouterr()
    (vectors,) = store.rglob("vector_storage-dense/vectors/chunk_0.mmap")
    os.truncate(vectors, 0)
    code = main(["doctor", "--store", str(store)])
    lines = capsys.readouterr().out.splitlines()
    damaged = [line for line in lines if line.startswith("problem collection docs")]
    assert code == 1 and len(damaged) == 1
    assert str(vectors.parent) in damaged[0]
    assert damaged[0].endswith("-> " + REPAIR_HINT)  # the action after "->", as documented
    code, report = _doctor(capsys, "--store", str(store), "--repair")
    repaired = _by_check(report)["collection docs"]
    assert code == 0 and repaired["status"] == "warn" and "moved aside" in repaired["detail"]
    assert not (store / "docs").exists() and list((store / ".damaged").iterdir())
    assert main([*ingest, "--no-progress"]) == 0
    assert main(["search", "lava", "--tenant", "t", "--store", str(store), "--json"]) == 0
    assert "lava.md" in capsys.readouterr().out
    code, _ = _doctor(capsys, "--store", str(store))
    assert code == 0


def test_tenants_are_counted_by_their_points(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tenant entry holding 0 points (an ingest stopped before its first write, or every
    source removed) is no tenant: doctor counts the tenants that hold points."""
    store = tmp_path / "store"
    _filled_store(store)
    edge = EdgeStore(store, disk_reserve_mb=0)
    try:
        edge.adjust_meta(COLLECTION, length_deltas("a", 40, 400.0))
        edge.adjust_meta(COLLECTION, {}, encoded_avg_value("stopped", 10.0))
        edge.adjust_meta(COLLECTION, length_deltas("removed", 0, 0.0))
    finally:
        edge.close()
    code, report = _doctor(capsys, "--store", str(store))
    found = _by_check(report)[f"collection {COLLECTION}"]
    assert code == 0 and found["status"] == "ok", found
    assert found["detail"] == "40 points, 1 tenant(s)"


def test_a_missing_store_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "store"
    code = main(["doctor", "--store", str(missing)])
    out = capsys.readouterr().out
    assert code == 0 and f"no store at {missing} yet" in out
    assert not missing.exists() and not missing.parent.exists()


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--no-such-flag"])
    assert exc.value.code == 2


def test_oauth_issuer_reachable_with_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with LocalIssuer() as issuer:
        issuer.add_key("k1")
        issuer.add_key("k2", ec_key())
        code, report = _doctor(
            capsys, "--store", str(tmp_path / "s"), "--oauth-issuer", issuer.issuer
        )
    found = _by_check(report)["oauth issuer"]
    assert found["status"] == "ok", found
    assert found["detail"] == f"{issuer.issuer}: 2 signing key(s) at {issuer.issuer}/jwks"
    assert code == 0


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        ("http://127.0.0.1:{port}/realms/test", "cannot fetch the issuer's keys"),
        ("http://auth.example.com/realms/test", "must use https"),
    ],
)
def test_an_unusable_oauth_issuer_is_one_actionable_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], issuer: str, expected: str
) -> None:
    issuer = issuer.format(port=free_port())  # nothing listens there
    code = main(["doctor", "--store", str(tmp_path / "s"), "--oauth-issuer", issuer])
    lines = [line for line in capsys.readouterr().out.splitlines() if "oauth issuer" in line]
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("problem oauth issuer:"), lines
    assert expected in lines[0] and " -> " in lines[0]


def test_no_oauth_no_issuer_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, report = _doctor(capsys, "--store", str(tmp_path / "s"))
    assert "oauth issuer" not in _by_check(report)


@pytest.mark.parametrize("below", ["", "sub/store"])
def test_a_store_path_through_a_file_is_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], below: str
) -> None:
    """doctor said "ok store: no store at ... yet (the first ingest creates it)" and healthy
    for a path through a file, where that ingest fails; it is one problem naming the file."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = blocker / below if below else blocker
    code = main(["doctor", "--store", str(store)])
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("problem")]
    assert code == 1 and len(problems) == 1, out
    assert f"is not a folder: {blocker} is a file" in problems[0]
    assert "store lock" not in out


@pytest.mark.slow
def test_the_cross_encoder_line_tells_the_hub_as_the_user_has_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedder check switches downloads off to prove the model loads offline; the switch
    leaked, so a model not on the machine read "downloads are off (HF_HUB_OFFLINE)" to a user
    who had not set it. The cross-encoder line now reads the hub as the user has it: a hub
    that answers (a real local listener) means the server downloads the model on first use,
    and the doctor downloads nothing; a hub that does not answer is said to be unreachable."""
    monkeypatch.setenv("RETRIEVAL_RERANKER_MODEL", "example-org/not-cached-cross-encoder")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    store = ("--store", str(tmp_path / "store"))
    with socket.create_server(("127.0.0.1", 0)) as hub:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub.getsockname()[1]}")
        _code, report = _doctor(capsys, *store)
    line = _by_check(report)["cross-encoder"]
    assert line["status"] == "warn" and "downloads it from the Hugging Face hub" in line["detail"]
    assert "run one search to fetch it now" in line["action"]
    assert "HF_HUB_OFFLINE" not in os.environ
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens
    _code, report = _doctor(capsys, *store)
    detail = _by_check(report)["cross-encoder"]["detail"]
    assert "the hub is unreachable" in detail and "HF_HUB_OFFLINE" not in detail, detail
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the user's own switch is named
    _code, report = _doctor(capsys, *store)
    line = _by_check(report)["cross-encoder"]
    assert "downloads are off (HF_HUB_OFFLINE)" in line["detail"]
    # the remedy is the action, as on every other line (it was inside the detail, action "")
    assert "RETRIEVAL_RERANKER_MODEL" in line["action"]
    assert "RETRIEVAL_RERANKER_MODEL" not in line["detail"]
