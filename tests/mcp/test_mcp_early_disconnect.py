"""A client that leaves while the models load: the server exits cleanly.

Field report: a stdio server whose client closed stdin right after ``initialize`` (or just
after its first call) died with SIGABRT ("terminate called without an active exception"): the
interpreter shut down while the loader thread was inside a native inference runtime. Invariant:
however early the client leaves, the server exits with status 0 and no native abort; a model
load in progress is allowed to end first (its export is then cached for the next start).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mcp_support import cli_env, initialize_request, serve_command

INIT = initialize_request("leaves-early")
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
SEARCH = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "doc_search", "arguments": {"query": "restore a backup"}},
}


def _leave_early(
    tmp_path: Path, messages: list[dict[str, object]], backend: str, after_log: str = ""
) -> tuple[int, str]:
    """Start a stdio server, shake hands, send ``messages``, wait for a stderr line holding
    ``after_log`` (if given), close stdin; the exit status and all of stderr."""
    env = cli_env(
        RETRIEVAL_INFERENCE_BACKEND=backend,
        # a fresh export cache: the first model load is a long native export, the window a
        # client that leaves early used to hit
        RETRIEVAL_MODEL_CACHE_PATH=str(tmp_path / "models"),
    )
    command = serve_command(tmp_path / "store", "--transport", "stdio", "--tenant", "me")
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin and process.stdout and process.stderr
    process.stdin.write(json.dumps(INIT) + "\n")
    process.stdin.flush()
    assert json.loads(process.stdout.readline())["id"] == 1  # the handshake answered
    for message in messages:
        process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()
    seen = ""
    while after_log and after_log not in seen:
        line = process.stderr.readline()
        assert line, f"the server ended before logging {after_log!r}: {seen[-2000:]}"
        seen += line
    process.stdin.close()  # the client is gone, before any answer to its call
    process.stdin = None  # (communicate must not flush it again)
    _, err = process.communicate(timeout=300)
    return process.returncode, seen + err


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["openvino", "onnx"])
def test_a_client_leaving_during_the_model_load_lets_the_server_exit_cleanly(
    tmp_path: Path, backend: str
) -> None:
    # leave while the call's model load is inside the native export
    code, err = _leave_early(tmp_path, [INITIALIZED, SEARCH], backend, after_log="exporting")
    assert code == 0, err[-2000:]
    assert "terminate called" not in err and "Traceback" not in err, err[-2000:]
    # the export the call started was finished and cached, not abandoned half-way
    assert list((tmp_path / "models").rglob("model.onnx")), err[-2000:]


@pytest.mark.slow
def test_a_client_leaving_right_after_the_handshake_loads_no_model(tmp_path: Path) -> None:
    code, err = _leave_early(tmp_path, [], "openvino")
    assert code == 0 and "terminate called" not in err, err[-2000:]
    assert "models ready" not in err  # nothing asked for them: the runtime closed first
