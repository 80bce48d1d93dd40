"""The HTTP server's memory allocator (server/allocator.py): jemalloc where the machine has it.

Invariants: ``serve`` over HTTP re-executes itself at most once (the re-executed process is
marked), keeps whatever the user preloaded or configured, and with jemalloc preloaded the
OpenVINO backend still embeds (it aborted with "free(): invalid size" before oneTBB was told
to load its helper without RTLD_DEEPBIND). The real server process is checked: same pid, the
allocator mapped, a search answered over Streamable HTTP.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_support import cli_env, free_port, serve_command, wait_listening

from server.allocator import APPLIED_ENV, JEMALLOC_CONF, find_jemalloc, preload_env
from server.auth import TokenFile
from server.cli import main
from server.errors import InvalidRequestError
from server.retrieval.embedder import DenseEmbedder
from server.retrieval.factory import assemble
from server.retrieval.shared_store import SharedStore
from server.retrieval.types import Chunk
from server.settings import Settings

JEMALLOC = find_jemalloc()
needs_jemalloc = pytest.mark.skipif(
    JEMALLOC is None, reason="jemalloc is not installed (Debian: libjemalloc2)"
)

_names = st.sampled_from(["LD_PRELOAD", "MALLOC_CONF", "PATH", "TBB_ENABLE_SANITIZERS", "X"])
_envs = st.dictionaries(_names, st.text("abc/._:,", max_size=12), max_size=4)


A_LIBRARY = str(Path(__file__))  # any file stands for a library path: only its existence is read


@given(env=_envs, setting=st.sampled_from(["auto", A_LIBRARY]))
def test_the_server_re_executes_at_most_once(env: dict[str, str], setting: str) -> None:
    """Whatever the environment and setting, the re-executed process's environment asks for
    no further re-execution; glibc never re-executes."""
    assert preload_env("glibc", env) is None
    first = preload_env(setting, env)
    if first is None:  # auto: jemalloc missing, or preloaded by the user
        assert setting == "auto"
        return
    assert preload_env(setting, first) is None
    assert first[APPLIED_ENV] and first["TBB_ENABLE_SANITIZERS"] == "1"


@needs_jemalloc
@given(env=_envs)
def test_what_the_user_preloaded_or_configured_is_kept(env: dict[str, str]) -> None:
    new = preload_env("auto", env)
    if "jemalloc" in env.get("LD_PRELOAD", ""):
        assert new is None  # the user chose it already
        return
    assert new is not None and JEMALLOC is not None
    preloaded = new["LD_PRELOAD"].split()
    assert preloaded[0] == JEMALLOC and preloaded[1:] == env.get("LD_PRELOAD", "").split()
    assert new["MALLOC_CONF"] == env.get("MALLOC_CONF", JEMALLOC_CONF)
    ours = ("LD_PRELOAD", "TBB_ENABLE_SANITIZERS")  # set for the allocator to work
    assert {k: v for k, v in new.items() if k in env and k not in ours} == {
        k: v for k, v in env.items() if k not in ours
    }


def test_a_library_path_that_is_no_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="is not a library file") as raised:
        preload_env(str(tmp_path / "libnone.so"), {})
    assert "\n" not in str(raised.value)
    library = tmp_path / "liballoc.so"
    library.write_bytes(b"")
    new = preload_env(str(library), {"LD_PRELOAD": "libother.so"})
    assert new is not None and new["LD_PRELOAD"] == f"{library} libother.so"
    assert "MALLOC_CONF" not in new  # jemalloc's settings only for jemalloc


def test_main_called_in_process_never_replaces_its_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``main([...])`` from a host (here pytest) must not re-execute the host's argv with an
    allocator preloaded: the CI's pytest was replaced mid-run by a test that called ``serve``
    in-process. Only the ``retrieval-mcp`` program itself (``main()``) re-executes."""

    def replaced(*args: object) -> None:
        raise AssertionError(f"the host process would be replaced: {args[:2]}")

    monkeypatch.setattr("os.execve", replaced)
    monkeypatch.setenv("RETRIEVAL_MCP__ALLOCATOR", A_LIBRARY)
    monkeypatch.delenv(APPLIED_ENV, raising=False)
    serve = ["serve", "--transport", "streamable-http", "--store", str(tmp_path / "store")]
    refused = ["--oauth-issuer", "https://idp.example", "--tokens-file", str(tmp_path / "t")]
    assert main([*serve, *refused]) == 2


def _mapped(pid: int, name: str) -> bool:
    return name in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
@needs_jemalloc
@pytest.mark.parametrize("allocator", ["auto", "glibc"])
def test_the_http_server_runs_openvino_on_jemalloc(
    tmp_path: Path,
    embedder: DenseEmbedder,
    exported_embedders: dict[str, DenseEmbedder],
    model_cache: Path,
    allocator: str,
) -> None:
    store = tmp_path / "store"
    shared = SharedStore(store)
    try:
        chunks = [
            Chunk(tenant="acme", doc_id="vpn.md", source="vpn.md", text="Connect to the VPN.")
        ]
        assemble(Settings(reranker_model="none"), shared, embedder).indexer.index("docs", chunks)
    finally:
        shared.close()
    token, _ = TokenFile(tmp_path / "tokens.json").add("acme", label="test")
    port = free_port()
    command = serve_command(store, "--transport", "streamable-http", "--port", str(port))
    env = cli_env(
        RETRIEVAL_INFERENCE_BACKEND="openvino",
        RETRIEVAL_MODEL_CACHE_PATH=str(model_cache),  # exported once by the fixture
        RETRIEVAL_MCP__ALLOCATOR=allocator,
    )
    env.pop("LD_PRELOAD", None)
    env.pop(APPLIED_ENV, None)
    process = subprocess.Popen(
        [*command, "--tokens-file", str(tmp_path / "tokens.json")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(process, port)
        hits = anyio.run(_search, f"http://127.0.0.1:{port}/mcp", token)
        assert hits and hits[0]["source"] == "vpn.md"
        assert process.poll() is None  # alive after embedding on OpenVINO
        assert _mapped(process.pid, "jemalloc") is (allocator == "auto")  # same pid, re-executed
        assert _mapped(process.pid, "openvino")
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert out == ""
    assert ("memory allocator: " in err) is (allocator == "auto"), err[-2000:]


async def _search(url: str, token: str) -> list[dict[str, object]]:
    import httpx

    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        result = await client.call_tool("doc_search", {"query": "vpn"})
        assert not result.is_error, result
        hits: list[dict[str, object]] = (result.structured_content or {})["hits"]
        return hits
