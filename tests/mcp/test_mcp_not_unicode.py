"""Text that is not valid Unicode, over the wire and on the command line.

JSON can carry an unpaired surrogate (``"\\ud83d"``: a client cut an emoji in two), and Python
reads command-line bytes that are not UTF-8 as such. Field report: a ``doc_search`` over stdio
whose query held one never got a reply (the reply could not be written as UTF-8), and the CLI
printed a traceback. Invariant: such text is refused in one line naming where it is; the
server answers the call and every call after it (over stdio, server/stdio_guard.py answers
the line the SDK's JSON parser refuses; in a parsed call, the tool layer refuses the text).
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path

import pytest
from mcp_support import cli_env, initialize_request, serve_command

from server.cli import main
from server.retrieval.edge_store import EdgeStore

INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _call(call_id: int, query: str) -> dict[str, object]:
    arguments = {"query": query, "filters": {"tags": ["ops"]}}
    params = {"name": "doc_search", "arguments": arguments}
    return {"jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": params}


def test_a_stdio_call_with_an_unpaired_surrogate_is_answered(tmp_path: Path) -> None:
    command = serve_command(tmp_path / "store", "--transport", "stdio", "--tenant", "me")
    process = subprocess.Popen(
        command,
        env=cli_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert process.stdin and process.stdout
    replies: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [replies.put(line) for line in process.stdout],  # type: ignore[union-attr]
        daemon=True,
    ).start()
    try:
        for message in (initialize_request("halves"), INITIALIZED, _call(2, "abc \ud83d")):
            # json.dumps writes the lone surrogate as the escape a JSON client sends
            process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        assert json.loads(replies.get(timeout=60))["id"] == 1
        # the SDK's parser refuses the line: answered as invalid params, naming the place
        answer = json.loads(replies.get(timeout=60))
        assert answer["id"] == 2 and answer["error"]["code"] == -32602, answer
        text = answer["error"]["message"]
        assert "argument 'query' is" in text and "(U+D83D) at character 5" in text, text
        bad_tool = {**_call(3, "release"), "params": {"name": "doc\ud83d", "arguments": {}}}
        process.stdin.write(json.dumps(bad_tool) + "\n")
        process.stdin.flush()
        answer = json.loads(replies.get(timeout=60))
        assert answer["id"] == 3 and "argument 'name' is not valid" in answer["error"]["message"]
        # lines that are no message at all are answered too (test_stdio_unreadable_lines.py)
        process.stdin.write("this is not json\n[]\n" + "[" * 1200 + "]" * 1200 + "\n")
        process.stdin.flush()
        answers = [json.loads(replies.get(timeout=60)) for _ in range(3)]
        codes = [(a["id"], a["error"]["code"]) for a in answers]
        assert codes == [(None, -32700), (None, -32600), (None, -32600)]
        # ids the SDK cannot read make it see a notification: answered, not left waiting
        for ident in ({"n": 1}, True):
            request = {"jsonrpc": "2.0", "id": ident, "method": "tools/list"}
            process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        answers = [json.loads(replies.get(timeout=60)) for _ in range(2)]
        assert [(a["id"], a["error"]["code"]) for a in answers] == [(None, -32600)] * 2
        process.stdin.write(json.dumps(_call(4, "release")) + "\n")
        process.stdin.flush()
        assert json.loads(replies.get(timeout=120))["id"] == 4  # still serving
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["search", "\u4e0b\u4e2a\udce6"], "the query"),  # a character cut by `cut -c`
        (["search", "vpn", "--filter", "tags=ops\udce6"], "filter 'tags'"),
    ],
)
def test_a_cli_search_with_bytes_that_are_not_utf8_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], what: str
) -> None:
    EdgeStore(tmp_path / "store").close()  # an empty store: the request is what is wrong
    code = main([*argv, "--tenant", "t", "--store", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"{what} is not valid Unicode text" in lines[0], err
    assert "unpaired surrogate (U+DCE6, how Python reads the byte 0xE6)" in lines[0], err


def test_a_cli_search_refuses_its_request_before_touching_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The request's own fault is named first (opening a store takes seconds and logs), even
    when the store is missing too."""
    for argv, what in (
        (["search", "vpn\udce6"], "the query is not valid Unicode"),
        (["search", "   "], "the query is empty"),
        (["search", "vpn", "--filter", "colour=red"], "unknown filter 'colour'"),
        (["search", "vpn", "--filter", "doc_type="], "filter 'doc_type' is empty"),
        (["search", "vpn", "--top-k", "51"], "top_k"),
        (["search", "vpn", "--tenant", "bad tenant!"], "tenant"),
    ):
        code = main([argv[0], "--tenant", "t", *argv[1:], "--store", str(tmp_path / "missing")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: ") and what in err, err
        assert len(err.strip().splitlines()) == 1, err  # no store opened: nothing logged
    assert not (tmp_path / "missing").exists()
