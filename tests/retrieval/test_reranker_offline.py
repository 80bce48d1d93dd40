"""An unavailable cross-encoder is known unavailable without importing torch.

Offline, with the default hub id not in the Hugging Face cache, every command that ranks used
to import sentence-transformers and torch (about 8 s here) only to fail. The invariant: when
the model is neither a local directory nor cached and the hub is unreachable, loading fails
with the usual one-line reason and neither package is imported. Checked in a fresh
interpreter, since the test process has both imported already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, sys
from server.retrieval.reranker import CrossEncoderReranker
reranker = CrossEncoderReranker("cross-encoder/not-in-any-cache-here", backend="openvino")
loaded = reranker.load()
print(json.dumps({
    "loaded": loaded,
    "reason": reranker.unavailable_reason,
    "imported": sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules),
}))
"""


def test_an_uncached_reranker_offline_fails_without_importing_torch(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),  # an empty cache
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] is False
    assert "could not be loaded" in result["reason"]
    assert "downloads are off (HF_HUB_OFFLINE)" in result["reason"]  # the test sets it
    assert result["imported"] == []


def test_a_cached_hub_id_counts_as_loadable_without_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    from server.retrieval.reranker import loadable_without_download

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert not loadable_without_download("example-org/cross")
    (tmp_path / "models--example-org--cross" / "snapshots" / "abc123").mkdir(parents=True)
    assert loadable_without_download("example-org/cross")
    assert loadable_without_download(str(tmp_path)) and not loadable_without_download("./nope")


@pytest.mark.parametrize("path", ["/nonexistent/cross-encoder", "./no-such-folder", "~/no-such"])
def test_a_reranker_path_that_is_no_folder_says_so(path: str) -> None:
    """A path given as the reranker read "not in the local Hugging Face cache and the hub is
    unreachable", as if it were a hub id (found by a fresh user); the folder is named as an
    absolute path (``./nope`` read "no folder 'nope'", and the working directory of a server
    is its client's)."""
    from server.retrieval.reranker import CrossEncoderReranker

    reranker = CrossEncoderReranker(path, backend="openvino")
    assert reranker.load() is False
    looked = Path(path).expanduser().absolute()
    assert looked.is_absolute() and f"no folder '{looked}'" in (reranker.unavailable_reason or "")
