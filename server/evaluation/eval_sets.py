"""The tuning sets under ``datasets/eval/``: the legal corpus is derived locally, not shipped.

Its documents are excerpts of FSF licence texts, which may be copied verbatim only, so the
repository keeps the queries and qrels and ``scripts/build_eval_sets.py`` rebuilds the corpus
(byte-identically) from Debian's ``/usr/share/common-licenses`` on first use.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server.errors import RetrievalError

REPO_ROOT = Path(__file__).resolve().parents[2]
EVAL_SETS = REPO_ROOT / "datasets" / "eval"
LEGAL_SET = EVAL_SETS / "legal"
LEGAL_CORPUS = LEGAL_SET / "corpus.jsonl"
CODE_CORPUS = EVAL_SETS / "code" / "corpus.jsonl"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_eval_sets.py"


def ensure_legal_corpus() -> Path:
    """Path of the legal tuning corpus, building it first when it is missing."""
    if LEGAL_CORPUS.exists():
        return LEGAL_CORPUS
    proc = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--sets", "legal", "--out", str(EVAL_SETS)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not LEGAL_CORPUS.exists():
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RetrievalError(
            f"cannot build {LEGAL_CORPUS} from /usr/share/common-licenses ({reason}); run "
            "`python3 scripts/build_eval_sets.py --sets legal --licenses DIR` with a directory "
            "holding the licence texts"
        )
    return LEGAL_CORPUS


def prepare_dataset(directory: Path) -> Path:
    """``directory``, with the legal corpus built first when the legal tuning set is asked for."""
    if directory.resolve() == LEGAL_SET.resolve():
        ensure_legal_corpus()
    return directory
